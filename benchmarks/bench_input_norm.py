"""Does one input normalization win on every data set? PaDiM and MhBC with `fixed` (the default),
`per_image` and `per_image_highpass` input on the SDK's synthetic tile and vial sets (Magnetic
Tile's figures: bench_mtd.py), image and pixel AUROC. A default moves only when one setting wins on
all of them.

    python benchmarks/bench_input_norm.py [--train 60] [--test 60] [--size 128] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile

from _common import REPO, pin_threads

NORMS = ("fixed", "per_image", "per_image_highpass")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=60)
    ap.add_argument("--test", type=int, default=60)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "input_norm.json"))
    args = ap.parse_args()
    pin_threads(args.threads)
    from edge_sdk.commands.eval import evaluate
    from edge_sdk.data import load_dataset
    from edge_sdk.data.synthetic import make_dataset
    from edge_sdk.models import model_class

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("tile", "vial"):
            root = make_dataset(f"{tmp}/{kind}", kind=kind, n_train=args.train, n_test=args.test, size=args.size,
                                seed=args.seed)
            train, test = load_dataset(root, "mvtec", "train"), load_dataset(root, "mvtec", "test")
            for method in ("padim", "mhbc"):
                for norm in NORMS:
                    model = model_class(method)(input_size=args.size, seed=0, input_norm=norm).fit(train, progress=False)
                    met, _ = evaluate(model, test, progress=False)
                    rows.append({"data": kind, "method": method, "input_norm": norm,
                                 "image_auroc": round(met["image_auroc"], 4), "pixel_auroc": round(met["pixel_auroc"], 4)})
                    print(f"{kind:5s} {method:6s} {norm:19s} image AUROC {rows[-1]['image_auroc']:.4f}  "
                          f"pixel AUROC {rows[-1]['pixel_auroc']:.4f}", flush=True)
    from pathlib import Path

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
