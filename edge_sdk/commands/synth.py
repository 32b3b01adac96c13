"""`edge-sdk synth vial-strip | tile | vial`: write the synthetic data sets (the Blow-Fill-Seal
vial-strip set with its region layout; edge_sdk.data.synthetic's tile and vial parts); `synth cut` /
`synth paste`: defective images from good ones and real defects (commands/_synth_paste.py)."""

from edge_sdk.cli import bounded_float, bounded_int


def register(sub) -> None:
    p = sub.add_parser("synth", help="write synthetic data sets")
    kinds = p.add_subparsers(dest="kind", required=True, help="what to synthesize")
    v = kinds.add_parser("vial-strip", help="5-vial Blow-Fill-Seal strips, 4 regions a vial, MVTec layout + regions.json")
    v.add_argument("--out", required=True, help="folder to write into (the set goes to OUT/vial_strip)")
    v.add_argument("--count", type=bounded_int("--count", 1, 1_000_000), default=60, help="good training strips (default 60)")
    v.add_argument("--products", type=bounded_int("--products", 1, 1_000_000), default=20, help="test products, half of them defective (default 20)")
    v.add_argument("--acquisitions", type=bounded_int("--acquisitions", 1, 10_000), default=10, help="acquisitions of each test product (default 10)")
    v.add_argument("--region-size", type=bounded_int("--region-size", 16, 4096), default=128, help="side of a region in pixels (default 128)")
    v.add_argument("--seed", type=bounded_int("--seed", 0, 2**32 - 1), default=0, help="seed of the synthesis (default 0)")
    v.add_argument("--frames", type=bounded_int("--frames", 0, 1024), default=0, metavar="K",
                   help="render each strip and acquisition as K handled frames (moving bubbles) and write the K + 2 "
                        "images a bundle exported with --acquisition-frames K judges: the frames and their per-pixel "
                        "lowest and highest images (default 0: one frame)")
    v.add_argument("--overwrite", action="store_true", help="replace an existing OUT/vial_strip")
    v.set_defaults(func=run)
    for kind, what in (("tile", "ceramic / stone surface"), ("vial", "back-lit Blow-Fill-Seal-like container")):
        k = kinds.add_parser(kind, help=f"synthetic {what} parts with defects and masks, MVTec layout")
        k.add_argument("--out", required=True, help=f"output root; the set goes into OUT/{kind}")
        k.add_argument("--n-train", type=bounded_int("--n-train", 1, 1_000_000), default=40,
                       help="good training images (default 40)")
        k.add_argument("--n-test", type=bounded_int("--n-test", 1, 1_000_000), default=30,
                       help="test images (default 30)")
        k.add_argument("--size", type=bounded_int("--size", 16, 4096), default=256, help="image side (default 256)")
        k.add_argument("--seed", type=bounded_int("--seed", 0, 2**32 - 1), default=0, help="seed of the synthesis (default 0)")
        k.add_argument("--gray", action="store_true", help="single-channel images")
        k.add_argument("--anomaly-fraction", type=bounded_float("--anomaly-fraction", 0.0, 1.0), default=0.6,
                       help="share of anomalous test images (default 0.6)")
        k.add_argument("--overwrite", action="store_true", help=f"replace an existing OUT/{kind} written by this command")
        k.add_argument("--preview", help="also write a PNG grid of the test images with mask outlines here")
        k.set_defaults(func=run_parts)
    from edge_sdk.commands._synth_paste import add_parsers

    add_parsers(kinds)


def run(args) -> int:
    from edge_sdk.cli import UserError
    from edge_sdk.data.vial_strip import make_vial_strip_dataset

    try:
        root = make_vial_strip_dataset(args.out, count=args.count, products=args.products,
                                       acquisitions=args.acquisitions, region_size=args.region_size,
                                       seed=args.seed, frames=args.frames, overwrite=args.overwrite)
    except (ValueError, FileExistsError) as exc:
        raise UserError(str(exc)) from exc
    print(root)
    return 0


def run_parts(args) -> int:
    import os

    from edge_sdk.cli import UserError
    from edge_sdk.data.synthetic import make_dataset

    try:
        root = make_dataset(args.out, args.kind, args.n_train, args.n_test, args.size, args.seed, args.gray,
                            anomaly_fraction=args.anomaly_fraction, overwrite=args.overwrite, progress=True)
    except (ValueError, FileExistsError) as exc:
        raise UserError(str(exc)) from exc
    print(f"wrote {os.path.join(root, args.kind)}")
    if args.preview:
        from edge_sdk.data import load_dataset
        from edge_sdk.data.preview import save_preview

        save_preview(list(load_dataset(root, "mvtec", "test", category=args.kind)), args.preview)
        print(f"preview {args.preview}")
    return 0
