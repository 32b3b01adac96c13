"""`edge-sdk train --auto`: the search of edge_sdk.tune run from the train command's arguments (not
a subcommand: edge_sdk.cli skips modules whose name starts with "_").

The search picks the model (unless --model names one), taps, d, input normalization, antialiasing
and image score (for --model resganad / grdnet: bottleneck and filters, each a training); `train` then builds and trains the chosen configuration as if those options had
been given, and stores the search's record in config.json (training.auto). The stored recipe is the
chosen configuration without --auto, so training from it again reproduces the model without a
second search.
"""

from __future__ import annotations

import sys

from edge_sdk.cli import UserError, bounded_float

DEFAULT_BUDGET_MINUTES = 60.0
DEFAULT_HOLDOUT = 0.2
# option -> (dest, its value when not given): what --auto chooses, refused when given with it
CHOSEN = {"--layers": ("layers", None), "--image-score": ("image_score", None), "--input-norm": ("input_norm", "fixed"),
          "--no-antialias": ("no_antialias", False), "--d": ("d", 100), "--bottleneck": ("bottleneck", None),
          "--filters": ("filters", None)}
AUTO_ONLY = {"--budget-minutes": "budget_minutes", "--auto-holdout": "auto_holdout", "--defect-dir": "defect_dir"}


def add_arguments(p) -> None:
    g = p.add_argument_group("automatic choice of settings (--auto)")
    g.add_argument("--auto", action="store_true",
                   help="choose the model (unless --model is given), taps, d, input normalization, antialiasing and "
                        "image score on held-out good training images with synthetic anomalies (Perlin, CutPaste, "
                        "scratches; pasted defects with --defect-dir) and any labelled validation images, then train "
                        "the choice on every good image; the test split is never read. With --model resganad or "
                        "grdnet: bottleneck and filters, each candidate a training of its own. The search's table and record "
                        "go to stderr and config.json (training.auto)")
    g.add_argument("--budget-minutes", type=bounded_float("--budget-minutes", 0.001, 10080.0), default=None,
                   help=f"--auto: time for the search; when spent it stops with the candidates scored so far "
                        f"(default {DEFAULT_BUDGET_MINUTES:g}; the final training comes on top)")
    g.add_argument("--auto-holdout", type=bounded_float("--auto-holdout", 0.05, 0.5), default=None,
                   help=f"--auto: share of the good training images held out to validate on (seeded by --seed; "
                        f"4 to 256 images; default {DEFAULT_HOLDOUT:g})")
    g.add_argument("--defect-dir", metavar="DIR",
                   help="--auto: folder of cut defect images with their masks in DIR/masks (<stem>.* or "
                        "<stem>_mask.*), pasted into held-out good images as a further kind of anomaly")


def check_arguments(args) -> None:
    """Refuses options --auto would override, before any data is read."""
    for flag, (dest, unset) in CHOSEN.items():
        if getattr(args, dest, unset) != unset:
            raise UserError(f"{flag}: chosen by --auto; leave it out, or train without --auto")
    if args.model is not None:
        from edge_sdk.tune import recon, space

        if args.model in recon.MODELS:
            return
        try:
            space.check_models([args.model])
        except ValueError as exc:
            raise UserError(f"--model {args.model} with --auto: {str(exc).split(': ', 1)[1]}") from exc


def check_not_auto(args) -> None:
    for flag, dest in AUTO_ONLY.items():
        if getattr(args, dest, None) is not None:
            raise UserError(f"{flag}: applies with --auto only")


def choose(args, train, labelled) -> dict:
    """Runs the search on ``train`` (and the labelled validation set, if any), prints its table,
    sets the chosen options on ``args`` and returns the search's record."""
    from edge_sdk.commands.train import embedding_options
    from edge_sdk.tune import auto_search, load_defect_folder, recon, space, table

    models = [args.model] if args.model else list(space.MODELS)
    if args.model in recon.MODELS:  # the preset and its options as given; bottleneck and filters searched
        options = {args.model: {"preset": args.preset,
                                **({"size": args.input_size} if args.input_size is not None else {}),
                                **({"epochs": args.epochs} if args.epochs is not None else {})}}
    else:
        options = {m: {k: v for k, v in embedding_options(args, m).items()
                       if k not in set(space.SEARCHED) | {"seed"}} for m in models}
    library = None
    if args.defect_dir:
        try:
            library = load_defect_folder(args.defect_dir)
        except ValueError as exc:
            raise UserError(f"--defect-dir: {exc}") from exc
    budget = args.budget_minutes if args.budget_minutes is not None else DEFAULT_BUDGET_MINUTES
    holdout = args.auto_holdout if args.auto_holdout is not None else DEFAULT_HOLDOUT
    try:
        result = auto_search(train, models=models, options=options, holdout=holdout, seed=args.seed,
                             defect_library=library, labelled=labelled, budget_minutes=budget,
                             progress=not args.no_progress)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    print(table(result), file=sys.stderr)
    if result.stopped_by_budget:
        print(f"train: --auto: the budget of {budget:g} minutes stopped the search after {result.scored} of "
              f"{result.total} candidates; the choice is the best of those", file=sys.stderr)
    chosen = result.chosen_settings()
    args.model = result.chosen["model"]
    # the stored recipe is the chosen configuration: training from it again needs no search
    args.auto, args.budget_minutes, args.auto_holdout, args.defect_dir = False, None, None, None
    if "bottleneck" in chosen:
        args.bottleneck, args.filters = chosen["bottleneck"], chosen["filters"]
        return result.record()
    args.layers = ",".join(chosen["layers"])
    args.input_norm = chosen["input_norm"]
    args.no_antialias = not chosen["antialias"]
    args.image_score = chosen["image_score"]
    if "d" in chosen:
        args.d = chosen["d"]
    return result.record()


def summary(record: dict) -> dict:
    """The lines of the search's record that `train` prints in its JSON."""
    c = record["chosen"]
    keys = ("model", "layers", "input_norm", "antialias", "image_score", "d", "bottleneck", "filters")
    return {"chosen": {k: c[k] for k in keys if k in c},
            "validation_auroc": c["validation_auroc"], "sources": c["sources"], "scored": record["scored"],
            "total": record["total"], "stopped_by_budget": record["stopped_by_budget"], "seconds": record["seconds"]}
