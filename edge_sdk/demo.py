"""The whole flow on a synthetic vial data set, as a user runs it from the command line:

    data -> edge-sdk train -> model dir -> edge-sdk export -> bundle -> edge-sdk verify / predict

Each step is the `edge-sdk` subcommand a user would type (printed before it runs). Outputs land in
--workdir (default ./edge_sdk_demo): the data set, the model directory, the bundle, metrics JSON,
verdicts CSV and heatmap overlay PNGs.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

import edge_sdk
from edge_sdk import cli, kernels


def step(title: str, argv: list[str]) -> None:
    print(f"\n== {title}\n$ edge-sdk {shlex.join(argv)}", flush=True)
    t = time.perf_counter()
    rc = cli.main(argv)
    if rc:
        sys.exit(f"demo: step '{title}' failed with status {rc}")
    print(f"({time.perf_counter() - t:.1f} s)", flush=True)


def kernels_demo() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((60, 256, 256), dtype=np.float32)
    b = np.clip(a + 0.05 * rng.standard_normal(a.shape), 0, 1).astype(np.float32)
    t = time.perf_counter()
    s = kernels.ssim(a, b)
    print(f"kernels: SSIM of 60 x 256 x 256 patches, mean {s.mean():.4f}, {1e3 * (time.perf_counter() - t):.1f} ms "
          f"on {edge_sdk.get_num_threads()} thread(s)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m edge_sdk.demo", description=__doc__.splitlines()[0])
    p.add_argument("--workdir", default="edge_sdk_demo", help="where everything is written (default ./edge_sdk_demo)")
    p.add_argument("--model", default="patchcore", choices=("padim", "patchcore", "mhbc"))
    p.add_argument("--size", type=cli.bounded_int("--size", 32, 4096), default=256, help="synthetic image size")
    args = p.parse_args(argv)

    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"edge_sdk {edge_sdk.__version__}; devices: {edge_sdk.devices()}")
    kernels_demo()

    from edge_sdk.data.synthetic import make_dataset

    data = Path(make_dataset(work / "data", kind="vial", n_train=40, n_test=24, size=args.size, seed=0, overwrite=True))
    print(f"\n== synthetic vial data set (MVTec layout): {data}")
    model, bundle = work / "model", work / "bundle"
    common = ["--data", str(data), "--layout", "mvtec"]
    step("train on good images", ["train", "--model", args.model, *common, "--out", str(model), "--no-progress"])
    step("evaluate the PyTorch model", ["eval", str(model), *common, "--json", str(work / "metrics.json"),
                                        "--heatmaps", str(work / "eval_heatmaps"), "--no-progress"])
    step("export to a bundle (ONNX + arrays + manifest)", ["export", str(model), "--out", str(bundle), "--overwrite", *common])
    step("verify: C++ runtime vs PyTorch on the test split",
         ["verify", str(bundle), "--against", str(model), *common, "--json", str(work / "verify.json")])
    step("predict with the C++ runtime", ["predict", str(bundle), str(data / "vial" / "test"), "--out", str(work / "verdicts.csv"),
                                          "--heatmaps", str(work / "heatmaps")])

    metrics = json.loads((work / "metrics.json").read_text())
    verify = json.loads((work / "verify.json").read_text())
    print("\n== summary")
    print(f"image AUROC {metrics['image_auroc']:.3f}, pixel AUROC {metrics['pixel_auroc']:.3f}, PRO {metrics['pro']:.3f}, "
          f"F1 {metrics['f1']:.3f}")
    print(f"runtime vs PyTorch: max score rel diff {verify['max_score_rel_diff']:.2e}, "
          f"verdict agreement {verify['verdict_agreement']:.3f}, max heatmap diff {verify['max_heatmap_abs_diff']:.2e}")
    print(f"verdicts: {work / 'verdicts.csv'}; heatmap overlays: {work / 'heatmaps'}")


if __name__ == "__main__":
    main()
