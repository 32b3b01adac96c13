"""Every output of the runtime, bit for bit, on a fixed set of small bundles (each post-processing
kind, float16 bank, PatchCore reweighting, regions with a review band, float32 and odd-size
images, 1 and 2 threads): for checking that a refactoring of the C++ runtime leaves the CPU
outputs unchanged, between two builds of the package.

  python3 scripts/runtime_outputs.py make DIR               # bundles into DIR (this checkout's package)
  python3 scripts/runtime_outputs.py run DIR PKG OUT.npz    # outputs with the package found in PKG
  python3 scripts/runtime_outputs.py compare A.npz B.npz    # exit 1 when any array differs

PKG is a folder holding an edge_sdk package with its compiled core (e.g. build-cov/py of
scripts/coverage.sh, or "-" for the one on sys.path). Verdicts are compared by name.
"""
import json
import os
import sys

import numpy as np

mode = sys.argv[1] if len(sys.argv) > 1 else ""
if mode == "compare":
    a, b = np.load(sys.argv[2]), np.load(sys.argv[3])
    differ = sorted(set(a.files) ^ set(b.files)) + [k for k in a.files if k in b.files and not np.array_equal(a[k], b[k])]
    print(f"{len(a.files)} arrays compared; differ: {differ}")
    sys.exit(1 if differ else 0)
if mode not in ("make", "run"):
    sys.exit(__doc__)
root = sys.argv[2]
pkg = sys.argv[3] if mode == "run" else "-"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, converters/
if pkg != "-":
    sys.path.insert(0, os.path.abspath(pkg))
import edge_sdk  # noqa: E402

assert pkg == "-" or edge_sdk.__file__.startswith(os.path.abspath(pkg)), edge_sdk.__file__
rng = np.random.default_rng(123)
if mode == "make":
    import torch
    torch.set_num_threads(1)
    from converters import export_bundle
    from tests.bundle_helpers import embedding_parts, mask_parts, ssim_parts
    os.makedirs(root, exist_ok=True)
    specs = {
        "ssim": (lambda: ssim_parts(), "resganad", {}),
        "ssim_regions": (lambda: ssim_parts(regions=[dict(name="a", x=0, y=0, width=30, height=40, threshold=0.1),
                                                     dict(name="b", x=34, y=4, width=30, height=30, threshold=0.3)],
                                            frame={"width": 64, "height": 40}), "resganad", {"review_band": 0.1}),
        "maha_blurred": (lambda: embedding_parts("mahalanobis", image_score="max_blurred"), "mahalanobis", {}),
        "maha_raw": (lambda: embedding_parts("mahalanobis"), "mahalanobis", {}),
        "knn": (lambda: embedding_parts("knn"), "knn", {}),
        "knn_rw": (lambda: embedding_parts("knn", reweight=True), "knn", {"review_band": 0.05}),
        "knn_f16": (lambda: embedding_parts("knn", bank_dtype=np.float16), "knn", {}),
        "mhbc": (lambda: embedding_parts("mhbc"), "mhbc", {}),
        "mask": (lambda: mask_parts(), "grdnet", {}),
    }
    for name, (mk, mt, kw) in specs.items():
        parts = mk()
        export_bundle(parts, os.path.join(root, name), model_type=mt, **kw)
    print("made")
    sys.exit()
out = {}
for name in sorted(os.listdir(root)):
    b = os.path.join(root, name)
    if not os.path.isdir(b):
        continue
    m = json.load(open(os.path.join(b, "manifest.json")))
    c = m["input"]["channels"]
    if "frame" in m and m.get("regions"):
        fh, fw = m["frame"]["height"], m["frame"]["width"]
        imgs = [rng.integers(0, 256, (fh, fw) if c == 1 else (fh, fw, 3), dtype=np.uint8) for _ in range(4)]
    else:
        h, w = m["input"]["height"], m["input"]["width"]
        imgs = [rng.integers(0, 256, (h, w) if c == 1 else (h, w, 3), dtype=np.uint8) for _ in range(5)]
        imgs.append(rng.integers(0, 256, (h + 5, w + 3) if c == 1 else (h + 5, w + 3, 3), dtype=np.uint8))
        imgs.append(imgs[0].astype(np.float32))
    for threads in (1, 2):
        rt = edge_sdk.Runtime(b, threads=threads, max_batch=3)
        r = rt.predict(imgs, on_error="review")
        key = f"{name}_t{threads}"
        out[key + "_scores"] = np.asarray(r.scores, np.float32).view(np.uint32)
        out[key + "_norm"] = np.asarray(r.normalized, np.float32).view(np.uint32)
        out[key + "_verdicts"] = np.asarray([str(v) for v in r.verdicts])
        for i, hm in enumerate(r.heatmaps):
            if hm is not None:
                out[f"{key}_heat{i}"] = np.asarray(hm, np.float32).view(np.uint32)
        if r.regions is not None:
            out[key + "_rscores"] = np.asarray(r.regions.scores, np.float32).view(np.uint32)
            out[key + "_rverdicts"] = np.asarray(r.regions.verdicts).astype(str)
np.savez(sys.argv[4], **out)
print("ran", len(out), "arrays")
