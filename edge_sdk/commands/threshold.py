"""`edge-sdk threshold BUNDLE --out NEW --reason ... (--value T | --false-accept R | --false-reject R)
[--review-band B]`: a new, traceable bundle version with another decision threshold or review band
(edge_sdk/bundle/revise.py)."""

from __future__ import annotations

from edge_sdk.cli import bounded_float, threads_option
from edge_sdk.commands.train import add_data_arguments, open_dataset


def register(sub) -> None:
    p = sub.add_parser("threshold", help="write a new bundle version with another threshold or review band",
                       description="Sets the decision threshold (a value, or the one meeting a target false-accept "
                                   "or false-reject rate on labelled data scored by the runtime) and/or the review "
                                   "band, and writes the result as a NEW bundle at --out: the old one is kept, the "
                                   "new manifest records the previous manifest's sha256, old and new values, the "
                                   "method and --reason. A signature does not carry over (sign the new bundle) and "
                                   "TensorRT engines are not copied (rebuild them).")
    p.add_argument("bundle", help="bundle directory or archive")
    p.add_argument("--out", required=True, help="the new bundle directory")
    p.add_argument("--reason", required=True, help="why the decision changes (recorded in the lineage)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--value", type=bounded_float("--value", -3.4e38, 3.4e38),
                     help="raw-score threshold: score >= value is rejected")
    how.add_argument("--false-accept", type=bounded_float("--false-accept", 0.0, 1.0), metavar="RATE",
                     help="the threshold at which at most RATE of the defective images of "
                          "--data are accepted")
    how.add_argument("--false-reject", type=bounded_float("--false-reject", 0.0, 1.0), metavar="RATE",
                     help="the threshold at which at most RATE of the good images of --data are rejected")
    p.add_argument("--review-band", type=bounded_float("--review-band", 0.0, 0.4999), default=None,
                   help="normalized scores within this distance of 0.5 are judged 'review'")
    add_data_arguments(p, required=False)
    p.add_argument("--split", default="test", choices=("train", "test"),
                   help="split of --data scored for a rate target (default test: hold out data the model "
                        "was not calibrated on)")
    p.add_argument("--threads", type=threads_option("--threads"), default=None, help="CPU threads of the runtime")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")
    p.set_defaults(func=run)


def _scores(args):
    """Raw scores of the good and defective images of --data, by the runtime (what the line runs)."""
    import numpy as np

    from edge_sdk.cli import UserError
    from edge_sdk.commands._runtime import open_runtime

    if not (args.data and args.layout):
        raise UserError("a rate target needs labelled data: --data and --layout")
    rt = open_runtime(args.bundle, threads=args.threads, heatmaps=False)
    ds = open_dataset(args, args.split, gray=rt.manifest["input"]["channels"] == 1)
    scores = np.empty(len(ds))
    try:
        from tqdm import tqdm

        it = tqdm(range(len(ds)), desc="scoring", unit="img", leave=False)
    except ImportError:
        it = range(len(ds))
    for i in it:
        res = rt.predict(ds[i].image, on_error="review")
        if res.errors[0]:
            raise UserError(f"{ds.paths[i]}: the runtime could not judge it ({res.errors[0]})")
        scores[i] = res.scores[0]
    labels = np.asarray(ds.labels)
    return scores[labels == 0], scores[labels == 1], len(ds)


def run(args) -> int:
    import json
    import os

    from edge_sdk.bundle import BundleError
    from edge_sdk.bundle.revise import revise_decision, threshold_for_rate
    from edge_sdk.cli import UserError

    if args.value is None and args.false_accept is None and args.false_reject is None and args.review_band is None:
        raise UserError("nothing to change: give --value, --false-accept, --false-reject and/or --review-band")
    if os.path.lexists(args.out) and not args.overwrite:
        raise UserError(f"--out {args.out}: exists (pass --overwrite to replace it)")
    threshold, method = args.value, {"kind": "value"} if args.value is not None else None
    if args.false_accept is not None or args.false_reject is not None:
        good, bad, n = _scores(args)
        try:
            threshold, rates = threshold_for_rate(good, bad, false_accept=args.false_accept,
                                                  false_reject=args.false_reject)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        target = ({"false_accept": args.false_accept} if args.false_accept is not None
                  else {"false_reject": args.false_reject})
        method = {"kind": "target_rate", "target": target, "on": {"data": str(args.data), "layout": args.layout,
                                                                  "split": args.split, "images": n}, "at": rates}
        print(f"threshold {threshold:.6g}: false-accept {rates['false_accept_rate']}, "
              f"false-reject {rates['false_reject_rate']} on {rates['good']} good / {rates['defective']} defective")
    try:
        entry = revise_decision(args.bundle, args.out, reason=args.reason, threshold=threshold,
                                review_band=args.review_band, method=method, overwrite=args.overwrite)
    except BundleError as exc:
        raise UserError(str(exc)) from exc
    print(json.dumps({k: entry[k] for k in ("old", "new", "previous_manifest_sha256", "reason")}, indent=2))
    print(f"new bundle version: {args.out} (sign it again if the line requires signatures)")
    return 0
