"""Paper estimate of the inference latency on an NVIDIA RTX A4500 (23.7 FP32 TFLOP/s, 640 GB/s,
6 MB L2, PCIe 4.0 x16) for each model, per batch, from its FLOPs and the bytes it moves, until a
GPU is there to measure (`edge-sdk bench --device cuda:0`, benchmarks/gpu_check).

Counted per batch of N images:
- network FLOPs: torch.utils.flop_counter on the network that is exported into the bundle (the
  ExportParts module), at batch 1 times N (convolutions and matrix products; element-wise work is
  left out, it is fused into them by TensorRT / cuDNN);
- network bytes: weights once per batch (fp32) + activations: input read and output written by
  every convolution / linear / pooling / resampling layer (BatchNorm and activations fuse into the
  preceding convolution, their tensors never reach memory);
- post-processing FLOPs and bytes from the kernels' arithmetic (k-NN: 2 Q M C; Mahalanobis
  forward substitution: L C^2 per image; SSIM: 5 separable Gaussian-filtered maps; maps: bilinear
  resize + separable blur) and the arrays they stream (memory bank, Cholesky factors);
- preprocessing (uint8 HWC -> normalized float NCHW), host-to-device copy of the uint8 images
  and device-to-host copy of scores and heatmaps over PCIe (25 GB/s practical).

Time of each part = roofline: max(FLOPs / (peak x e_flop), bytes / (bandwidth x e_mem)) plus
kernel launches x launch cost. Two figures: the ideal bound (e = 1, no launch cost) and an
estimate with the efficiencies stated in the output (assumptions, not measurements).

    python benchmarks/gpu_estimate.py [--batches 1,8,60] [--bank 2048,20480] [--out JSON]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from _common import REPO, write_json  # noqa: F401  (puts the repo on sys.path)

A4500 = {"name": "NVIDIA RTX A4500", "fp32_tflops": 23.7, "dram_gbs": 640.0, "l2_mb": 6.0, "pcie_gbs": 25.0}
# Assumptions of the "estimate" column (the "bound" column uses 1.0 and no launch cost).
EFFICIENCY = {"flop_conv": 0.5, "flop_matmul": 0.6, "flop_elementwise": 0.3, "mem": 0.7, "launch_us": 4.0,
              "launch_us_cuda_graph": 1.5}
CONV_LIKE = ("Conv1d", "Conv2d", "ConvTranspose2d", "Linear", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
             "Upsample", "UpsamplingBilinear2d", "UpsamplingNearest2d")


def network_cost(net, x_shape) -> dict:
    """FLOPs, weight bytes, activation bytes and layer count of one image through ``net``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    traffic = {"act_bytes": 0, "layers": 0}

    def hook(mod, inputs, output):
        if type(mod).__name__ in CONV_LIKE:
            outs = output if isinstance(output, (tuple, list)) else (output,)
            ins = [t for t in inputs if isinstance(t, torch.Tensor)]
            traffic["act_bytes"] += 4 * (sum(t.numel() for t in ins) + sum(t.numel() for t in outs))
            traffic["layers"] += 1

    handles = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
    try:
        xs = [torch.zeros(s) for s in x_shape] if isinstance(x_shape, list) else [torch.zeros(x_shape)]
        with torch.inference_mode(), FlopCounterMode(display=False) as fc:
            net(*xs)
    finally:
        for h in handles:
            h.remove()
    weights = sum(p.numel() for p in net.parameters()) * 4 + sum(b.numel() for b in net.buffers()) * 4
    return {"flops": int(fc.get_total_flops()), "weight_bytes": int(weights), "act_bytes": int(traffic["act_bytes"]),
            "layers": traffic["layers"]}


def maps_cost(n, gh, gw, h, w, sigma) -> dict:
    """Bilinear resize gh x gw -> h x w and separable Gaussian blur (radius int(4 sigma + 0.5))."""
    px = n * h * w
    taps = 2 * int(4 * sigma + 0.5) + 1 if sigma > 0 else 0
    flops = px * 8 + px * 2 * taps * 2
    mem = n * gh * gw * 4 + px * 4 * (3 if sigma > 0 else 1)
    return {"flops": flops, "bytes": mem, "kernels": 2 if sigma > 0 else 1, "kind": "elementwise"}


def models(args):
    """(name, network(s) with their input shapes, post-processing description, raw image HWC)."""
    import torch

    from edge_sdk.models import PaDiM, PatchCore
    from edge_sdk.models.grdnet import GRDNet
    from edge_sdk.models.resganad import ResGANAD

    torch.manual_seed(0)
    out = []
    pc = PatchCore(input_size=256)
    net = pc._ensure_network()  # the module export_parts puts into the bundle ("features")
    for m in args.banks:
        out.append({"name": f"patchcore (bank {m})", "nets": [(net, (1, 3, 256, 256))], "image": (256, 256, 3),
                    "post": {"kind": "knn", "L": pc.grid[0] * pc.grid[1], "C": pc.feature_dim, "M": m, "grid": pc.grid,
                             "sigma": pc.blur_sigma}})
    pd = PaDiM(d=100, input_size=256)
    out.append({"name": "padim (d 100)", "nets": [(pd._ensure_network(), (1, 3, 256, 256))], "image": (256, 256, 3),
                "post": {"kind": "mahalanobis", "L": pd.grid[0] * pd.grid[1], "C": pd.feature_dim, "grid": pd.grid,
                         "sigma": pd.blur_sigma}})
    for preset in ("small", "full"):
        r = ResGANAD(preset)
        s = r.config.size
        out.append({"name": f"resganad ({preset}, {s}x{s})", "nets": [(r.reconstructor(), (1, 1, s, s))],
                    "image": (256, 256, 1), "post": {"kind": "ssim", "S": s, "window": r.config.ssim_window,
                                                     "sigma": float(r.config.blur_sigma)}})
    g = GRDNet("full")
    s = g.config.size
    out.append({"name": f"grdnet (full, {s}x{s})", "nets": [(g.reconstructor(), (1, 1, s, s)),
                                                           (g.mask_head(), [(1, 1, s, s), (1, 1, s, s)])],
                "image": (256, 256, 1), "post": {"kind": "mask", "S": s, "sigma": float(g.config.mask_blur_sigma)}})
    return out


def post_cost(post: dict, n: int, image_hw) -> list[dict]:
    """Kernel costs of the post-processing of n images (list of parts)."""
    h, w = image_hw
    parts = []
    kind = post["kind"]
    l2 = A4500["l2_mb"] * 2**20
    if kind == "knn":
        q, m, c = n * post["L"], post["M"], post["C"]
        bank = m * c * 4
        # The CUDA kernel streams the bank through shared memory once per block of 128 queries;
        # from DRAM once when it fits in L2, otherwise once per block.
        bank_traffic = bank if bank <= l2 else bank * math.ceil(q / 128)
        parts.append({"part": "k-NN", "flops": 2 * q * m * c + q * m, "bytes": bank_traffic + q * c * 4 + q * 12,
                      "kernels": 2, "kind": "matmul"})
    elif kind == "mahalanobis":
        l, c = post["L"], post["C"]
        chol = l * c * (c + 1) // 2 * 4  # lower triangle only
        parts.append({"part": "Mahalanobis", "flops": n * l * (c * c + 2 * c), "bytes": chol + l * c * 4 + n * l * c * 4,
                      "kernels": 1, "kind": "matmul"})
    elif kind == "ssim":
        s, win = post["S"], post["window"]
        px = n * s * s
        parts.append({"part": "SSIM + abs diff", "flops": px * (5 * 2 * win * 2 + 30), "bytes": px * 4 * 4,
                      "kernels": 3, "kind": "elementwise"})
    elif kind == "mask":
        s = post["S"]
        mc = maps_cost(n, s, s, s, s, post["sigma"])
        mc["part"] = "mask score blur"
        parts.append(mc)
    if kind in ("knn", "mahalanobis"):
        gh, gw = post["grid"]
        mc = maps_cost(n, gh, gw, h, w, post["sigma"])
    elif kind == "ssim":
        mc = maps_cost(n, post["S"], post["S"], h, w, post["sigma"])
    else:
        mc = maps_cost(n, post["S"], post["S"], h, w, 0.0)
    mc["part"] = "anomaly maps"
    parts.append(mc)
    parts.append({"part": "normalize + decision", "flops": 10 * n, "bytes": 16 * n, "kernels": 1, "kind": "elementwise"})
    return parts


def roofline_ms(flops, nbytes, kind, kernels, ideal: bool, graph: bool) -> float:
    peak = A4500["fp32_tflops"] * 1e12
    bw = A4500["dram_gbs"] * 1e9
    if ideal:
        return 1e3 * max(flops / peak, nbytes / bw)
    e = EFFICIENCY[f"flop_{kind}"]
    launch = EFFICIENCY["launch_us_cuda_graph" if graph else "launch_us"] * 1e-6 * kernels
    return 1e3 * (max(flops / (peak * e), nbytes / (bw * EFFICIENCY["mem"])) + launch)


def estimate(model: dict, costs: list, n: int) -> dict:
    h, w, c = model["image"]
    # Network(s): batch-1 counts times n, weights read once per batch.
    net_flops = sum(k["flops"] for k in costs) * n
    net_bytes = sum(k["weight_bytes"] for k in costs) + sum(k["act_bytes"] for k in costs) * n
    net_layers = sum(k["layers"] for k in costs)
    in_c, in_h, in_w = model["nets"][0][1][1:] if not isinstance(model["nets"][0][1], list) else model["nets"][0][1][0][1:]
    parts = [
        {"part": "host->device (uint8 images)", "pcie_bytes": n * h * w * c},
        {"part": "preprocess", "flops": n * in_c * in_h * in_w * 12, "bytes": n * h * w * c + n * in_c * in_h * in_w * 4,
         "kernels": 1, "kind": "elementwise"},
        {"part": "network", "flops": net_flops, "bytes": net_bytes, "kernels": net_layers, "kind": "conv"},
        *post_cost(model["post"], n, (h, w)),
        {"part": "device->host (scores, verdicts, heatmaps)", "pcie_bytes": n * (h * w * 4 + 12)},
    ]
    out = {"batch": n, "parts": []}
    for ideal, graph, key in ((True, False, "bound_ms"), (False, False, "estimate_ms"), (False, True, "estimate_graph_ms")):
        total = 0.0
        for p in parts:
            if "pcie_bytes" in p:
                t = 1e3 * p["pcie_bytes"] / (A4500["pcie_gbs"] * 1e9) + (0.0 if ideal else 0.01)
            else:
                t = roofline_ms(p["flops"], p["bytes"], p["kind"], p["kernels"], ideal, graph)
            p[key] = t
            total += t
        out[key] = total
    out["parts"] = parts
    out["network_flops"] = net_flops
    out["total_flops"] = sum(p.get("flops", 0) for p in parts)
    out["total_bytes"] = sum(p.get("bytes", 0) for p in parts)
    out["outside_network_share_estimate"] = 1.0 - next(p["estimate_ms"] for p in parts if p["part"] == "network") / out["estimate_ms"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="1,8,60")
    ap.add_argument("--bank", default="2048,20480",
                    help="PatchCore memory-bank sizes (1 %% and 10 %% coresets of 200 training images x 1024 patches)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "gpu_estimate.json"))
    args = ap.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",")]
    args.banks = [int(b) for b in args.bank.split(",")]
    import torch

    torch.set_num_threads(1)
    print(f"Paper estimate for the {A4500['name']}: {A4500['fp32_tflops']} FP32 TFLOP/s, {A4500['dram_gbs']:.0f} GB/s, "
          f"{A4500['l2_mb']:.0f} MB L2, PCIe {A4500['pcie_gbs']:.0f} GB/s")
    print(f"estimate = roofline with efficiencies {EFFICIENCY} (assumptions); bound = peak roofline, no launch cost\n")
    results = []
    for model in models(args):
        costs = [network_cost(net, shape) for net, shape in model["nets"]]
        per = {"flops": sum(k["flops"] for k in costs), "weight_bytes": sum(k["weight_bytes"] for k in costs),
               "act_bytes": sum(k["act_bytes"] for k in costs), "layers": sum(k["layers"] for k in costs)}
        rows = [estimate(model, costs, n) for n in args.batches]
        print(f"{model['name']}: network {per['flops'] / 1e9:.2f} GFLOP / image, weights {per['weight_bytes'] / 2**20:.1f} MiB, "
              f"activations {per['act_bytes'] / 2**20:.1f} MiB / image, {per['layers']} layers; raw image "
              f"{'x'.join(map(str, model['image']))}")
        print(f"  {'batch':>5} {'GFLOP':>9} {'MB moved':>9} {'bound ms':>9} {'estimate ms':>12} {'(CUDA graph)':>12} "
              f"{'ms/image':>9} {'img/s':>8} {'outside net':>11}")
        for r in rows:
            print(f"  {r['batch']:>5} {r['total_flops'] / 1e9:>9.1f} {r['total_bytes'] / 1e6:>9.1f} {r['bound_ms']:>9.2f} "
                  f"{r['estimate_ms']:>12.2f} {r['estimate_graph_ms']:>12.2f} {r['estimate_ms'] / r['batch']:>9.3f} "
                  f"{1e3 * r['batch'] / r['estimate_ms']:>8.0f} {100 * r['outside_network_share_estimate']:>10.1f}%")
        big = max(rows, key=lambda r: r["batch"])
        top = sorted(big["parts"], key=lambda p: -p["estimate_ms"])[:3]
        print(f"  largest parts at batch {big['batch']}: " + ", ".join(f"{p['part']} {p['estimate_ms']:.2f} ms" for p in top))
        if model["image"][2] == 1:
            r60 = next((r for r in rows if r["batch"] == 60), None)
            if r60:
                print(f"  vial line (60 patches, 500 ms budget): estimate {r60['estimate_ms']:.0f} ms per cycle -> "
                      f"{'fits' if r60['estimate_ms'] <= 500 else 'does NOT fit'} (bound {r60['bound_ms']:.0f} ms)")
        results.append({"model": model["name"], "per_image_network": per, "batches": rows})
        print()
    write_json(Path(args.out), {"benchmark": "gpu_estimate", "gpu": A4500, "efficiency_assumptions": EFFICIENCY,
                                "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
