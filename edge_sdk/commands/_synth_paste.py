"""`edge-sdk synth cut` and `edge-sdk synth paste`: defective images from good ones and real defects
(edge_sdk.synthesis.defect_folder). Added to `edge-sdk synth` by its module; not a subcommand of its
own (the name starts with "_")."""

from __future__ import annotations

from edge_sdk.cli import bounded_int


def add_parsers(kinds) -> None:
    from edge_sdk.commands.train import add_data_arguments

    c = kinds.add_parser("cut", help="cut the defects of a labelled data set into a defect folder (crops + masks)",
                         description="Each connected defect of the masked defective images becomes "
                                     "OUT/<class>/<k>.png with <k>_mask.png beside it. By default only the "
                                     "training split of the labelled classes split is read, so defects of the "
                                     "test split never reach training.")
    add_data_arguments(c)
    c.add_argument("--split", choices=("train", "test"), default="train",
                   help="split of the labelled classes split to cut from (default train)")
    c.add_argument("--out", required=True, help="defect folder to write")
    c.add_argument("--overwrite", action="store_true", help="replace a defect folder written by this command")
    c.set_defaults(func=run_cut)

    p = kinds.add_parser("paste", help="paste cut defects into good images: defective images with masks",
                         description="Writes COUNT images per defect class, each a good image of --good with "
                                     "one defect of that class of --defects pasted in (brightness matched to "
                                     "the new place, edges feathered), as OUT/<class>/<k>.png + <k>_mask.png: "
                                     "with a good/ folder beside them, a data set of the classes layout.")
    p.add_argument("--good", required=True, help="folder of good images")
    p.add_argument("--defects", required=True, help="defect folder: <class>/<name>.png + <name>_mask.png "
                                                    "(edge-sdk synth cut writes one)")
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument("--count", type=bounded_int("--count", 1, 1_000_000), default=50,
                   help="images per defect class (default 50)")
    p.add_argument("--seed", type=bounded_int("--seed", 0, 2**32 - 1), default=0, help="seed of the draws (default 0)")
    p.add_argument("--match", choices=("additive", "multiplicative", "none"), default="additive",
                   help="brightness matching: additive (default), multiplicative (back-lit images) or none")
    p.add_argument("--overwrite", action="store_true", help="replace a folder written by this command")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run_paste)


def run_cut(args) -> int:
    from edge_sdk.cli import UserError
    from edge_sdk.commands.train import open_dataset
    from edge_sdk.synthesis.defect_folder import write_defect_folder
    from edge_sdk.synthesis.paste import DefectLibrary

    ds = open_dataset(args, args.split, classes=True)
    try:
        library = DefectLibrary.from_dataset(ds)
        if len(library) == 0:
            raise UserError(f"{args.data}: no masked defective image in the {args.split} split")
        out = write_defect_folder(library, args.out, overwrite=args.overwrite)
    except (ValueError, FileExistsError) as exc:
        raise UserError(str(exc)) from exc
    kinds = sorted({d.kind for d in library.defects})
    print(f"{len(library)} defect(s) of {len(kinds)} class(es) ({', '.join(kinds)}) -> {out}")
    return 0


def run_paste(args) -> int:
    from edge_sdk.cli import UserError
    from edge_sdk.synthesis.defect_folder import paste_folder, read_defect_folder

    try:
        libraries = read_defect_folder(args.defects)
        made = paste_folder(args.good, libraries, args.out, count=args.count, seed=args.seed, match=args.match,
                            overwrite=args.overwrite, progress=not args.no_progress)
    except (ValueError, FileExistsError) as exc:  # DataError is a ValueError
        raise UserError(str(exc)) from exc
    short = {k: v for k, v in made.items() if v < args.count}
    print(f"wrote {sum(made.values())} image(s) into {args.out}: " + ", ".join(f"{k} {v}" for k, v in made.items()))
    if short:
        print(f"synth paste: fewer than --count for {sorted(short)}: their defects did not fit the good images drawn")
    return 0
