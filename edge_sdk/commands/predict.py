"""`edge-sdk predict BUNDLE IMAGES... [--heatmaps DIR]`: verdicts of image files through the C++ runtime."""

from __future__ import annotations

from edge_sdk.cli import bounded_int, threads_option

import csv
import io
import json
import os


def register(sub) -> None:
    p = sub.add_parser("predict", help="judge image files with a bundle (C++ runtime); verdicts as CSV/JSON, "
                                       "heatmap overlays as PNG",
                       description="Runs the images (files, or folders searched for image files) through the "
                                   "C++ runtime and writes one row per image: path, score, normalized score, "
                                   "verdict (accept / reject / review), error, and per-region results. Images "
                                   "the runtime cannot judge are 'review' with the reason.")
    p.add_argument("bundle", help="bundle directory or archive")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--out", default="verdicts.csv", help="results file, .csv or .json (default verdicts.csv)")
    p.add_argument("--heatmaps", metavar="DIR", help="write a heatmap overlay PNG per image into DIR")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda:N (see `edge-sdk devices`)")
    p.add_argument("--threads", type=threads_option("--threads"), default=None,
                   help="CPU threads of the runtime (default: all cores)")
    p.add_argument("--precision", default="fp32", help="network variant of the bundle: fp32 (default), fp16, int8 or bf16 (bf16: backend openvino)")
    p.add_argument("--batch", type=bounded_int("--batch", 1, 4096), default=16, help="images per runtime call (default 16)")
    p.add_argument("--name-defects", metavar="CLASSIFIER_BUNDLE",
                   help="a classifier bundle that names the defect type of each image BUNDLE rejects or sends to "
                        "review (columns defect_type, defect_probability, classifier_agrees); the verdicts stay "
                        "BUNDLE's (edge_sdk.compose)")
    p.set_defaults(func=run)


def _progress(total: int):
    """A progress bar on stderr for runs long enough to need one (tqdm, when installed)."""
    if total < 2:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # a runtime-only install: no bar, the summary line still comes
        return None
    return tqdm(total=total, unit="img", desc="predict", leave=False)


MASK_FOLDERS = {"masks", "mask", "ground_truth", "groundtruth", "gt"}


def _files(items: list[str]) -> list[str]:
    """The image files named or found in the folders named. Only regular files are kept (reading a
    FIFO named like an image would wait forever for a writer); the others are listed on stderr."""
    import sys

    from edge_sdk.cli import UserError
    from edge_sdk.data.imageio import is_image_file, is_regular_file

    out, skipped, mask_dirs = [], [], []
    for item in items:
        if os.path.isdir(item):
            named = []
            for d, subdirs, fs in os.walk(item):
                # Ground-truth masks beside the parts (the folder / mvtec layouts) are not parts to judge.
                for sd in [sd for sd in subdirs if sd.lower() in MASK_FOLDERS]:
                    subdirs.remove(sd)
                    mask_dirs.append(os.path.join(d, sd))
                named += [os.path.join(d, f) for f in fs if is_image_file(f)]
            named.sort()
            regular = [is_regular_file(p) for p in named]
            found = [p for p, ok in zip(named, regular) if ok]
            skipped += [p for p, ok in zip(named, regular) if not ok]
            if not found:
                raise UserError(f"{item}: no image files in this folder"
                                + (f" ({len(named)} skipped: not regular files)" if named else ""))
            out += found
        elif is_regular_file(item):
            out.append(item)
        elif os.path.exists(item):
            skipped.append(item)
        else:
            raise UserError(f"{item}: no such image file or folder")
    if mask_dirs:
        print(f"edge-sdk predict: not judged, mask folders: {', '.join(mask_dirs)} (name the files to judge them)",
              file=sys.stderr)
    if skipped:
        print(f"edge-sdk predict: skipped {len(skipped)} path(s) that are not regular files: {', '.join(skipped)}",
              file=sys.stderr)
    if not out:
        raise UserError("no image files to judge (every path given was skipped)")
    return out


def display_heatmap(raw, manifest: dict):
    """Raw map -> ([0, 1] map, colour-bar ticks) the way the bundle's model displays it:
    "minmax_per_patch" per map, "raw" as is (already probabilities), otherwise the calibration
    (0.5 = decision threshold)."""
    import numpy as np

    from edge_sdk import kernels
    from edge_sdk.heatmap_png import CALIBRATED_TICKS

    raw = np.ascontiguousarray(raw, dtype=np.float32)
    mode = manifest["postprocess"].get("heatmap")
    if mode == "minmax_per_patch":
        return kernels.minmax_normalize(raw[None])[0], ((0.0, "min"), (1.0, "max of this image"))
    if mode == "raw":
        return np.clip(raw, 0.0, 1.0), ((0.0, "0"), (0.5, "0.5"), (1.0, "1"))
    c = manifest["calibration"]
    return kernels.calibrated_normalize(raw, c["threshold"], c["min"], c["max"]), CALIBRATED_TICKS


def overlay_png(image, raw_map, manifest: dict, path: str, caption: str) -> None:
    """Labelled image | heatmap sheet with a colour bar and caption; written atomically."""
    from edge_sdk.heatmap_png import panels, save_png

    heat01, ticks = display_heatmap(raw_map, manifest)
    save_png(panels(image, heat01, caption, ticks=ticks), path)


def _write_atomic(path: str, text: str) -> None:
    from edge_sdk.atomic import write_text

    write_text(path, text, newline="")


def run(args) -> int:
    import numpy as np

    from edge_sdk.cli import UserError
    from edge_sdk.commands._runtime import open_runtime
    from edge_sdk.data import DataError
    from edge_sdk.data.imageio import read_image

    files = _files(args.images)
    rt = open_runtime(args.bundle, device=args.device, threads=args.threads, precision=args.precision,
                      heatmaps=bool(args.heatmaps))
    namer = None
    if args.name_defects:
        from edge_sdk.compose import DefectNaming

        try:
            namer = DefectNaming(rt, open_runtime(args.name_defects, device=args.device, threads=args.threads,
                                                  heatmaps=False))
        except ValueError as exc:
            raise UserError(f"--name-defects: {exc}") from exc
    gray = rt.manifest["input"]["channels"] == 1
    if args.heatmaps:
        from edge_sdk.heatmap_png import caption_text

        os.makedirs(args.heatmaps, exist_ok=True)
        threshold = (rt.manifest.get("calibration") or {}).get("threshold")
    rows = []
    counts = {"accept": 0, "reject": 0, "review": 0}
    bar = _progress(len(files))
    for b in range(0, len(files), args.batch):
        chunk = files[b:b + args.batch]
        images, read_errors = [], {}
        for i, path in enumerate(chunk):
            try:
                images.append(read_image(path, gray=gray))
            except (DataError, OSError, ValueError) as exc:
                read_errors[i] = f"cannot read the image: {exc}"
                images.append(np.zeros((1, 1, 5), np.uint8))  # judged "review" by the runtime, never accepted
        named = namer.predict(images, on_error="review") if namer else None
        res = named.anomaly if named else rt.predict(images, on_error="review")
        for i, path in enumerate(chunk):
            r = res[i]
            error = read_errors.get(i, r.error)
            row = {"path": path, "score": r.score, "normalized": r.normalized, "verdict": r.verdict,
                   "error": error or ""}
            for name, reg in (r.regions or {}).items():
                row[f"{name}.score"] = reg["score"]
                row[f"{name}.verdict"] = reg["verdict"]
            if rt.class_names is not None:  # classifier bundles: the top class and each probability
                row["top_class"] = r.top_class or ""
                row.update({f"p_{name}": p for name, p in r.probabilities.items()})
            if named is not None:
                row.update(defect_type=named.defect_type[i] or "", defect_probability=float(named.defect_probability[i]),
                           classifier_agrees=bool(named.classifier_agrees[i]) if named.defect_type[i] else "")
            rows.append(row)
            counts[r.verdict] += 1
            if args.heatmaps and r.heatmap is not None and i not in read_errors:
                stem = os.path.splitext(os.path.basename(path))[0]
                out = os.path.join(args.heatmaps, f"{b + i:05d}_{stem}.png")
                extra = f"normalized {r.normalized:.3f}" + (f"   top {r.top_class}" if r.top_class else "")
                overlay_png(images[i], r.heatmap, rt.manifest, out, caption_text(r.score, threshold, r.verdict, extra))
        if bar is not None:
            bar.update(len(chunk))
            bar.set_postfix(counts, refresh=False)
    if bar is not None:
        bar.close()
    if args.out.endswith(".json"):
        clean = [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()} for row in rows]
        _write_atomic(args.out, json.dumps({"bundle": str(args.bundle), "backend": rt.backend, "results": clean},
                                           indent=2, allow_nan=False) + "\n")
    else:
        fields = list(dict.fromkeys(k for row in rows for k in row))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
        _write_atomic(args.out, buf.getvalue())
    print(f"{len(rows)} image(s): {counts['accept']} accept, {counts['reject']} reject, {counts['review']} review"
          f" -> {args.out}" + (f", heatmaps in {args.heatmaps}" if args.heatmaps else ""))
    return 0
