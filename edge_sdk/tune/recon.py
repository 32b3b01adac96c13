"""The automatic choice for the reconstruction models (ResGANAD, GRD-Net): a smaller space than the
embedding models', because every point is a training of its own (the networks share nothing
between settings) and minutes to hours each:

- bottleneck: dense (the default), convolutional
- filters: the preset's base filters, and twice them

Each candidate is trained on the fit images (the good training images not held out) with the
model's own options (preset, epochs, input size), scored on the same validation images as the
embedding search (held-out good images with synthetic anomalies, labelled images when given), and
the best mean validation AUROC wins, ties going to the smaller network. The budget is checked
before each training: a search it stops keeps the candidates trained so far (the first, the
preset's own configuration, always).
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

from edge_sdk.tune.search import SearchResult, select
from edge_sdk.tune.validation import ValidationSet

MODELS = ("resganad", "grdnet")
BOTTLENECKS = ("dense", "conv")
FILTER_FACTORS = (1, 2)


def check_models(models: Sequence[str]) -> tuple[str, ...]:
    models = tuple(models)
    unknown = [m for m in models if m not in MODELS]
    if not models or unknown:
        raise ValueError(f"models: expected reconstruction models among {', '.join(MODELS)}, got {list(models)}")
    return tuple(m for m in MODELS if m in models)


def candidates(models: Sequence[str], base_filters: dict[str, int]) -> list[dict]:
    """The points of the space, the preset's own configuration of each model first."""
    return [{"model": m, "bottleneck": b, "filters": int(base_filters[m]) * f}
            for m in check_models(models) for b in BOTTLENECKS for f in FILTER_FACTORS]


def declared(models: Sequence[str], base_filters: dict[str, int]) -> dict:
    return {"models": list(check_models(models)), "bottleneck": list(BOTTLENECKS),
            "filters": {m: [int(base_filters[m]) * f for f in FILTER_FACTORS] for m in check_models(models)},
            "candidates": len(candidates(models, base_filters))}


class _Subset:
    """The fit images of the training set, as a data set."""

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset, self.indices = dataset, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.dataset[self.indices[i]]


def _network_bytes(model) -> int:
    nets = [model.generator] + ([model.unet] if hasattr(model, "unet") else [])
    return int(sum(p.numel() * p.element_size() for net in nets for p in net.parameters()))


def label(r: dict) -> str:
    return f"{r['model']} bottleneck={r['bottleneck']} filters={r['filters']}"


def table(rec: dict) -> str:
    """The candidates as a text table, best validation AUROC first; the chosen one marked '*'."""
    rows = sorted(rec["candidates"], key=lambda r: (-r["validation_auroc"], r["index"]))
    sources = sorted({s for r in rows for s in r["sources"]})
    lines = [f"{'':1s} {'model':9s} {'bottleneck':10s} {'filters':>7s} {'val AUROC':>9s} "
             + " ".join(f"{s[:9]:>9s}" for s in sources) + f" {'fit s':>7s} {'MiB':>6s}"]
    for r in rows:
        mark = "*" if r["index"] == rec["chosen"]["index"] else " "
        lines.append(f"{mark} {r['model']:9s} {r['bottleneck']:10s} {r['filters']:7d} {r['validation_auroc']:9.4f} "
                     + " ".join(f"{r['sources'].get(s, float('nan')):9.4f}" for s in sources)
                     + f" {r['fit_seconds']:7.1f} {r['model_bytes'] / 2**20:6.1f}")
    status = (f"stopped by the budget ({rec['budget_minutes']:g} min) after {rec['scored']} of {rec['total']} "
              f"candidates" if rec["stopped_by_budget"] else f"all {rec['total']} candidates scored")
    lines.append(f"{status} in {rec['seconds']:.0f} s; chosen (*): {label(rec['chosen'])}")
    return "\n".join(lines)


def run_search(train, fit_indices: Sequence[int], validation: ValidationSet, *,
               make_model: Callable[[str, dict], object], models: Sequence[str] = MODELS, seed: int = 0,
               budget_minutes: float | None = None, progress: bool = True,
               log: Callable[[str], None] | None = None) -> SearchResult:
    """Trains and scores every candidate (see the module doc). make_model(name, settings): an
    unfitted model of that name with ``settings`` (bottleneck, filters; {} = the preset's) and
    every other option set."""
    if budget_minutes is not None and not 0 < budget_minutes <= 7 * 24 * 60:
        raise ValueError(f"budget_minutes: expected a value in (0, 10080], got {budget_minutes}")
    t0 = time.monotonic()
    deadline = None if budget_minutes is None else t0 + 60.0 * budget_minutes
    models = check_models(models)
    base = {m: int(make_model(m, {}).config.filters) for m in models}
    cands = candidates(models, base)
    fit = _Subset(train, fit_indices)
    records: list[dict] = []
    stopped = False
    for cand in cands:
        if deadline is not None and time.monotonic() >= deadline and records:
            stopped = True
            break
        model = make_model(cand["model"], {"bottleneck": cand["bottleneck"], "filters": cand["filters"]})
        t1 = time.monotonic()
        model.fit(fit, val_fraction=0.0, calibrate=False, progress=progress)
        fit_s = time.monotonic() - t1
        t1 = time.monotonic()
        scores = model.predict(list(validation.images)).scores
        score_s = time.monotonic() - t1
        figs = validation.aurocs(scores)
        records.append({"index": len(records), **cand,
                        "validation_auroc": figs["auroc"], "sources": figs["sources"],
                        "fit_seconds": round(fit_s, 2),
                        "score_ms_per_image": round(1000 * score_s / max(len(validation), 1), 2),
                        "model_bytes": _network_bytes(model)})
        if log is not None:
            log(f"auto: {len(records)}/{len(cands)} {label(records[-1])}: validation AUROC "
                f"{figs['auroc']:.4f} (fit {fit_s:.1f} s)")
        del model
    return SearchResult(records=records, chosen=select(records), space=declared(models, base),
                        validation=validation.record, seed=int(seed), stopped_by_budget=stopped,
                        scored=len(records), total=len(cands), seconds=time.monotonic() - t0,
                        budget_minutes=budget_minutes, fit_images=len(fit))
