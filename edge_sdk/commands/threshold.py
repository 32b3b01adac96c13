"""`edge-sdk threshold BUNDLE --out NEW --reason ... (--value T | --false-accept R | --false-reject R |
--level strip|run) [--review-band B]`: a new, traceable bundle version with another decision
threshold, per-region thresholds re-tuned for the strip or run decision, or another review band
(edge_sdk/bundle/revise.py, edge_sdk.regions.retune_thresholds)."""

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
    how.add_argument("--level", choices=("strip", "run"),
                     help="region bundles: move every region's threshold by the same multiple of its spread "
                          "for the best accuracy of the strip decision (a frame rejected when any region is) or "
                          "of the run decision (the bundle's k-of-n vote over each product's acquisitions, "
                          "products named p<id>_a<acquisition>), on the labelled frames (with masks) of --data")
    p.add_argument("--review-band", type=bounded_float("--review-band", 0.0, 0.4999), default=None,
                   help="normalized scores within this distance of 0.5 are judged 'review'")
    add_data_arguments(p, required=False)
    p.add_argument("--split", default="test", choices=("train", "test"),
                   help="split of --data scored for a rate target (default test: hold out data the model "
                        "was not calibrated on)")
    p.add_argument("--threads", type=threads_option("--threads"), default=None, help="CPU threads of the runtime")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")
    p.set_defaults(func=run)


def _judged(rt, ds, what: str):
    """The runtime's result for each image of ``ds`` in turn (with a progress bar); an image it
    could not judge stops the command, naming the file."""
    from edge_sdk.cli import UserError

    try:
        from tqdm import tqdm

        it = tqdm(range(len(ds)), desc=what, unit="img", leave=False)
    except ImportError:
        it = range(len(ds))
    for i in it:
        res = rt.predict(ds[i].image, on_error="review")
        if res.errors[0]:
            raise UserError(f"{ds.paths[i]}: the runtime could not judge it ({res.errors[0]})")
        yield res


def _scores(args):
    """Raw scores of the good and defective images of --data, by the runtime (what the line runs)."""
    import numpy as np

    from edge_sdk.cli import UserError
    from edge_sdk.commands._runtime import open_runtime

    if not (args.data and args.layout):
        raise UserError("a rate target needs labelled data: --data and --layout")
    rt = open_runtime(args.bundle, threads=args.threads, heatmaps=False)
    ds = open_dataset(args, args.split, gray=rt.manifest["input"]["channels"] == 1)
    scores = np.array([res.scores[0] for res in _judged(rt, ds, "scoring")])
    labels = np.asarray(ds.labels)
    return scores[labels == 0], scores[labels == 1], len(ds)


def _region_scores(args):
    """Per-region raw scores (N, R) and labels (N, R) of the frames of --data, by the runtime, with
    the product id of each frame (None when the names do not carry one)."""
    import numpy as np

    from edge_sdk.cli import UserError
    from edge_sdk.commands._runtime import open_runtime
    from edge_sdk.regions import RegionError, RegionLayout, RegionPatches, product_ids

    if not (args.data and args.layout):
        raise UserError("--level needs labelled frames: --data and --layout")
    rt = open_runtime(args.bundle, threads=args.threads, heatmaps=False)
    m = rt.manifest
    if not m.get("regions"):
        raise UserError(f"{args.bundle}: --level re-tunes per-region thresholds; this bundle has no regions "
                        "(use --false-accept / --false-reject)")
    ds = open_dataset(args, args.split, gray=m["input"]["channels"] == 1)
    try:
        layout = RegionLayout.from_bundle_regions(m["regions"], m["frame"]["width"], m["frame"]["height"])
        labels = RegionPatches(ds, layout).labels.reshape(len(ds), len(layout))
    except RegionError as exc:
        raise UserError(f"--data {args.data}: {exc}") from exc
    scores = np.array([res.regions.scores[0] for res in _judged(rt, ds, "scoring frames")]).reshape(len(ds), -1)
    run_rule = (m.get("decision") or {}).get("run") or {}
    return scores, labels, product_ids(ds.paths), layout, run_rule


def _retuned(args):
    """(region thresholds, lineage method) for --level."""
    from edge_sdk.cli import UserError
    from edge_sdk.regions import retune_thresholds
    from edge_sdk.run_vote import DEFAULT_RULE

    scores, labels, products, layout, run_rule = _region_scores(args)
    k, n = run_rule.get("k", DEFAULT_RULE[0]), run_rule.get("n", DEFAULT_RULE[1])
    if args.level == "run" and products is None:
        raise UserError(f"--level run: the frames of --data {args.data} do not name their product "
                        "(file names p<product>_a<acquisition>.<ext>)")
    try:
        new, info = retune_thresholds(scores, labels, layout.thresholds(), level=args.level, products=products,
                                      k=k, n=n if args.level == "run" else None)
    except ValueError as exc:
        raise UserError(f"--level {args.level}: {exc}") from exc
    b, a = info["before"], info["after"]
    unit = "strips" if args.level == "strip" else f"runs ({k} of {n})"
    print(f"{info['units']} {unit}, {info['defective']} defective: accuracy {b['accuracy']:.4f} -> {a['accuracy']:.4f}, "
          f"TPR {b['tpr']:.4f} -> {a['tpr']:.4f}, TNR {b['tnr']:.4f} -> {a['tnr']:.4f}, false accepts "
          f"{b['false_accepts']} -> {a['false_accepts']} (thresholds moved by {info['delta']:+.4g} spreads)")
    method = {"kind": "retuned_for_level", "level": args.level, "delta": info["delta"],
              "k": info["k"], "n": n if args.level == "run" else None,
              "on": {"data": str(args.data), "layout": args.layout, "split": args.split, "frames": int(len(scores))},
              "before": b, "after": a}
    return dict(zip(layout.names, map(float, new))), method


def run(args) -> int:
    import json
    import os

    from edge_sdk.bundle import BundleError
    from edge_sdk.bundle.revise import revise_decision, threshold_for_rate
    from edge_sdk.cli import UserError

    if (args.value is None and args.false_accept is None and args.false_reject is None and args.level is None
            and args.review_band is None):
        raise UserError("nothing to change: give --value, --false-accept, --false-reject, --level and/or --review-band")
    if os.path.lexists(args.out) and not args.overwrite:
        raise UserError(f"--out {args.out}: exists (pass --overwrite to replace it)")
    threshold, method = args.value, {"kind": "value"} if args.value is not None else None
    region_thresholds = None
    if args.level is not None:
        region_thresholds, method = _retuned(args)
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
                                review_band=args.review_band, region_thresholds=region_thresholds, method=method,
                                overwrite=args.overwrite)
    except BundleError as exc:
        raise UserError(str(exc)) from exc
    print(json.dumps({k: entry[k] for k in ("old", "new", "previous_manifest_sha256", "reason")}, indent=2))
    print(f"new bundle version: {args.out} (sign it again if the line requires signatures)")
    return 0
