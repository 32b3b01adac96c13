"""Writes tests/data/gpu_fixtures/: one small bundle of every post-processing kind (the networks and
statistics of tests/bundle_helpers.py), the images they are judged on and the CPU runtime's outputs
for them. benchmarks/gpu_check compares the GPU runtime with the CPU runtime on these, so a GPU
machine needs neither torch nor a training run. Needs torch and onnx (this machine, not the GPU one).

    python3 scripts/make_gpu_fixtures.py [--out tests/data/gpu_fixtures]

Re-run it when the bundle format or a kind's arithmetic changes (the stored outputs are checked by
tests/test_gpu_check.py on every CPU run, so a stale set fails there first).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name -> (maker, kwargs, image kind); kept small: the whole folder travels in the working tree.
KINDS = {
    "mahalanobis": ("embedding", dict(kind="mahalanobis", image_score="max_blurred"), "rgb"),
    "knn_reweight": ("embedding", dict(kind="knn", image_score="max_raw", reweight=True), "rgb"),
    "knn_fp16_bank": ("embedding", dict(kind="knn", image_score="max_raw", bank_dtype=np.float16), "rgb"),
    "mhbc": ("embedding", dict(kind="mhbc", image_score="max_raw"), "rgb"),
    "ssim": ("ssim", dict(), "gray"),
    "mask": ("mask", dict(), "gray"),
}


def _images(kind: str, rng) -> list[np.ndarray]:
    # Mostly same-size uint8 images (the TensorRT backend's device cycle), plus one of another size
    # and channel count (the host path: replicate or reduce channels, resize).
    if kind == "rgb":
        imgs = [rng.integers(0, 256, (32, 40, 3), dtype=np.uint8) for _ in range(5)]
        imgs.append(rng.integers(0, 256, (45, 51), dtype=np.uint8))
    else:
        imgs = [rng.integers(0, 256, (32, 32), dtype=np.uint8) for _ in range(5)]
        imgs.append(rng.integers(0, 256, (40, 36), dtype=np.uint8))
    return imgs


def _parts(maker: str, kwargs: dict):
    from tests import bundle_helpers as bh

    if maker == "embedding":
        return bh.embedding_parts(**kwargs)
    if maker == "ssim":
        return bh.ssim_parts(**kwargs)
    return bh.mask_parts(**kwargs)


def _run_cpu(bundle: Path, images):
    import edge_sdk

    res = edge_sdk.Runtime(bundle, device="cpu", threads=1, max_batch=4).predict(images)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "tests" / "data" / "gpu_fixtures"))
    args = ap.parse_args(argv)
    import torch

    from converters import export_bundle

    torch.set_num_threads(1)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    index = {}
    rng = np.random.default_rng(20240611)
    for name, (maker, kwargs, image_kind) in KINDS.items():
        parts = _parts(maker, kwargs)
        imgs = _images(image_kind, rng)
        bundle = out / f"{name}.bundle"
        export_bundle(parts, bundle, model_type=parts.postprocess["kind"])
        # Threshold halfway between two middle scores, so both verdicts occur and none hinges on
        # the last bit of a score computed in another order on the GPU.
        s = np.sort(_run_cpu(bundle, imgs).scores.astype(np.float64))
        mid = len(s) // 2
        parts.calibration = {"threshold": float((s[mid - 1] + s[mid]) / 2), "min": float(s[0]),
                             "max": float(s[-1]) + 1e-3}
        shutil.rmtree(bundle)
        export_bundle(parts, bundle, model_type=parts.postprocess["kind"])
        res = _run_cpu(bundle, imgs)
        arrays = {f"image_{i}": im for i, im in enumerate(imgs)}
        arrays.update({"scores": res.scores, "normalized": res.normalized, "verdict_codes": res.verdict_codes})
        arrays.update({f"heatmap_{i}": np.asarray(h, np.float32) for i, h in enumerate(res.heatmaps)})
        np.savez_compressed(out / f"{name}.npz", **arrays)
        index[name] = {"bundle": bundle.name, "data": f"{name}.npz", "kind": parts.postprocess["kind"],
                       "images": len(imgs), "verdicts": sorted(set(res.verdicts.tolist()))}
        print(f"{name}: {parts.postprocess['kind']}, verdicts {index[name]['verdicts']}")
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
