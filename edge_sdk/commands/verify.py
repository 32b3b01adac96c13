"""`edge-sdk verify BUNDLE --against MODEL_DIR --data PATH --layout ...`: runtime vs PyTorch parity."""

from __future__ import annotations

from edge_sdk.cli import bounded_int, threads_option
from edge_sdk.commands._runtime import add_backend_arguments
from edge_sdk.commands.train import add_data_arguments, open_dataset



def register(sub) -> None:
    p = sub.add_parser("verify", help="compare a bundle run by the C++ runtime with its PyTorch model on a data set",
                       description="Runs the bundle through the C++ runtime and the model of MODEL_DIR through "
                                   "PyTorch on the same images and reports the score differences, the verdict "
                                   "agreement and the heatmap differences (after the bundle's normalization). "
                                   "Exit status 1 when a figure is outside the runtime's tolerances.")
    p.add_argument("bundle", help="bundle directory or archive")
    p.add_argument("--against", required=True, metavar="MODEL_DIR", help="the trained model directory")
    add_data_arguments(p)
    p.add_argument("--split", default="test", choices=("train", "test"), help="data set split (default test)")
    p.add_argument("--limit", type=bounded_int("--limit", 1, 10**9), help="compare only the first N images")
    p.add_argument("--precision", default="fp32", help="network variant of the bundle (default fp32)")
    p.add_argument("--device", default="cpu", help="where the runtime scores: cpu (default) or cuda:N")
    add_backend_arguments(p)
    p.add_argument("--threads", type=threads_option("--threads"), default=None,
                   help="CPU threads of the runtime and of torch (default: the runtime's)")
    p.add_argument("--json", dest="json_out", metavar="OUT", help="write the figures to this JSON file")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from edge_sdk.converters.verify import compare
    from edge_sdk.atomic import write_json
    from edge_sdk.bundle import BundleError
    from edge_sdk.cli import UserError
    from edge_sdk.commands._runtime import open_runtime
    from edge_sdk.models import load_model

    rt = open_runtime(args.bundle, device=args.device, threads=args.threads, precision=args.precision,
                      backend=args.backend, openvino_device=args.openvino_device)
    try:
        model = load_model(args.against)
    except (BundleError, ValueError, FileNotFoundError) as exc:
        raise UserError(str(exc)) from exc
    gray = rt.manifest["input"]["channels"] == 1
    ds = open_dataset(args, args.split, gray=gray)
    n = len(ds) if args.limit is None else min(len(ds), args.limit)
    images = [np.ascontiguousarray(ds[i].image) for i in range(n)]
    fig = compare(rt, model, images, progress=True)
    fig.update({"bundle": str(args.bundle), "model_dir": str(args.against), "data": str(args.data),
                "layout": args.layout, "split": args.split})
    for k in ("backend", "images", "units", "max_score_rel_diff", "scores_outside_tolerance", "verdict_agreement",
              "max_heatmap_abs_diff", "max_heatmap_raw_abs_diff", "unjudged", "passed"):
        print(f"{k}: {fig[k]}")
    if args.json_out:
        write_json(args.json_out, fig)
    return 0 if fig["passed"] else 1
