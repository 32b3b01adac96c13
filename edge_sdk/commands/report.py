"""`edge-sdk report`: evaluates a model on a test split and writes one self-contained HTML page
(curves, score histograms with the threshold and review band, confusion matrix, per-defect AUROC,
the worst false accepts and false rejects with their heatmaps, region / k-of-n results, lineage)."""

from __future__ import annotations

import io

import numpy as np

from edge_sdk.cli import bounded_int, threads_option


def register(sub) -> None:
    from edge_sdk.commands._model_options import add_region_arguments
    from edge_sdk.commands.train import add_data_arguments

    p = sub.add_parser("report", help="evaluate a model and write a self-contained HTML validation report",
                       description="Scores the test split as `edge-sdk eval` does and writes one HTML page that "
                                   "opens offline in any browser.")
    p.add_argument("model_dir", help="model directory written by `edge-sdk train`")
    add_data_arguments(p)
    p.add_argument("--out", required=True, metavar="HTML", help="the page to write (e.g. report.html)")
    p.add_argument("--bundle", help="the bundle exported from this model: its review band is shown and its "
                                    "manifest sha256 recorded (the bundle is verified first)")
    p.add_argument("--worst", type=bounded_int("--worst", 0, 100), default=4, metavar="N",
                   help="how many of the worst false accepts and of the worst false rejects to show (default 4)")
    p.add_argument("--threads", type=threads_option("--threads"), help="CPU threads for torch and the kernels")
    add_region_arguments(p, k_of_n=True)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def worst_errors(labels: np.ndarray, scores: np.ndarray, threshold: float, n: int) -> list[tuple[str, int]]:
    """(kind, index) of the n defective images accepted with the lowest scores, then of the n good
    images rejected with the highest (the most confidently wrong first)."""
    finite = np.isfinite(scores)
    fa = np.flatnonzero(finite & (labels == 1) & (scores < threshold))
    fr = np.flatnonzero(finite & (labels == 0) & (scores >= threshold))
    fa = fa[np.argsort(scores[fa], kind="stable")][:n]
    fr = fr[np.argsort(-scores[fr], kind="stable")][:n]
    return [("false accept", int(i)) for i in fa] + [("false reject", int(i)) for i in fr]


def _bundle(path: str):
    """(review band in raw-score units or None, manifest bytes) of a verified bundle."""
    from edge_sdk.bundle.reader import manifest_bytes, read_bundle

    b = read_bundle(path)
    band = float((b.manifest.get("decision") or {}).get("review_band", 0.0))
    c = b.manifest["calibration"]
    width = band * (c["max"] - c["min"])  # |normalized - 0.5| < band, normalized = (s - t) / (max - min) + 0.5
    return ((c["threshold"] - width, c["threshold"] + width) if band > 0 else None), manifest_bytes(b.path)


def run(args) -> int:
    from edge_sdk.atomic import write_text
    from edge_sdk.bundle.schema import BundleError
    from edge_sdk.cli import UserError
    from edge_sdk.commands._model_options import region_report, with_regions
    from edge_sdk.commands.eval import evaluate, without_validation
    from edge_sdk.commands.train import open_dataset, set_threads
    from edge_sdk.heatmap_png import caption_text, heatmap_panel, verdict_of
    from edge_sdk.models import load_model
    from edge_sdk.models.storage import ModelFormatError
    from edge_sdk.report import lineage, page

    if not args.out.lower().endswith((".html", ".htm")):
        raise UserError(f"--out {args.out!r}: expected a .html file")
    set_threads(args.threads)
    try:
        model = load_model(args.model_dir)
    except (ModelFormatError, ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from exc
    band, manifest = None, None
    if args.bundle:
        try:
            band, manifest = _bundle(args.bundle)
        except (BundleError, OSError, KeyError) as exc:
            raise UserError(f"--bundle {args.bundle}: {exc}") from exc
    from edge_sdk.commands._classifier_options import dataset_options

    test = with_regions(without_validation(open_dataset(args, "test", **dataset_options(model.name)), model), args)
    try:
        summary, res = evaluate(model, test, progress=not args.no_progress)
        regions = region_report(model, test, res, k=args.k_of_n)
    except ValueError as exc:  # DataError (unreadable image, mask size) is a ValueError
        raise UserError(str(exc)) from exc

    labels, scores = np.asarray(res["labels"]), np.asarray(res["scores"], dtype=np.float64)
    threshold = (model.calibration or {}).get("threshold")
    worst = []
    for kind, i in (worst_errors(labels, scores, threshold, args.worst) if threshold is not None else []):
        s = test[i]
        sheet = heatmap_panel(s.image, res["maps"][i], model.calibration, s.mask,
                              caption_text(scores[i], threshold, verdict_of(scores[i], threshold),
                                           f"({s.defect_type}, {kind})"))
        buf = io.BytesIO()
        sheet.save(buf, format="PNG")
        worst.append({"kind": kind, "path": s.path or f"image {i}", "score": float(scores[i]), "png": buf.getvalue()})

    paths = getattr(test, "paths", None) or [f"{i}" for i in range(len(labels))]
    defect_types = list(test.defect_types) if hasattr(test, "defect_types") else ["" for _ in labels]
    info = lineage.lineage(model_dir=args.model_dir, data_root=args.data, paths=paths, labels=labels,
                           defect_types=defect_types, bundle=args.bundle, bundle_manifest=manifest)
    html = page.render(title=f"Validation report: {model.name} on {args.data}", summary=summary, labels=labels,
                       scores=scores, defect_types=defect_types, threshold=threshold, band=band, worst=worst,
                       regions=regions, lineage=info)
    write_text(args.out, html)
    print(f"report: {len(labels)} images, image AUROC {summary.get('image_auroc')}, "
          f"{sum(w['kind'] == 'false accept' for w in worst)} false accept(s) and "
          f"{sum(w['kind'] == 'false reject' for w in worst)} false reject(s) shown -> {args.out}")
    return 0
