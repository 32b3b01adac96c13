"""`edge-sdk synth vial-strip`: write the synthetic Blow-Fill-Seal vial-strip data set."""

from edge_sdk.cli import bounded_int


def register(sub) -> None:
    p = sub.add_parser("synth", help="write synthetic data sets")
    kinds = p.add_subparsers(dest="kind", required=True)
    v = kinds.add_parser("vial-strip", help="5-vial Blow-Fill-Seal strips, 4 regions a vial, MVTec layout + regions.json")
    v.add_argument("--out", required=True, help="folder to write into (the set goes to OUT/vial_strip)")
    v.add_argument("--count", type=bounded_int("--count", 1, 1_000_000), default=60, help="good training strips (default 60)")
    v.add_argument("--products", type=bounded_int("--products", 1, 1_000_000), default=20, help="test products, half of them defective (default 20)")
    v.add_argument("--acquisitions", type=bounded_int("--acquisitions", 1, 10_000), default=10, help="acquisitions of each test product (default 10)")
    v.add_argument("--region-size", type=bounded_int("--region-size", 16, 4096), default=128, help="side of a region in pixels (default 128)")
    v.add_argument("--seed", type=bounded_int("--seed", 0, 2**32 - 1), default=0)
    v.add_argument("--overwrite", action="store_true", help="replace an existing OUT/vial_strip")
    v.set_defaults(func=run)


def run(args) -> int:
    from edge_sdk.cli import UserError
    from edge_sdk.data.vial_strip import make_vial_strip_dataset

    try:
        root = make_vial_strip_dataset(args.out, count=args.count, products=args.products,
                                       acquisitions=args.acquisitions, region_size=args.region_size,
                                       seed=args.seed, overwrite=args.overwrite)
    except (ValueError, FileExistsError) as exc:
        raise UserError(str(exc)) from exc
    print(root)
    return 0
