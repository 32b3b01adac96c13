"""`edge-sdk train`: trains a registered model (edge_sdk.models.registry) on the good images of a data set."""

from __future__ import annotations

from edge_sdk.cli import bounded_float, bounded_int, threads_option

import json
import os
import time

LAYOUTS = ("mvtec", "folder", "mtd", "classes")
MAX_NPROC = 256
# the models that train across processes (edge_sdk/models/distributed.py)
DISTRIBUTED_MODELS = ("padim", "mhbc", "patchcore", "resganad", "grdnet")


def add_data_arguments(p, *, required: bool = True) -> None:
    """--data/--layout/--category and the layout options, shared with `edge-sdk eval`."""
    p.add_argument("--data", required=required, help="data set root folder")
    p.add_argument("--layout", required=required, choices=LAYOUTS, help="how the data set is organised")
    p.add_argument("--category", help="MVTec category folder (when the root holds several)")
    p.add_argument("--split-seed", type=bounded_int("--split-seed", 0, 2**32 - 1), default=0,
                   help="seed of the train/test split of good images (folder, mtd layouts; default 0)")
    p.add_argument("--test-fraction", type=bounded_float("--test-fraction", 0.0, 0.99), default=None,
                   help="share of good images kept for testing (folder, mtd layouts; default 0.2)")
    p.add_argument("--normal-dir", help="folder layout: folder of good images (default 'good')")
    p.add_argument("--abnormal-dir", help="folder layout: folder of anomalous images")
    p.add_argument("--mask-dir", help="folder layout: folder of masks of the anomalous images")


def open_dataset(args, split: str, **extra):
    """load_dataset from the parsed arguments (of `add_data_arguments`) and ``extra`` keyword
    arguments (e.g. gray=True); data errors become UserError."""
    from edge_sdk.cli import UserError
    from edge_sdk.data import DataError, load_dataset

    options = {}
    if args.test_fraction is not None:
        if args.layout == "mvtec":
            raise UserError("--test-fraction applies to the folder and mtd layouts only")
        options["test_fraction"] = args.test_fraction
    for name in ("normal_dir", "abnormal_dir", "mask_dir"):
        value = getattr(args, name, None)
        if value is not None:
            if args.layout != "folder":
                raise UserError(f"--{name.replace('_', '-')} applies to the folder layout only")
            options[name] = value
    try:
        ds = load_dataset(args.data, args.layout, split, category=args.category, seed=args.split_seed, **options,
                          **extra)
    except (DataError, FileNotFoundError, NotADirectoryError) as exc:
        raise UserError(str(exc)) from exc
    if len(ds) == 0:
        raise UserError(f"{args.data}: the {split} split is empty")
    return ds


def labelled_validation(args):
    """(validation set, record) held out of the user's labelled images (folder layout with
    --abnormal-dir): a seeded stratified share of each class of the test split, when each part keeps
    at least 2 good and 2 anomalous images; else (None, None) with the reason printed."""
    import sys

    from edge_sdk.data.split import split_labelled

    if args.layout != "folder" or not getattr(args, "abnormal_dir", None) or not args.labelled_val:
        return None, None
    test = open_dataset(args, "test")
    val, rest = split_labelled(test, args.labelled_val, args.split_seed)
    counts = [(int((d.labels == 0).sum()), int((d.labels == 1).sum())) for d in (val, rest)]
    if min(min(c) for c in counts) < 2:
        print(f"train: labelled images too few to hold out a validation share (validation good/anomalous "
              f"{counts[0]}, remaining test {counts[1]}; each needs >= 2 of both): calibrating on held-out good "
              f"training images only", file=sys.stderr)
        return None, None
    print(f"train: calibrating on a labelled validation split: {counts[0][0]} good + {counts[0][1]} anomalous "
          f"images (seed {args.split_seed}, {args.labelled_val:g} of each class of the test split); "
          f"{len(rest)} test images remain for eval", file=sys.stderr)
    info = {"fraction": args.labelled_val, "seed": args.split_seed, "good": counts[0][0], "anomalous": counts[0][1],
            "files": sorted(val.paths)}
    return val, info


def warn_small_calibration(calibration: dict | None) -> None:
    """Says when the calibration set is too small for its method (a 0.99 quantile of 3 scores is
    their maximum)."""
    import sys

    if not calibration:
        return
    n, method, q = calibration.get("images") or 0, calibration.get("method"), calibration.get("quantile")
    if method == "quantile" and q and n and n < 1.0 / max(1e-9, 1.0 - q):
        print(f"train: warning: the {q:g} quantile threshold comes from {n} good images: fewer than "
              f"{int(round(1 / (1 - q)))}, so it is about their maximum. Give labelled anomalous images "
              f"(--abnormal-dir, --val-data) or more good images.", file=sys.stderr)
    elif method in ("f1", "accuracy") and n and n < 10:
        print(f"train: warning: the {method} threshold comes from {n} labelled images only", file=sys.stderr)


def set_threads(threads: int | None) -> None:
    if threads is None:
        return
    import torch

    import edge_sdk

    torch.set_num_threads(threads)
    edge_sdk.set_num_threads(threads)


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model (PaDiM, PatchCore, MhBC, ResGANAD, GRD-Net) on good images",
                       description="Trains on the train split (good images only), calibrates the threshold "
                                   "and writes a model directory (config.json + safetensors).")
    # not choices=model_names(): listing the models imports them (and torch) on every `edge-sdk ...`
    p.add_argument("--model", metavar="NAME",
                   help="a registered model: padim, patchcore, mhbc (embedding); resganad, grdnet (reconstruction); "
                        "classifier (supervised, on labelled defects); with --auto optional: the search covers "
                        "padim, mhbc and patchcore unless one is named")
    add_data_arguments(p)
    p.add_argument("--config", metavar="RECIPE", help="a recipe file (.yaml or .json) mapping these options' "
                                                     "names (e.g. input-size: 128) to values; options given on the "
                                                     "command line win. The options used are stored in the model "
                                                     "directory, where eval, report and export find its data")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace the model directory at --out if there is one")
    p.add_argument("--input-size", type=bounded_int("--input-size", 16, 4096), default=None,
                   help="square network input size (default 256; resganad/grdnet: the preset's)")
    p.add_argument("--layers", help="comma-separated EfficientNet-Lite0 taps, e.g. stride8,stride16 "
                                    "(default stride8,stride16; also stride4, blocks.0 .. blocks.15)")
    p.add_argument("--batch", "--batch-size", dest="batch_size", type=bounded_int("--batch", 1, 4096), default=8,
                   help="images per training step (default 8; --batch-size is the older name)")
    p.add_argument("--seed", type=bounded_int("--seed", 0, 2**32 - 1), default=0, help="seed of everything random in training (default 0)")
    p.add_argument("--threads", type=threads_option("--threads"), help="CPU threads for torch and the kernels")
    p.add_argument("--blur-sigma", type=bounded_float("--blur-sigma", 0.0, 100.0), default=4.0, help="Gaussian blur of the anomaly map (default 4)")
    p.add_argument("--input-norm", choices=("fixed", "per_image", "per_image_highpass"), default="fixed",
                   help="fixed: ImageNet mean/std only (default); per_image: each image's channels standardized "
                        "inside the network (exposure varies between images); per_image_highpass: a box mean "
                        "(--highpass-window) subtracted first (shading across the part too)")
    p.add_argument("--highpass-window", type=bounded_int("--highpass-window", 3, 4095), default=127, help="per_image_highpass box size, odd (default 127)")
    p.add_argument("--no-antialias", action="store_true",
                   help="resize images to the input size by plain bilinear sampling instead of the default "
                        "antialiased (averaging) resize, which keeps thin defects when images are shrunk")
    p.add_argument("--image-score", choices=("max_raw", "max_blurred"),
                   help="image score: max of the raw location scores or of the blurred map "
                        "(default: max_blurred for padim, max_raw otherwise)")
    g = p.add_argument_group("calibration")
    g.add_argument("--val-data", help="labelled validation set (same layout/category, its test split) for the "
                                      "threshold; default: hold out --val-fraction of the training images")
    g.add_argument("--val-fraction", type=bounded_float("--val-fraction", 0.0, 0.9), default=0.1,
                   help="share of the good training images held out for a quantile threshold when no labelled "
                        "validation data is used (default 0.1)")
    g.add_argument("--labelled-val", type=bounded_float("--labelled-val", 0.0, 0.9), default=0.5, metavar="FRACTION",
                   help="folder layout with --abnormal-dir: share of each class of the labelled test images held "
                        "out (seeded, stratified) to calibrate the threshold on good and anomalous images; eval "
                        "leaves them out. 0 = off (default 0.5)")
    g.add_argument("--threshold", choices=("f1", "accuracy", "quantile"),
                   help="threshold rule (default: f1 with labelled anomalies, else quantile)")
    g.add_argument("--quantile", type=bounded_float("--quantile", 0.0, 1.0), default=0.99, help="quantile of normal scores (default 0.99)")
    g = p.add_argument_group("padim / mhbc")
    g.add_argument("--d", type=bounded_int("--d", 1, 100_000), default=100, help="padim: random channel subset size (default 100)")
    g.add_argument("--eps", type=bounded_float("--eps", 0.0, 1e6), default=0.01, help="covariance regularization eps*I (default 0.01)")
    g.add_argument("--k", type=bounded_int("--k", 1, 1024), default=4, help="mhbc: centroids per location (default 4)")
    g = p.add_argument_group("patchcore / mhbc")
    g.add_argument("--coreset-ratio", type=bounded_float("--coreset-ratio", 1e-6, 1.0), default=0.1, help="patchcore: memory bank share (default 0.1)")
    g.add_argument("--projection-dim", type=bounded_int("--projection-dim", 1, 100_000), help="fixed random projection of the patch features")
    g.add_argument("--neighbourhood", type=bounded_int("--neighbourhood", 1, 99), default=3,
                   help="local aggregation window of the patch features (default 3; 1 = none)")
    g.add_argument("--reweight", action="store_true", help="patchcore: the paper's image-score re-weighting")
    from edge_sdk.commands import _model_options

    _model_options.add_recon_arguments(p)  # resganad / grdnet options and region layouts
    from edge_sdk.commands import _auto

    _auto.add_arguments(p)

    from edge_sdk.commands._classifier_options import add_classifier_arguments

    add_classifier_arguments(p)
    g = p.add_argument_group("tiling (large frames: overlapping tiles, docs/BUNDLE.md input.tiling)")
    g.add_argument("--tile", metavar="SIZE", help="train on overlapping tiles of SIZE (H or HxW) pixels of each "
                                                 "training frame (all frames one size); export writes input.tiling "
                                                 "and the runtime, eval and predict cut and stitch the same tiles")
    g.add_argument("--tile-stride", metavar="S", help="step between tile origins (S or SYxSX; default: half the "
                                                      "tile); the last tile of a row or column is aligned to the edge")
    g.add_argument("--tile-merge", choices=("mean", "max"), default="mean",
                   help="how overlapping tile maps are merged into the frame's map (default mean)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--nproc", type=bounded_int("--nproc", 1, MAX_NPROC), default=1, metavar="N",
                   help="train across N processes on this machine (padim, mhbc, patchcore, resganad, grdnet): "
                        "starts `python -m torch.distributed.run --standalone --nproc-per-node N` with these "
                        "options (gloo on CPUs, NCCL on GPUs; default 1 = this process). Several machines: run "
                        "torchrun yourself (README, 'Training on several GPUs')")
    p.set_defaults(func=run, parser=p)


def _pair(text: str, flag: str) -> tuple[int, int]:
    from edge_sdk.cli import UserError

    try:
        v = [int(x) for x in str(text).lower().split("x")]
    except ValueError:
        v = []
    if len(v) not in (1, 2) or min(v) < 1:
        raise UserError(f"{flag}: expected N or HxW with positive integers, got {text!r}")
    return (v[0], v[-1])


def tiling_from_args(args, frames):
    """The `edge_sdk.tiling.Tiling` of --tile / --tile-stride / --tile-merge over the size of the
    first training frame, or None without --tile."""
    from edge_sdk.cli import UserError
    from edge_sdk.tiling import Tiling

    if not getattr(args, "tile", None):
        if getattr(args, "tile_stride", None):
            raise UserError("--tile-stride: applies with --tile only")
        return None
    th, tw = _pair(args.tile, "--tile")
    sy, sx = _pair(args.tile_stride, "--tile-stride") if args.tile_stride else (max(1, th // 2), max(1, tw // 2))
    h, w = frames[0].image.shape[:2]
    try:
        tiling = Tiling(th, tw, sy, sx, args.tile_merge).for_frame(h, w)
        if th > h or tw > w:
            raise ValueError(f"tile {th}x{tw} larger than the {h}x{w} frames")
        len(tiling)  # the grid, checked by the runtime's rules
    except ValueError as exc:
        raise UserError(f"--tile: {exc}") from exc
    return tiling


def build_model(args):
    from edge_sdk.commands._model_options import build_recon_model, is_recon
    from edge_sdk.models import model_class

    if is_recon(args.model):
        return build_recon_model(args)
    from edge_sdk.commands._classifier_options import build_classifier, is_supervised

    if is_supervised(args.model):
        return build_classifier(args)

    return model_class(args.model)(**embedding_options(args, args.model))


def embedding_options(args, model: str) -> dict:
    """Keyword arguments of an embedding model's class from parsed `train` arguments."""
    kw = dict(input_size=args.input_size or 256, batch_size=args.batch_size, seed=args.seed, blur_sigma=args.blur_sigma,
              image_score=args.image_score, input_norm=args.input_norm, highpass_window=args.highpass_window,
              antialias=not args.no_antialias)
    if args.layers:
        kw["layers"] = [s.strip() for s in args.layers.split(",") if s.strip()]
    if model == "padim":
        kw.update(d=args.d, eps=args.eps)
    elif model == "patchcore":
        kw.update(coreset_ratio=args.coreset_ratio, projection_dim=args.projection_dim, reweight=args.reweight,
                  neighbourhood=args.neighbourhood)
    else:
        kw.update(k=args.k, eps=args.eps, projection_dim=args.projection_dim, neighbourhood=args.neighbourhood)
    return kw


def launch(args) -> int:
    """`--nproc N`: this command again under torchrun with N processes (without --nproc)."""
    import subprocess
    import sys
    from pathlib import Path

    import edge_sdk

    argv, out, skip = list(getattr(args, "argv", None) or sys.argv[1:]), [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    env = dict(os.environ)
    root = str(Path(edge_sdk.__file__).resolve().parent.parent)  # this edge_sdk, not another installed one
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
           "-m", "edge_sdk.cli", "--", *out]  # "--": torchrun's parser would take --d for its own options
    print("train: " + " ".join(cmd), file=sys.stderr)
    return subprocess.call(cmd, env=env)


def check_distributed(args) -> None:
    """UserError for what cannot train across processes."""
    from edge_sdk.cli import UserError

    from edge_sdk.models import distributed

    if args.nproc > 1 and distributed.in_torchrun():
        raise UserError("--nproc: already running under torchrun (its --nproc-per-node sets the processes)")
    if args.nproc > 1 or distributed.in_torchrun():
        what = f"--nproc {args.nproc}" if args.nproc > 1 else "torchrun"
        if args.auto:
            raise UserError(f"{what}: --auto searches in one process; train the model it chooses across processes")
        if args.model not in DISTRIBUTED_MODELS:
            raise UserError(f"{what}: {args.model} trains in one process; across processes: "
                            f"{', '.join(DISTRIBUTED_MODELS)}")


def run(args) -> int:
    from edge_sdk.models import distributed

    check_distributed(args)
    if args.nproc > 1:
        return launch(args)
    if not distributed.init_from_env():
        return run_one(args)
    try:
        code = run_one(args)
    except BaseException:
        distributed.shutdown(wait_for_peers=False)
        raise
    distributed.shutdown()
    return code


def run_one(args) -> int:
    from edge_sdk.cli import UserError

    from edge_sdk.commands._model_options import with_regions

    from edge_sdk.models import model_class

    from edge_sdk.models.storage import ModelFormatError, check_model_target, is_model_dir

    from edge_sdk.commands import _auto

    if args.model is None and not args.auto:
        raise UserError("--model: required (or --auto, which chooses it)")
    if args.model is not None:
        try:
            model_class(args.model)  # an unknown name is refused before any data is read
        except ValueError as exc:
            raise UserError(f"--model: {exc}") from exc
    if args.epochs == 0 and (args.model != "classifier" or args.init_from is None or args.auto):
        raise UserError("--epochs 0 (no training): only for --model classifier with --init-from")
    if args.auto:
        _auto.check_arguments(args)
    else:
        _auto.check_not_auto(args)
    try:
        check_model_target(args.out)  # before hours of training, not after
    except ModelFormatError as exc:
        raise UserError(f"--out: {exc}") from exc
    if is_model_dir(args.out) and not args.overwrite:
        raise UserError(f"--out {args.out}: holds a trained model (pass --overwrite to replace it)")
    set_threads(args.threads)
    # with a region layout (regions.json beside the data, or --regions) models train on region patches
    from edge_sdk.commands._classifier_options import dataset_options

    data_options = dataset_options(args.model) if args.model else {}  # --auto searches the anomaly models
    if getattr(args, "tile", None):
        return _run_tiled(args, open_dataset(args, "train", **data_options), data_options)
    train = with_regions(open_dataset(args, "train", **data_options), args)
    val, val_info = None, None
    if args.val_data and data_options:
        raise UserError("--val-data: a classifier holds out --class-val-fraction of its labelled training split")
    if args.val_data:
        val_args = type(args)(**{**vars(args), "data": args.val_data})
        val = with_regions(open_dataset(val_args, "test"), val_args)
    elif not data_options:
        val, val_info = labelled_validation(args)
    auto_record = _auto.choose(args, train, val) if args.auto else None
    try:
        model = build_model(args)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    from edge_sdk.commands._model_options import is_recon
    from edge_sdk.models import distributed

    options = {}
    if args.model is not None and is_recon(args.model):
        options = dict(checkpoint=args.checkpoint or f"{str(args.out).rstrip('/')}.checkpoint.safetensors",
                       resume=args.resume, checkpoint_every=args.checkpoint_every)
    elif getattr(args, "resume", False):
        raise UserError("--resume: applies to resganad and grdnet (the other models train in one pass)")
    t0 = time.perf_counter()
    try:
        model.fit(train, val_dataset=val, val_fraction=args.val_fraction, threshold_method=args.threshold,
                  quantile=args.quantile, progress=not args.no_progress and distributed.is_main(), **options)
    except ValueError as exc:  # includes DataError raised while reading images
        raise UserError(str(exc)) from exc
    if val_info is not None:
        model.training_info["labelled_validation"] = val_info
    if auto_record is not None:
        model.training_info["auto"] = auto_record
    from edge_sdk.commands._recipe import recorded

    model.training_info["recipe"] = recorded(args, args.parser)
    if not distributed.is_main():  # rank 0 alone writes the model directory and reports
        distributed.barrier()
        return 0
    warn_small_calibration(model.calibration)
    try:
        out = model.save(args.out)
    except ModelFormatError as exc:  # --out changed during training
        raise UserError(f"--out: {exc}") from exc
    finally:
        distributed.barrier()
    if options and not args.checkpoint:  # the default checkpoint served a run that is now complete
        try:
            os.remove(options["checkpoint"])
        except FileNotFoundError:
            pass
    from edge_sdk.models.base import model_size_bytes

    print(json.dumps({"model": args.model, "out": str(out), "train_images": model.training_info["train_images"],
                      "seconds": round(time.perf_counter() - t0, 2), "model_bytes": model_size_bytes(out),
                      "calibration": model.calibration,
                      **({"auto": _auto.summary(auto_record)} if auto_record is not None else {})}, indent=2))
    return 0


def _run_tiled(args, frames, data_options) -> int:
    """`train --tile`: the model learns the tiles of the training frames and is calibrated on frame
    scores (edge_sdk.tiling.fit_tiled)."""
    from edge_sdk.cli import UserError
    from edge_sdk.tiling import fit_tiled

    if args.auto or data_options:
        raise UserError("--tile: applies to the anomaly models (padim, patchcore, mhbc, resganad, grdnet), "
                        "without --auto")
    if getattr(args, "regions", None):
        raise UserError("--tile: tiles are a generated region layout; --regions cannot be given with it")
    tiling = tiling_from_args(args, frames)
    val = None
    if args.val_data:
        val = open_dataset(type(args)(**{**vars(args), "data": args.val_data}), "test")
    try:
        model = build_model(args)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    t0 = time.perf_counter()
    try:
        fit_tiled(model, frames, tiling, val_frames=val, val_fraction=args.val_fraction,
                  threshold_method=args.threshold, quantile=args.quantile, progress=not args.no_progress)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    from edge_sdk.commands._recipe import recorded

    model.training_info["recipe"] = recorded(args, args.parser)
    warn_small_calibration(model.calibration)
    out = model.save(args.out)
    print(json.dumps({"model": args.model, "out": str(out), "train_frames": model.training_info["train_frames"],
                      "train_tiles": model.training_info["train_tiles"], "tiling": tiling.to_dict(),
                      "seconds": round(time.perf_counter() - t0, 2), "calibration": model.calibration}, indent=2))
    return 0
