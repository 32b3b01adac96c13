"""The SDK runtime against the two ways a user would run the same model without it, side by side
in one run, same inputs, same thread count:

  sdk        edge_sdk.Runtime(bundle): the C++ runtime (preprocess kernel -> ONNX Runtime ->
             post-processing kernels -> heatmaps -> decision), called from Python;
  ort_numpy  (a) the bundle's own ONNX network in an onnxruntime InferenceSession, with NumPy /
             SciPy / scikit-image pre- and post-processing written as a user would:
             normalization in NumPy, k-NN through matrix products + argmin, Mahalanobis through
             the inverse covariance (batched matmul), scipy.ndimage.zoom + gaussian_filter for
             the maps, skimage structural_similarity for SSIM;
  torch      (b) the PyTorch model in eager mode with its own post-processing (model.predict).

Every contender produces the same outputs: raw scores, raw heatmaps at the input size, verdicts.
Models: PatchCore, PaDiM (EfficientNet-Lite0 features at 256 x 256) and ResGANAD (reconstruction,
SSIM), trained small on the synthetic set inside the script, or loaded from --model-dir.

Targets on the 2-core CPU at batch 8: sdk >= 1.5x faster than ort_numpy, >= 3x faster than torch,
and the runtime's time outside the network <= 10 % of its total (Results.times: (total - network) /
total). Timings: contenders interleaved round by round (so load from other processes hits all of
them alike), median of --repeats rounds after a warm-up round, each call after a pause of
--settle-ms (otherwise a contender runs while the previous one's spinning worker threads still hold
a core: on 2 cores that doubled the runtime's network time after onnxruntime/torch calls). Writes
a JSON record.

    python benchmarks/bench_runtime_compare.py [--models patchcore,padim,resganad] [--batch 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="patchcore,padim,resganad")
    p.add_argument("--model-dir", action="append", default=[], metavar="NAME=DIR",
                   help="use a trained model dir (edge_sdk.models save format) instead of training one")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=15, help="timed rounds (median reported)")
    p.add_argument("--settle-ms", type=float, default=20.0,
                   help="pause before each timed call, so the worker threads of the contender before "
                        "(onnxruntime's and OpenMP's spin for a while after returning) are asleep")
    p.add_argument("--train-images", type=int, default=40, help="synthetic training images per model")
    p.add_argument("--size", type=int, default=256, help="input size of the embedding models")
    p.add_argument("--resganad-preset", default="small", choices=["small", "full"])
    p.add_argument("--resganad-epochs", type=int, default=2)
    p.add_argument("--work", default=None, help="folder for model dirs and bundles (default: a temp folder)")
    p.add_argument("--out", default=None, help="JSON record (default benchmarks/results/bench_runtime_compare.json)")
    return p.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None:
    # Before NumPy loads its BLAS: the same thread count for every contender.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)
    os.environ["EDGE_SDK_NUM_THREADS"] = str(ARGS.threads)

import statistics  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from _common import REPO, write_json  # noqa: E402

TARGETS = {"vs_ort_numpy": 1.5, "vs_torch": 3.0, "outside_network_max": 0.10}


# ---- (a) onnxruntime + NumPy / SciPy, as a user writes it --------------------------------------

class OrtNumpy:
    """The bundle's fp32 ONNX network in onnxruntime, everything else in NumPy/SciPy/skimage."""

    def __init__(self, bundle: Path, threads: int, spinning: bool = True):
        import json

        import onnxruntime as ort
        from safetensors.numpy import load_file

        self.manifest = m = json.loads((bundle / "manifest.json").read_text())
        self.post = m["postprocess"]
        net = next(n for n in m["networks"] if n["precision"] == "fp32" and n["name"] == self.post["network"])
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if not spinning:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sess = ort.InferenceSession(str(bundle / net["file"]), so, providers=["CPUExecutionProvider"])
        self.input_name = self.sess.get_inputs()[0].name
        inp = m["input"]
        self.mean = np.asarray(inp["mean"], np.float32).reshape(1, -1, 1, 1)
        self.std = np.asarray(inp["std"], np.float32).reshape(1, -1, 1, 1)
        self.size = (inp["height"], inp["width"])
        self.channels = inp["channels"]
        self.cal = m["calibration"]
        arrays = load_file(str(bundle / m["arrays"]["file"]))
        kind = self.post["kind"]
        # One-time setup a user would do at load.
        if kind == "knn":
            self.bank = arrays[self.post["arrays"]["bank"]].astype(np.float32)
            self.bank_sq = (self.bank.astype(np.float64) ** 2).sum(1).astype(np.float32)
        elif kind == "mahalanobis":
            self.mu = arrays[self.post["arrays"]["mean"]].astype(np.float32)
            chol = arrays[self.post["arrays"]["chol"]].astype(np.float64)
            cov = chol @ chol.transpose(0, 2, 1)
            self.inv_cov = np.linalg.inv(cov).astype(np.float32)
        self.times: dict[str, float] = {}

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        x = images.astype(np.float32) / 255.0
        if x.ndim == 3:
            x = x[..., None]
        x = x.transpose(0, 3, 1, 2)
        if x.shape[2:] != tuple(self.size):
            from scipy.ndimage import zoom

            x = zoom(x, (1, 1, self.size[0] / x.shape[2], self.size[1] / x.shape[3]), order=1)
        if self.channels == 3 and x.shape[1] == 1:
            x = np.repeat(x, 3, axis=1)
        return np.ascontiguousarray((x - self.mean) / self.std, dtype=np.float32)

    def _maps(self, grid: np.ndarray, out_hw) -> np.ndarray:
        from scipy.ndimage import gaussian_filter, zoom

        sigma = float(self.post.get("blur_sigma", 0.0))
        maps = []
        for g in grid:
            m = g if g.shape == tuple(out_hw) else zoom(g, (out_hw[0] / g.shape[0], out_hw[1] / g.shape[1]), order=1)
            if sigma > 0:
                m = gaussian_filter(m, sigma=sigma, mode="reflect", truncate=4.0)
            maps.append(m)
        return np.stack(maps).astype(np.float32)

    def postprocess(self, x: np.ndarray, out: np.ndarray, out_hw) -> tuple[np.ndarray, np.ndarray]:
        kind = self.post["kind"]
        n = out.shape[0]
        if kind in ("knn", "mahalanobis"):
            gh, gw = self.post["grid"]
            feats = out  # (N, L, C)
            if kind == "knn":
                f = feats.reshape(-1, feats.shape[-1])
                d2 = (f * f).sum(1)[:, None] - 2.0 * (f @ self.bank.T) + self.bank_sq[None, :]
                loc = np.sqrt(np.maximum(d2.min(axis=1), 0.0)).reshape(n, gh * gw)
            else:
                delta = (feats - self.mu[None]).transpose(1, 0, 2)          # (L, N, C)
                loc = np.sqrt(np.maximum((np.matmul(delta, self.inv_cov) * delta).sum(-1), 0.0)).T  # (N, L)
            grid = loc.reshape(n, gh, gw).astype(np.float32)
            maps = self._maps(grid, out_hw)
            scores = (maps.reshape(n, -1).max(1) if self.post["image_score"] == "max_blurred"
                      else grid.reshape(n, -1).max(1))
            return scores.astype(np.float32), maps
        if kind == "ssim":
            from skimage.metrics import structural_similarity

            s = self.post["ssim"]
            scores = np.empty(n, np.float32)
            for i in range(n):
                vals = [structural_similarity(x[i, c], out[i, c], data_range=s["data_range"], gaussian_weights=True,
                                              sigma=s["sigma"], use_sample_covariance=False, K1=s["k1"], K2=s["k2"])
                        for c in range(x.shape[1])]
                scores[i] = 1.0 - float(np.mean(vals))
            diff = np.abs(x - out).mean(axis=1)
            return scores, self._maps(diff, out_hw)
        raise ValueError(f"no NumPy post-processing written for kind {kind!r}")

    def decide(self, scores: np.ndarray):
        c = self.cal
        normalized = np.clip((scores - c["threshold"]) / (c["max"] - c["min"]) + 0.5, 0.0, 1.0)
        verdicts = np.where(scores >= c["threshold"], "reject", "accept")
        return normalized, verdicts

    def predict(self, images: np.ndarray):
        t0 = time.perf_counter()
        x = self.preprocess(images)
        t1 = time.perf_counter()
        out = self.sess.run(None, {self.input_name: x})[0]
        t2 = time.perf_counter()
        scores, maps = self.postprocess(x, out, images.shape[1:3])
        t3 = time.perf_counter()
        normalized, verdicts = self.decide(scores)
        t4 = time.perf_counter()
        self.times = {"preprocess": t1 - t0, "network": t2 - t1, "postprocess": t3 - t2, "decision": t4 - t3}
        return scores, maps, verdicts


# ---- models -------------------------------------------------------------------------------------

def train_model(name: str, args, work: Path):
    """A small trained model (or the one from --model-dir) and test images (uint8, batch of args.batch)."""
    import torch

    from edge_sdk.data.synthetic import make_samples

    dirs = dict(kv.split("=", 1) for kv in args.model_dir)
    if name == "resganad":
        from edge_sdk.models.recon_config import PRESETS
        from edge_sdk.models.resganad import ResGANAD

        size = PRESETS[args.resganad_preset]["size"]
        train, test = make_samples("vial", n_train=args.train_images, n_test=max(args.batch, 8), size=size, seed=0,
                                   gray=True)
        if name in dirs:
            model = ResGANAD.load(dirs[name])
        else:
            t0 = time.perf_counter()
            model = ResGANAD(args.resganad_preset, seed=0).fit(train, epochs=args.resganad_epochs, val_fraction=0.25,
                                                               progress=True)
            print(f"  trained resganad ({args.resganad_preset}, {args.resganad_epochs} epochs) in "
                  f"{time.perf_counter() - t0:.0f} s")
        images = np.stack([s.image for s in test[: args.batch]])
        if images.ndim == 3:
            images = images[..., None]
        return model, images
    from edge_sdk.models import PaDiM, PatchCore, load_model

    train, test = make_samples("tile", n_train=args.train_images, n_test=max(args.batch, 8), size=args.size, seed=0)
    if name in dirs:
        model = load_model(dirs[name])
    else:
        t0 = time.perf_counter()
        model = (PaDiM(d=100, input_size=args.size) if name == "padim"
                 else PatchCore(coreset_ratio=0.1, input_size=args.size)).fit(train, progress=True)
        print(f"  trained {name} on {len(train)} images in {time.perf_counter() - t0:.0f} s"
              + (f", bank {model.bank.shape}" if name == "patchcore" else ""))
    torch.set_num_threads(args.threads)
    return model, np.stack([s.image for s in test[: args.batch]])


def export(model, name: str, images: np.ndarray, work: Path) -> Path:
    from edge_sdk.converters.onnx_export import export_bundle

    out = work / f"{name}_bundle"
    export_bundle(model.export_parts(), out, model_type=name, real_images=images[:2], overwrite=True)
    return out


# ---- timing -------------------------------------------------------------------------------------

def _median_ms(values) -> float:
    return 1e3 * statistics.median(values)


def compare_one(name: str, args, work: Path) -> dict:
    import torch

    import edge_sdk

    print(f"\n== {name}")
    torch.set_num_threads(1)  # training and export: one thread copes best with a busy machine
    model, images = train_model(name, args, work)
    bundle = export(model, name, images, work)
    torch.set_num_threads(args.threads)
    rt = edge_sdk.Runtime(bundle, threads=args.threads, max_batch=args.batch)
    user = OrtNumpy(bundle, args.threads)
    user_nospin = OrtNumpy(bundle, args.threads, spinning=False)

    def torch_predict(threads: int):
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            pred = model.predict(images)
        finally:
            torch.set_num_threads(before)
        cal = model.calibration
        return pred.scores, pred.maps, np.where(pred.scores >= cal["threshold"], "reject", "accept")

    # (a) and (b) as specified (same thread count, the libraries' defaults otherwise), plus two
    # variants that show where the differences come from on a busy machine: onnxruntime with
    # thread spinning off (as the SDK configures it) and torch on one thread.
    contenders = {"sdk": lambda: rt.predict(images), "ort_numpy": lambda: user.predict(images),
                  "ort_numpy_nospin": lambda: user_nospin.predict(images),
                  "torch": lambda: torch_predict(args.threads), "torch_1thread": lambda: torch_predict(1)}

    # Same answers first: scores and maps of each contender against the runtime's.
    res = rt.predict(images)
    ort_scores, ort_maps, _ = user.predict(images)
    t_scores, t_maps, _ = torch_predict(args.threads)
    parity = {
        "torch_scores_max_rel": float(np.max(np.abs(t_scores - res.scores) / np.maximum(np.abs(t_scores), 1e-12))),
        "torch_maps_max_abs": float(np.max(np.abs(np.asarray(t_maps) - res.heatmaps))),
        "ort_numpy_scores_max_rel": float(np.max(np.abs(ort_scores - res.scores) / np.maximum(np.abs(ort_scores), 1e-12))),
        "ort_numpy_maps_max_abs": float(np.max(np.abs(ort_maps - res.heatmaps))),
        "map_scale": float(np.max(np.abs(res.heatmaps))),
    }
    print("  parity: " + ", ".join(f"{k} {v:.2e}" for k, v in parity.items()))

    times: dict[str, list[float]] = {k: [] for k in contenders}
    sdk_stages: dict[str, list[float]] = {}
    ort_stages: dict[str, list[float]] = {}
    for fn in contenders.values():  # warm-up round
        fn()
    from tqdm import tqdm

    for _ in tqdm(range(args.repeats), desc=f"{name} rounds", unit="round"):
        for k, fn in contenders.items():
            time.sleep(args.settle_ms / 1e3)
            t0 = time.perf_counter()
            out = fn()
            times[k].append(time.perf_counter() - t0)
            if k == "sdk":
                for s, v in out.times.items():
                    sdk_stages.setdefault(s, []).append(v)
            elif k == "ort_numpy":
                for s, v in user.times.items():
                    ort_stages.setdefault(s, []).append(v)
    med = {k: _median_ms(v) for k, v in times.items()}
    best = {k: 1e3 * min(v) for k, v in times.items()}
    sdk_med = {s: statistics.median(v) for s, v in sdk_stages.items()}
    sdk_med["scoring"] = statistics.median([p - m for p, m in zip(sdk_stages["postprocess"], sdk_stages["maps"])])
    tot, net = np.array(sdk_stages["total"]), np.array(sdk_stages["network"])
    scoring = np.array(sdk_stages["postprocess"]) - np.array(sdk_stages["maps"])
    outside = float(np.median((tot - net) / tot))
    outside_wo_scoring = float(np.median((tot - net - scoring) / tot))
    # The least disturbed call (smallest total): on a shared machine the closest to an idle one.
    quiet = int(np.argmin(tot))
    quiet_stages = {s: float(v[quiet]) for s, v in sdk_stages.items()}
    outside_quiet = float((tot[quiet] - net[quiet]) / tot[quiet])
    ratios = {f"vs_{k}": med[k] / med["sdk"] for k in contenders if k != "sdk"}
    ratios_best = {f"vs_{k}": best[k] / best["sdk"] for k in contenders if k != "sdk"}
    met = {"vs_ort_numpy": ratios["vs_ort_numpy"] >= TARGETS["vs_ort_numpy"],
           "vs_torch": ratios["vs_torch"] >= TARGETS["vs_torch"],
           "outside_network": outside <= TARGETS["outside_network_max"]}
    print(f"  median ms per batch of {args.batch}: " + ", ".join(f"{k} {v:.1f}" for k, v in med.items()))
    print("  sdk stages, median ms: " + ", ".join(f"{k} {v:.2f}" for k, v in sdk_med.items() if v or k == "decision"))
    print("  ort_numpy stages, median ms: " + ", ".join(f"{k} {_median_ms(v):.2f}" for k, v in ort_stages.items()))
    print(f"  sdk vs (a) ort_numpy {ratios['vs_ort_numpy']:.2f}x (target {TARGETS['vs_ort_numpy']}x: "
          f"{'met' if met['vs_ort_numpy'] else 'MISSED'}; vs spinning off {ratios['vs_ort_numpy_nospin']:.2f}x), "
          f"vs (b) torch {ratios['vs_torch']:.2f}x (target {TARGETS['vs_torch']}x: {'met' if met['vs_torch'] else 'MISSED'}; "
          f"vs torch on 1 thread {ratios['vs_torch_1thread']:.2f}x)")
    print(f"  outside the network: {100 * outside:.1f} % of the runtime's total (target <= "
          f"{100 * TARGETS['outside_network_max']:.0f} %: {'met' if met['outside_network'] else 'MISSED'}); without the "
          f"model's scoring kernel ({sdk_med['scoring']:.1f} ms): {100 * outside_wo_scoring:.1f} %; in the least disturbed "
          f"call ({tot[quiet]:.1f} ms, network {net[quiet]:.1f} ms): {100 * outside_quiet:.1f} %")
    m = rt.manifest
    return {
        "model": name if name != "resganad" else f"resganad-{args.resganad_preset}", "bundle": str(bundle),
        "input": m["input"],
        "postprocess": {k: v for k, v in m["postprocess"].items() if k != "arrays"},
        "arrays": {k: v["shape"] for k, v in m["arrays"]["tensors"].items()},
        "image_shape": list(images.shape), "batch": args.batch, "threads": args.threads, "repeats": args.repeats,
        "median_ms": med, "min_ms": best, "all_ms": {k: [1e3 * t for t in v] for k, v in times.items()},
        "sdk_stage_median_ms": sdk_med,
        "ort_numpy_stage_median_ms": {s: _median_ms(v) for s, v in ort_stages.items()},
        "sdk_outside_network_fraction": outside,
        "sdk_outside_network_fraction_without_scoring_kernel": outside_wo_scoring,
        "sdk_stages_of_least_disturbed_call_ms": quiet_stages,
        "sdk_outside_network_fraction_least_disturbed_call": outside_quiet,
        "ratios": ratios, "ratios_of_minimum_times": ratios_best, "targets": TARGETS, "targets_met": met,
        "parity": parity,
    }


def main() -> int:
    args = ARGS or parse_args()
    import torch

    import edge_sdk

    torch.set_num_threads(args.threads)
    edge_sdk.set_num_threads(args.threads)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    bad = [n for n in names if n not in ("patchcore", "padim", "resganad")]
    if bad:
        print(f"--models: unknown {bad} (patchcore, padim, resganad)", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_compare_") as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        results = [compare_one(n, args, work) for n in names]
    print("\n== summary (batch %d, %d threads; machine shared, 1-min load %.1f before the run)" %
          (args.batch, args.threads, load_before))
    print(f"{'model':<10} {'sdk ms':>8} {'(a) ms':>8} {'(b) ms':>8} {'vs (a)':>7} {'vs (b)':>7} {'outside net':>12} "
          f"{'w/o scoring':>12} {'quietest call':>13}")
    for r in results:
        md = r["median_ms"]
        print(f"{r['model']:<10} {md['sdk']:>8.1f} {md['ort_numpy']:>8.1f} {md['torch']:>8.1f} "
              f"{r['ratios']['vs_ort_numpy']:>6.2f}x {r['ratios']['vs_torch']:>6.2f}x "
              f"{100 * r['sdk_outside_network_fraction']:>11.1f}% {100 * r['sdk_outside_network_fraction_without_scoring_kernel']:>11.1f}%"
              f" {100 * r['sdk_outside_network_fraction_least_disturbed_call']:>12.1f}%")
    out = Path(args.out) if args.out else REPO / "benchmarks" / "results" / "bench_runtime_compare.json"
    write_json(out, {"benchmark": "bench_runtime_compare", "batch": args.batch, "threads": args.threads,
                     "load_average_before": load_before, "results": results,
                     "all_targets_met": all(all(r["targets_met"].values()) for r in results)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
