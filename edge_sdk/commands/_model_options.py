"""Command-line options of the models and the region-layout handling that `edge-sdk train` and
`edge-sdk eval` share (not a subcommand: edge_sdk.cli skips modules whose name starts with "_").

The commands stay model-agnostic: they ask the registry for the model's family, add the
reconstruction options with `add_recon_arguments(parser)`, build with `build_recon_model(args)`
and pass data sets through `with_regions(dataset, args)`, which turns a data set of frames with a
region layout (regions.json next to train/ and test/, or --regions) into a data set of region
patches (`edge_sdk.regions.RegionPatches`).
"""

from __future__ import annotations

import os

from edge_sdk.cli import UserError, bounded_int


def is_recon(name: str) -> bool:
    from edge_sdk.models import model_class

    return model_class(name).family == "reconstruction"


def add_recon_arguments(p) -> None:
    g = p.add_argument_group("resganad / grdnet")
    g.add_argument("--preset", choices=("small", "full"), default="small",
                   help="small: trains in minutes on 2 CPU cores (64 x 64 input, few filters); "
                        "full: the published configuration (256 x 256, 16x16x1024 encoder, GPU)")
    g.add_argument("--epochs", type=bounded_int("--epochs", 0, 100_000),
                   help="training epochs (default: the preset's; the classifier's: 8; 0: classifier with "
                        "--init-from only, measured and calibrated again without training)")
    g.add_argument("--filters", type=bounded_int("--filters", 1, 4096),
                   help="base filters of the generator (default: the preset's)")
    g.add_argument("--bottleneck", choices=("dense", "conv"), help="dense 64 (default) or convolutional 32xh/32xw/32")
    g.add_argument("--recon-batch", type=bounded_int("--recon-batch", 1, 4096), metavar="N",
                   help="patches per process per step (default: the preset's, 32); with --nproc P (or torchrun) "
                        "a step sees P x N patches")
    g.add_argument("--checkpoint", metavar="FILE",
                   help="training checkpoint written every --checkpoint-every epochs (default: OUT.checkpoint."
                        "safetensors beside --out); --resume continues from it")
    g.add_argument("--checkpoint-every", type=bounded_int("--checkpoint-every", 1, 100_000), default=1, metavar="EPOCHS",
                   help="epochs between checkpoints (default 1)")
    g.add_argument("--resume", action="store_true",
                   help="continue a killed run from its checkpoint (same options, same number of processes); "
                        "the result equals an uninterrupted run")
    g.add_argument("--roi", help="grdnet: region-of-interest mask image (nonzero = inspect), resized to the input")
    add_region_arguments(p)


def add_region_arguments(p, *, k_of_n: bool = False) -> None:
    """--regions / --no-regions, and with ``k_of_n`` the run-level --k-of-n of eval and report."""
    g = p.add_argument_group("regions")
    g.add_argument("--regions", help="region layout (regions.json) cutting each frame into patches "
                                     "(default: regions.json found with the data set)")
    g.add_argument("--no-regions", action="store_true", help="ignore any region layout: whole images are the patches")
    if k_of_n:
        g.add_argument("--k-of-n", type=bounded_int("--k-of-n", 1, 10_000), default=7, metavar="K",
                       help="run level with a region layout: a product is right when K of its acquisitions are "
                            "(default 7)")


def _roi(path: str, size: int):
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("L").resize((size, size), Image.NEAREST)
    except (OSError, ValueError) as exc:
        raise UserError(f"--roi {path}: cannot read the mask image ({exc})") from exc
    return (np.asarray(im) > 0).astype(np.float32)


def build_recon_model(args):
    """A ResGANAD / GRD-Net from parsed `edge-sdk train` arguments."""
    from edge_sdk.models import model_class

    model_cls = model_class(args.model)
    settings = {}
    if getattr(args, "input_size", None) is not None:
        settings["size"] = args.input_size
    for key in ("epochs", "filters", "bottleneck"):
        if getattr(args, key, None) is not None:
            settings[key] = getattr(args, key)
    if getattr(args, "recon_batch", None) is not None:
        settings["batch_size"] = args.recon_batch
    model = model_cls(args.preset, seed=args.seed, **settings)
    if getattr(args, "roi", None):
        if not hasattr(model, "set_roi"):
            raise UserError(f"--roi applies to grdnet only, not to {args.model}")
        model.set_roi(_roi(args.roi, model.config.size))
    return model


def find_layout_file(dataset, data_root: str) -> str | None:
    """regions.json in the folder of the data set's images or any parent up to `data_root`."""
    paths = getattr(dataset, "paths", None) or []
    if not paths:
        return None
    root = os.path.abspath(data_root)
    d = os.path.dirname(os.path.abspath(paths[0]))
    while True:
        cand = os.path.join(d, "regions.json")
        if os.path.isfile(cand):
            return cand
        if d == root or os.path.dirname(d) == d or not d.startswith(root):
            return None
        d = os.path.dirname(d)


def with_regions(dataset, args):
    """`dataset` as region patches when a layout applies (see module doc), else unchanged."""
    from edge_sdk.regions import RegionError, RegionLayout, RegionPatches

    if getattr(args, "no_regions", False):
        return dataset
    path = getattr(args, "regions", None) or find_layout_file(dataset, args.data)
    if path is None:
        return dataset
    try:
        return RegionPatches(dataset, RegionLayout.load(path))
    except RegionError as exc:
        raise UserError(str(exc)) from exc


def region_report(model, dataset, res: dict, *, k: int = 7) -> dict | None:
    """Patch / strip / run (k-of-n) decisions of `edge-sdk eval` on region patches, with the
    model's per-region thresholds (or its image threshold for every region when it has none);
    None when the data set is not cut into regions or the model is not calibrated."""
    import numpy as np

    from edge_sdk.regions import RegionPatches, evaluate_region_patches

    if not isinstance(dataset, RegionPatches) or (model.calibration or {}).get("threshold") is None:
        return None
    layout = model.region_layout() if hasattr(model, "region_layout") else None
    if layout is not None and layout.names == dataset.layout.names:
        thresholds, source = layout.thresholds(), "per_region"
    else:
        thresholds, source = np.full(len(dataset.layout), model.calibration["threshold"]), "image_threshold"
    out = evaluate_region_patches(res["scores"], dataset, thresholds, k=k, labels=res["labels"])
    out["thresholds"] = source
    for name, t in zip(dataset.layout.names, thresholds):  # the published tables: threshold beside each region's rates
        out["patch"]["regions"][name]["threshold"] = float(t)
    return out
