"""`edge-sdk eval`: scores a test split with a saved model and writes the metrics as JSON."""

from __future__ import annotations

from edge_sdk.cli import bounded_int, threads_option

import json
import os
import time

import numpy as np

from edge_sdk import atomic
from edge_sdk.commands.train import add_data_arguments, open_dataset, set_threads


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained model on a test split (metrics JSON, heatmap PNGs)",
                       description="Image AUROC, pixel AUROC, PRO (to 30 % FPR), AUPRC and F1 / accuracy / "
                                   "TPR / TNR at the model's stored threshold.")
    p.add_argument("model_dir", help="model directory written by `edge-sdk train`")
    add_data_arguments(p)
    p.add_argument("--json", metavar="OUT", help="also write the metrics to this JSON file (they are always printed)")
    p.add_argument("--heatmaps", help="folder for heatmap PNGs of a few test images")
    p.add_argument("--num-heatmaps", type=bounded_int("--num-heatmaps", 0, 10_000), default=8, help="how many heatmap PNGs (default 8)")
    p.add_argument("--threads", type=threads_option("--threads"), help="CPU threads for torch and the kernels")
    from edge_sdk.commands._model_options import add_region_arguments

    add_region_arguments(p, k_of_n=True)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def without_validation(test, model):
    """The test split less the images training held out to calibrate on (recorded in the model):
    a threshold is never evaluated on the images it was chosen on."""
    import sys

    from edge_sdk.data.dataset import ImageDataset

    held = set(((model.training_info or {}).get("labelled_validation") or {}).get("files") or [])
    if not held:
        return test
    kept = [e for e in test.entries if e.image_path not in held]
    print(f"eval: leaving out {len(test) - len(kept)} image(s) training calibrated on; {len(kept)} remain",
          file=sys.stderr)
    return ImageDataset(kept, gray=test.gray, name=test.name, split=test.split)


def evaluate(model, dataset, *, progress: bool = True) -> tuple[dict, dict]:
    """Metrics of ``model`` on ``dataset`` and the raw results (scores, labels, maps, masks)."""
    from edge_sdk import metrics

    from edge_sdk.tiling import score_frames, tiling_of_model

    t0 = time.perf_counter()
    tiling = tiling_of_model(model)  # trained with --tile: each frame scored on its tiles, maps stitched
    if tiling is not None:
        res = score_frames(model, tiling, dataset, keep_maps=True)
    else:
        res = model.score_dataset(dataset, progress=progress, desc="evaluating", keep_maps=True)
    seconds = time.perf_counter() - t0
    labels, scores = res["labels"], res["scores"]
    both = bool((labels == 0).any() and (labels == 1).any())
    has_masks = any(m.any() for m in res["masks"])
    cal = model.calibration or {}
    out = {
        "model": model.name, "images": int(len(labels)), "anomalous": int(labels.sum()),
        "image_auroc": float(metrics.image_auroc(labels, scores)) if both else None,
        "auprc": float(metrics.auprc(labels, scores)) if both else None,
        "pixel_auroc": float(metrics.pixel_auroc(res["masks"], res["maps"])) if has_masks else None,
        "pro": float(metrics.pro_score(res["masks"], res["maps"], fpr_limit=0.3)) if has_masks else None,
        "threshold": cal.get("threshold"),
    }
    if cal.get("threshold") is not None and both:
        tm = metrics.threshold_metrics(labels, scores, cal["threshold"])
        out.update({k: (float(v) if isinstance(v, (float, np.floating)) else int(v)) for k, v in tm.items()})
    else:
        out.update({"f1": None, "accuracy": None, "tpr": None, "tnr": None, "precision": None})
    out["seconds"] = round(seconds, 3)
    out["ms_per_image"] = round(1000.0 * seconds / max(1, len(labels)), 2)
    return out, res


def pick_for_heatmaps(labels: np.ndarray, count: int) -> list[int]:
    """Mostly anomalous images, a couple of good ones, spread over the data set."""
    bad, good = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    n_good = min(len(good), max(1, count // 4)) if count > 1 else 0
    n_bad = min(len(bad), count - n_good)
    n_good = min(len(good), count - n_bad)
    pick = []
    for group, n in ((bad, n_bad), (good, n_good)):
        if n > 0:
            pick += group[np.linspace(0, len(group) - 1, n).round().astype(int)].tolist()
    return pick


def write_heatmaps(model, dataset, res: dict, folder: str, count: int) -> list[str]:
    from edge_sdk.heatmap_png import caption_text, heatmap_panel, save_png, verdict_of

    threshold = (model.calibration or {}).get("threshold")
    paths = []
    for i in pick_for_heatmaps(res["labels"], count):
        s = dataset[i]
        score = float(res["scores"][i])
        title = caption_text(score, threshold, verdict_of(score, threshold), f"({s.defect_type})")
        stem = os.path.splitext(os.path.basename(s.path))[0] if s.path else f"{i:04d}"
        path = os.path.join(folder, f"{i:04d}_{s.defect_type}_{stem}.png")
        save_png(heatmap_panel(s.image, res["maps"][i], model.calibration, s.mask, title), path)
        paths.append(path)
    return paths


def write_json(obj, path: str) -> None:
    atomic.write_json(path, obj)


def run(args) -> int:
    from edge_sdk.cli import UserError
    from edge_sdk.models import load_model
    from edge_sdk.models.storage import ModelFormatError

    set_threads(args.threads)
    try:
        model = load_model(args.model_dir)
    except (ModelFormatError, ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from exc
    from edge_sdk.commands._model_options import region_report, with_regions

    from edge_sdk.commands._classifier_options import dataset_options

    test = without_validation(open_dataset(args, "test", **dataset_options(model.name)), model)
    from edge_sdk.tiling import tiling_of_model

    if tiling_of_model(model) is None:  # a tiled model cuts its own tiles (input.tiling)
        test = with_regions(test, args)
    evaluator, heatmap_writer = evaluate, write_heatmaps
    if model.family == "supervised":  # class metrics, CAM localization and ejects: _classifier_eval.py
        from edge_sdk.commands._classifier_eval import evaluate as evaluator, write_heatmaps as heatmap_writer
    try:
        out, res = evaluator(model, test, progress=not args.no_progress)
        report = region_report(model, test, res, k=args.k_of_n)
    except ValueError as exc:  # DataError (unreadable image, mask size) is a ValueError
        raise UserError(str(exc)) from exc
    if report is not None:
        out["regions"] = report
    if args.heatmaps:
        out["heatmaps"] = heatmap_writer(model, test, res, args.heatmaps, args.num_heatmaps)
    if args.json:
        write_json(out, args.json)
    print(json.dumps({k: v for k, v in out.items() if k != "heatmaps"}, indent=2))
    return 0
