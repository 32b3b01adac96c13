"""k-NN worst case: per-image search time on a normal PatchCore memory bank vs adversarial banks,
and whether the bundle loader lets each bank in.

The k-NN kernel's float32 scan is certified by an error bound that grows with the bank's largest
centred norm; queries that fail to certify are re-scanned, up to the whole bank in double. A bank
with one huge value, or one whose rows mostly coincide, makes every query fail: each image then
costs a brute-force double search. The loader refuses such banks (cpp/src/runtime/array_checks.hpp);
this script measures what the refused banks would have cost and what the adversarial banks that
still load cost.

Data: bank rows and queries from the same low-rank model (16 latent factors + small noise, like
CNN patch features), M x D float32; one image = L queries (a 28 x 28 feature grid). Per bank: the
loader's verdict (the bank exported into a bundle through write_bundle, which runs the validator),
then the median seconds of one image's search (KnnIndex built once, as the runtime does) and the
scan its `auto` chose (bfloat16 where the CPU has AVX512-BF16 and the bank suits it).

    python benchmarks/bench_knn_worst_case.py [--rows 8192] [--dim 256] [--locations 784]
        [--threads 2] [--repeats 3] [--out benchmarks/results/bench_knn_worst_case.json]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import REPO, median_seconds, pin_threads, write_json

U = 2.0 ** -24
REL_LIMIT = 0.05  # kKnnMaxRelativeError of cpp/src/runtime/array_checks.hpp


def features(rng, n, d, basis):
    z = rng.standard_normal((n, basis.shape[0])).astype(np.float32)
    return np.ascontiguousarray(z @ basis + 0.05 * rng.standard_normal((n, d)).astype(np.float32))


def loader_verdict(bank, tmp):
    """'loads' or the loader's refusal, for a k-NN bundle holding `bank`."""
    import torch

    from edge_sdk.converters import export_bundle
    from edge_sdk.bundle import BundleError
    from tests.bundle_helpers import embedding_parts

    torch.set_num_threads(1)
    parts = embedding_parts("knn", size=(16, 16), features=bank.shape[1], n_train=1)
    parts.arrays["bank"] = bank
    out = Path(tmp) / f"b{time.monotonic_ns()}"
    try:
        export_bundle(parts, out, model_type="patchcore")
        return "loads"
    except BundleError as e:
        msg = str(e)
        return "refused: " + msg[msg.index("array"):][:160] if "array" in msg else "refused: " + msg[:160]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=8192)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--locations", type=int, default=784)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_knn_worst_case.json")
    args = ap.parse_args()
    pin_threads(args.threads)
    from edge_sdk.kernels import KnnIndex

    rng = np.random.default_rng(0)
    m, d = args.rows, args.dim
    basis = rng.standard_normal((16, d)).astype(np.float32) / 4
    normal = features(rng, m, d, basis)
    queries = features(rng, args.locations, d, basis)

    # The largest single outlier value the loader admits (the bound solved for B, S measured the
    # loader's way: median distance to the coordinate-wise median), taken at 90 % of it.
    med = np.median(normal.astype(np.float64), axis=0)
    s = float(np.median(np.linalg.norm(normal - med, axis=1)))
    # (2d + 4) u (B^2 + 2 S B) = REL_LIMIT S^2, with a typical query norm ~ S
    b_max = s * (-1 + math.sqrt(1 + REL_LIMIT / ((2 * d + 4) * U)))
    banks = {"normal": normal}
    b = normal.copy(); b[3, 5] = 4.2e12; banks["one value 4.2e12"] = b
    banks["all zeros"] = np.zeros_like(normal)
    b = normal.copy(); b[: m // 2 + 1] = normal[0]; banks["51% rows identical"] = b
    b = normal.copy(); b[3, 5] = 0.9 * b_max * 0.5; banks["one value at 45% of the load bound"] = b
    b = normal.copy(); b[3, 5] = 0.9 * b_max; banks["one value at 90% of the load bound"] = b
    b = normal.copy(); b[3, 5] = 3 * b_max; banks["one value at 3x the load bound"] = b
    b = normal.copy(); b[3, 5] = 30 * b_max; banks["one value at 30x the load bound"] = b
    b = normal.copy(); b[: m // 2 - 1] = normal[0]; banks["49% rows identical"] = b
    b = np.repeat(normal[: m // 8 + 1], 8, axis=0)[:m].copy(); banks["every row 8 times"] = b
    b = np.repeat(normal[: m // 10 + 1], 10, axis=0)[:m].copy(); banks["every row 10 times"] = b
    b = np.repeat(normal[: m // 100 + 1], 100, axis=0)[:m].copy(); banks["every row 100 times"] = b
    b = normal.copy(); b[:, 0] += 1e4; banks["all rows offset by 1e4"] = b

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = None
        for name, bank in banks.items():
            verdict = loader_verdict(bank, tmp)
            index = KnnIndex(bank)
            reps = args.repeats if name == "normal" or verdict == "loads" else 1
            t = median_seconds(lambda: index.search(queries, 1), repeats=reps)
            base = base or t
            results.append({"bank": name, "loader": verdict, "seconds_per_image": t, "ratio_to_normal": t / base,
                            "scan": index.isa})
            print(f"{name:38s} {t * 1e3:10.1f} ms/image  x{t / base:8.1f}  {index.isa:10s}  {verdict}")
    record = {"benchmark": "knn_worst_case", "rows": m, "dim": d, "locations": args.locations, "threads": args.threads,
              "load_bound_single_value": b_max, "results": results}
    worst_loading = max((r for r in results if r["loader"] == "loads"), key=lambda r: r["ratio_to_normal"])
    print(f"worst bank that still loads: {worst_loading['bank']} (x{worst_loading['ratio_to_normal']:.1f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, record)


if __name__ == "__main__":
    main()
