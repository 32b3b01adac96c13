"""Records what the C++ runtime outputs for a set of bundles and images, and compares two records bit
for bit: the check that a change of the runtime's code left its CPU outputs unchanged.

    python benchmarks/runtime_outputs.py make --workdir W        # bundles: demo data, MTD, every kind
    python benchmarks/runtime_outputs.py record --workdir W --out before.npz
    ... change the code, rebuild ...
    python benchmarks/runtime_outputs.py record --workdir W --out after.npz
    python benchmarks/runtime_outputs.py compare before.npz after.npz

`make` trains through the CLI (synthetic vial data: PatchCore; Magnetic Tile when
../shared/datasets/magnetic_tile exists: PaDiM and MhBC) and exports small bundles of every
post-processing kind and variant (float16 bank, reweighting, regions with a review band); `record` runs each bundle on its images at 1 and 2 threads (scores, normalized scores,
verdict names, heatmaps); `compare` prints the largest difference per bundle and exits 1 unless every
array is identical.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MTD = Path(os.environ.get("EDGE_SDK_MTD", REPO.parent / "shared" / "datasets" / "magnetic_tile"))


def _cli(argv: list[str]) -> None:
    from edge_sdk import cli

    print("$ edge-sdk " + " ".join(argv), flush=True)
    if cli.main(argv):
        sys.exit(f"failed: edge-sdk {' '.join(argv)}")


def make(work: Path, trained: bool = True) -> None:
    from edge_sdk.data.synthetic import make_dataset

    work.mkdir(parents=True, exist_ok=True)
    images: dict[str, list[str]] = {}
    if not trained:  # keep the trained bundles (and their images) of an earlier make
        images = {k: v for k, v in json.loads((work / "images.json").read_text()).items()
                  if k == "b-demo" or k.startswith("b-mtd")}
    if trained:
        data = Path(make_dataset(work / "vial", kind="vial", n_train=30, n_test=16, size=256, seed=0, overwrite=True))
        _cli(["train", "--model", "patchcore", "--data", str(data), "--layout", "mvtec", "--out", str(work / "m-demo")])
        _cli(["export", str(work / "m-demo"), "--out", str(work / "b-demo"), "--overwrite"])
        images["b-demo"] = sorted(str(p) for p in (data).rglob("test/**/*.png"))
    if trained and MTD.is_dir():
        from edge_sdk.data import load_dataset

        test = load_dataset(str(MTD), "mtd", "test")
        step = max(1, len(test) // 60)
        picked = [test.paths[i] for i in range(0, len(test), step)]
        for model, extra in (("padim", ["--input-norm", "per_image_highpass"]), ("mhbc", [])):
            _cli(["train", "--model", model, "--data", str(MTD), "--layout", "mtd", "--out", str(work / f"m-mtd-{model}"),
                  *extra])
            _cli(["export", str(work / f"m-mtd-{model}"), "--out", str(work / f"b-mtd-{model}"), "--overwrite"])
            images[f"b-mtd-{model}"] = [str(p) for p in picked]
    # Every post-processing kind and the variants the trained models above do not cover (float16
    # bank, PatchCore reweighting, regions with a review band), from the tests' small networks, on
    # images of the input size, an odd size and float32 pixels.
    from tests import bundle_helpers as H

    try:
        from edge_sdk.converters import export_bundle
    except ImportError:  # a tree from before the converters were installed under the SDK's name
        from converters import export_bundle  # type: ignore[no-redef]
    regions = [dict(name="a", x=0, y=0, width=30, height=40, threshold=0.1),
               dict(name="b", x=34, y=4, width=30, height=30, threshold=0.3)]
    specs = {
        "b-ssim": (H.ssim_parts(), "resganad", {}),
        "b-ssim-regions": (H.ssim_parts(regions=regions, frame={"width": 64, "height": 40}), "resganad",
                           {"review_band": 0.1}),
        "b-maha": (H.embedding_parts("mahalanobis"), "padim", {}),
        "b-maha-blurred": (H.embedding_parts("mahalanobis", image_score="max_blurred"), "padim", {}),
        "b-knn": (H.embedding_parts("knn"), "patchcore", {}),
        "b-knn-reweight": (H.embedding_parts("knn", reweight=True), "patchcore", {"review_band": 0.05}),
        "b-knn-f16": (H.embedding_parts("knn", bank_dtype=np.float16), "patchcore", {}),
        "b-mhbc": (H.embedding_parts("mhbc"), "mhbc", {}),
        "b-mask": (H.mask_parts(), "grdnet", {}),
    }
    rng = np.random.default_rng(0)
    for name, (parts, kind, kw) in specs.items():
        export_bundle(parts, work / name, model_type=kind, overwrite=True, **kw)
        m = json.loads((work / name / "manifest.json").read_text())
        c = m["input"]["channels"]
        if m.get("regions"):
            h, w = m["frame"]["height"], m["frame"]["width"]
            sizes = [(h, w)] * 4
        else:
            h, w = m["input"]["height"], m["input"]["width"]
            sizes = [(h, w)] * 5 + [(h + 5, w + 3)]
        imgs = [rng.integers(0, 256, (a, b) if c == 1 else (a, b, 3), dtype=np.uint8) for a, b in sizes]
        if not m.get("regions"):
            imgs.append(imgs[0].astype(np.float32))
        folder = work / f"{name}-images"
        folder.mkdir(exist_ok=True)
        images[name] = []
        for i, img in enumerate(imgs):
            np.save(folder / f"{i}.npy", img)
            images[name].append(str(folder / f"{i}.npy"))
    (work / "images.json").write_text(json.dumps(images, indent=1))


def _load(paths: list[str]) -> list[np.ndarray]:
    from PIL import Image

    out = []
    for p in paths:
        if p.endswith(".npy"):
            out.append(np.load(p))
        else:
            out.append(np.asarray(Image.open(p).convert("RGB")))
    return out


def record(work: Path, out: Path) -> None:
    import edge_sdk

    images = json.loads((work / "images.json").read_text())
    arrays: dict[str, np.ndarray] = {}
    for name, paths in images.items():
        imgs = _load(paths)
        for threads in (1, 2):
            rt = edge_sdk.Runtime(work / name, threads=threads, max_batch=3)
            r = rt.predict(imgs, on_error="review")
            key = f"{name}/t{threads}"
            arrays[key + "/scores"] = r.scores
            arrays[key + "/normalized"] = r.normalized
            arrays[key + "/verdicts"] = np.asarray([str(v) for v in r.verdicts])
            heat = r.heatmaps if isinstance(r.heatmaps, list) else list(r.heatmaps)
            arrays[key + "/heatmaps"] = np.concatenate([np.ravel(h) for h in heat if h is not None])
            if r.regions is not None:
                arrays[key + "/region_scores"] = np.asarray(r.regions.scores, np.float32)
                arrays[key + "/region_verdicts"] = np.asarray(r.regions.verdicts).astype(str)
            print(f"{key}: {len(imgs)} images, verdicts {dict(zip(*np.unique(arrays[key + '/verdicts'], return_counts=True)))}")
    np.savez_compressed(out, **arrays)
    print(f"wrote {out} ({len(arrays)} arrays)")


def compare(a: Path, b: Path) -> int:
    A, B = np.load(a), np.load(b)
    bad = 0
    for k in sorted(set(A.files) | set(B.files)):
        if k not in A.files or k not in B.files:
            print(f"{k}: only in {'before' if k in A.files else 'after'}")
            bad += 1
            continue
        x, y = A[k], B[k]
        same = x.shape == y.shape and (np.array_equal(x, y) if x.dtype.kind in "US" else
                                       np.array_equal(x.view(np.uint32), y.view(np.uint32)))
        diff = "" if same or x.dtype.kind in "US" or x.shape != y.shape else \
            f" max |diff| {np.nanmax(np.abs(x.astype(np.float64) - y)):.3g}"
        print(f"{k}: {x.size} values, {'bit-identical' if same else 'DIFFERENT' + diff}")
        bad += not same
    print(f"{len(set(A.files) | set(B.files)) - bad} identical, {bad} different")
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--workdir", required=True, type=Path)
    m.add_argument("--small-only", action="store_true", help="remake the small bundles, keep the trained ones")
    r = sub.add_parser("record")
    r.add_argument("--workdir", required=True, type=Path)
    r.add_argument("--out", required=True, type=Path)
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = ap.parse_args()
    if args.cmd == "make":
        make(args.workdir, trained=not args.small_only)
        return 0
    if args.cmd == "record":
        record(args.workdir, args.out)
        return 0
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
