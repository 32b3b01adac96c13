"""The search: every candidate of the declared space (space.py) fitted on the good training images
that were not held out and scored on the validation images (validation.py); the best validation
figure wins, ties (within TIE) going to the smaller model.

Cost: per backbone setting (input normalization x antialiasing) one pass of the backbone over the
fit and validation images, keeping the outputs of every tap any candidate of that setting uses
(the taps, not the embeddings, so one pass serves every tap set, channel count and model). A
candidate then costs its own statistics (covariances, k-means or coreset) and the scoring kernels
on the cached taps: the network runs 6 times over the images, not once per candidate.

The budget (minutes) is checked before each backbone pass and each candidate: when it is spent the
search stops with the candidates scored so far (the first one, the default configuration of the
first model, is always scored) and says so in its record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from edge_sdk.models.backbone import Lite0Backbone
from edge_sdk.models.base import EmbeddingModel, preprocess_images
from edge_sdk.models.contract import _tqdm, split_training
from edge_sdk.models.features import PerImageStandardized
from edge_sdk.tune import space
from edge_sdk.tune.validation import ValidationSet

TIE = 0.001  # validation AUROCs closer than this count as equal: the smaller model wins
MAX_FIT_IMAGES = 2000  # the candidates are fitted on at most this many images (seeded choice)
MAX_CACHE_BYTES = 3 << 30  # and on fewer when their cached taps would exceed this
CHUNK = 16  # images per step of the backbone and of the candidates' passes over the cache


@dataclass
class SearchResult:
    """``records``: one dict per scored (candidate, image score); ``chosen``: the winning record;
    ``record()``: what the model directory keeps."""

    records: list[dict]
    chosen: dict
    space: dict
    validation: dict
    seed: int
    stopped_by_budget: bool
    scored: int
    total: int
    seconds: float
    budget_minutes: float | None
    fit_images: int
    extra: dict = field(default_factory=dict)

    def chosen_settings(self) -> dict:
        """Keyword arguments for the chosen model's class: layers, input_norm, antialias,
        image_score (and d for PaDiM); bottleneck and filters for a reconstruction model."""
        c = self.chosen
        if "bottleneck" in c:
            return {"bottleneck": c["bottleneck"], "filters": c["filters"]}
        out = {"layers": list(c["layers"]), "input_norm": c["input_norm"], "antialias": c["antialias"],
               "image_score": c["image_score"]}
        if c["model"] == "padim":
            out["d"] = c["d_channels"]
        return out

    def record(self) -> dict:
        return {"space": self.space, "validation": self.validation, "seed": self.seed,
                "selection": f"highest mean validation image AUROC over the anomaly sources; within {TIE} "
                             f"of it the smallest model", "fit_images": self.fit_images,
                "budget_minutes": self.budget_minutes, "stopped_by_budget": self.stopped_by_budget,
                "scored": self.scored, "total": self.total, "seconds": round(self.seconds, 1),
                "candidates": self.records, "chosen": self.chosen, **self.extra}


def _fit_subset(n: int, input_size: tuple[int, int], taps_bytes_per_pixel: int, seed: int) -> list[int]:
    per_image = taps_bytes_per_pixel * input_size[0] * input_size[1]
    cap = int(min(MAX_FIT_IMAGES, max(2, MAX_CACHE_BYTES // max(per_image, 1))))
    if n <= cap:
        return list(range(n))
    return sorted(np.random.default_rng([int(seed), 0xF17]).permutation(n)[:cap].tolist())


class _TapCache:
    """Outputs of the union of taps of one backbone setting for a list of images."""

    def __init__(self, taps: dict[str, torch.Tensor], sizes: list[tuple[int, int]]):
        self.taps, self.sizes = taps, sizes

    def __len__(self) -> int:
        return len(self.sizes)

    @classmethod
    def compute(cls, load: Callable[[int], np.ndarray], n: int, layers: Sequence[str], input_norm: str,
                highpass_window: int, antialias: bool, input_size: tuple[int, int], device: str,
                progress: bool, desc: str) -> "_TapCache":
        backbone = Lite0Backbone(layers)
        net = backbone
        if input_norm == "per_image":
            net = PerImageStandardized(backbone)
        elif input_norm == "per_image_highpass":
            net = PerImageStandardized(backbone, highpass=highpass_window)
        net = net.eval().to(device)
        parts: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
        sizes = []
        for start in _tqdm(range(0, n, CHUNK), progress, desc=desc, unit="batch", leave=False):
            items = [load(i) for i in range(start, min(start + CHUNK, n))]
            sizes += [tuple(a.shape[:2]) for a in items]
            x = torch.from_numpy(preprocess_images(items, input_size, backbone, antialias, device)).to(device)
            with torch.inference_mode():
                outs = net(x)
            for name, t in zip(layers, outs):
                parts[name].append(t.cpu())
        return cls({k: torch.cat(v) for k, v in parts.items()}, sizes)

    def embeddings(self, head: Callable, layers: Sequence[str]):
        """Feature batches (N, L, C) of the model head over the cached taps."""
        for start in range(0, len(self), CHUNK):
            with torch.inference_mode():
                yield head([self.taps[name][start:start + CHUNK] for name in layers])


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, progress: bool):
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="auto: candidates", unit="cand")


def _head(model: EmbeddingModel) -> Callable:
    net = model._ensure_network()
    inner = net.inner if isinstance(net, PerImageStandardized) else net
    return inner.head


def _model_bytes(model: EmbeddingModel) -> int:
    arrays = {**model._model_arrays(), **model._network_arrays()}
    return int(sum(np.asarray(a).nbytes for a in arrays.values()))


def _score(model: EmbeddingModel, cache: _TapCache, layers) -> dict[str, np.ndarray]:
    head = _head(model)
    out: dict[str, list] = {m: [] for m in space.IMAGE_SCORES}
    for start, feats in zip(range(0, len(cache), CHUNK), cache.embeddings(head, layers)):
        scores, _ = model.scores_from_features(np.ascontiguousarray(feats.numpy()),
                                               cache.sizes[start:start + CHUNK], space.IMAGE_SCORES)
        for m in out:
            out[m].append(scores[m])
    return {m: np.concatenate(v) for m, v in out.items()}


def run_search(train, fit_indices: Sequence[int], validation: ValidationSet, *,
               make_model: Callable[[space.Candidate], EmbeddingModel], models: Sequence[str] = space.MODELS,
               seed: int = 0, budget_minutes: float | None = None, progress: bool = True,
               report_sets: dict | None = None, log: Callable[[str], None] | None = None) -> SearchResult:
    """Fits and scores every candidate of the space for ``models`` (see the module doc).

    train: the good training images (indexable Samples); fit_indices: those the candidates are
    fitted on (never the held-out ones). make_model(candidate): an unfitted model of the candidate
    with every other option set. report_sets: {name: labelled data set} scored by every fitted
    candidate and recorded beside its validation figures, for studies of how well the validation
    ranks candidates (benchmarks); never used for the choice. log: where progress lines go."""
    if budget_minutes is not None and not 0 < budget_minutes <= 7 * 24 * 60:
        raise ValueError(f"budget_minutes: expected a value in (0, 10080], got {budget_minutes}")
    t0 = time.monotonic()
    deadline = None if budget_minutes is None else t0 + 60.0 * budget_minutes
    cands = space.candidates(models)
    by_setting: dict[tuple, list[space.Candidate]] = {}
    for c in cands:
        by_setting.setdefault(c.backbone_key(), []).append(c)
    probe = make_model(cands[0])
    input_size, device = probe.input_size, probe.device
    union_all = sorted({t for c in cands for t in c.layers})
    tap_bytes = 4 * sum(ch / s ** 2 for ch, s in ((t.channels, t.stride) for t in Lite0Backbone(union_all).taps))
    fit_idx = [list(fit_indices)[i] for i in _fit_subset(len(fit_indices), input_size, int(tap_bytes) + 1, seed)]
    # in the order `fit` trains in (seeded shuffle): PatchCore's coreset chunks depend on it
    fit_idx = [fit_idx[i] for i in split_training(len(fit_idx), seed, 0.0, 0, hold_out=False)[0]]
    records: list[dict] = []
    stopped = False
    bar = _progress_bar(len(cands), progress)

    def spent() -> bool:
        return deadline is not None and time.monotonic() >= deadline and bool(records)

    def load_fit(i: int) -> np.ndarray:
        sample = train[fit_idx[i]]
        if int(sample.label) != 0:
            raise ValueError(f"training data must contain good images only; {getattr(sample, 'path', i)} is "
                             f"labelled anomalous")
        return sample.image

    for (norm, aa), group in by_setting.items():
        if spent():
            stopped = True
            break
        layers = sorted({t for c in group for t in c.layers})
        common = dict(layers=layers, input_norm=norm, highpass_window=probe.highpass_window, antialias=aa,
                      input_size=input_size, device=device, progress=progress)
        tag = f"{norm}, antialias {'on' if aa else 'off'}"
        fit_cache = _TapCache.compute(load_fit, len(fit_idx), desc=f"auto: taps of fit images ({tag})", **common)
        val_cache = _TapCache.compute(lambda i: validation.images[i], len(validation),
                                      desc=f"auto: taps of validation images ({tag})", **common)
        report_caches = {}
        for name, ds in (report_sets or {}).items():
            report_caches[name] = (_TapCache.compute(lambda i, ds=ds: ds[i].image, len(ds),
                                                     desc=f"auto: taps of {name} ({tag})", **common),
                                   np.asarray([int(ds[i].label) for i in range(len(ds))]))
        for cand in group:
            if spent():
                stopped = True
                break
            model = make_model(cand)
            t1 = time.monotonic()
            head = _head(model)
            model._fit_passes(lambda desc: fit_cache.embeddings(head, cand.layers), len(fit_cache))
            fit_s = time.monotonic() - t1
            t1 = time.monotonic()
            val_scores = _score(model, val_cache, cand.layers)
            score_s = time.monotonic() - t1
            report = {name: _score(model, cache, cand.layers) for name, (cache, _) in report_caches.items()}
            nbytes = _model_bytes(model)
            for mode in space.IMAGE_SCORES:
                figs = validation.aurocs(val_scores[mode])
                rec = {"index": len(records), **cand.describe(), "image_score": mode,
                       "validation_auroc": figs["auroc"], "sources": figs["sources"],
                       "fit_seconds": round(fit_s, 2), "score_ms_per_image": round(1000 * score_s / len(val_cache), 2),
                       "model_bytes": nbytes}
                if cand.model == "padim":
                    rec["d_channels"] = model.d
                if report:
                    from edge_sdk.metrics import image_auroc

                    rec["report_auroc"] = {name: round(float(image_auroc(report_caches[name][1], s[mode])), 6)
                                           for name, s in report.items()}
                records.append(rec)
            if log is not None:
                best = max(records[-2:], key=lambda r: r["validation_auroc"])
                log(f"auto: {len(records) // 2}/{len(cands)} {_label(best)}: validation AUROC "
                    f"{best['validation_auroc']:.4f} (fit {fit_s:.1f} s)")
            bar.update(1)
            del model
        del fit_cache, val_cache, report_caches
        if stopped:
            break
    bar.close()
    scored = len(records) // len(space.IMAGE_SCORES)
    return SearchResult(records=records, chosen=select(records), space=space.declared(models),
                        validation=validation.record, seed=int(seed), stopped_by_budget=stopped,
                        scored=scored, total=len(cands), seconds=time.monotonic() - t0,
                        budget_minutes=budget_minutes, fit_images=len(fit_idx))


def select(records: list[dict]) -> dict:
    """The best record: highest validation AUROC; within TIE of it the smallest model, then the
    earliest scored (the space's order)."""
    if not records:
        raise ValueError("records: no candidate was scored")
    best = max(r["validation_auroc"] for r in records)
    pool = [r for r in records if r["validation_auroc"] >= best - TIE]
    return min(pool, key=lambda r: (r["model_bytes"], r["index"]))


def _label(r: dict) -> str:
    if "bottleneck" in r:
        from edge_sdk.tune import recon

        return recon.label(r)
    d = f" d={r['d']}" if "d" in r else ""
    return (f"{r['model']} {'+'.join(r['layers'])}{d} {r['input_norm']} aa={'on' if r['antialias'] else 'off'} "
            f"{r['image_score']}")


def table(result: SearchResult | dict, *, limit: int | None = None) -> str:
    """The candidates as a text table, best validation AUROC first; the chosen one marked '*'."""
    rec = result.record() if isinstance(result, SearchResult) else result
    if "bottleneck" in rec["chosen"]:
        from edge_sdk.tune import recon

        return recon.table(rec)
    rows = sorted(rec["candidates"], key=lambda r: (-r["validation_auroc"], r["index"]))
    sources = sorted({s for r in rows for s in r["sources"]})
    report = sorted({s for r in rows for s in r.get("report_auroc", {})})
    head = (f"{'':1s} {'model':9s} {'layers':26s} {'d':>4s} {'input_norm':18s} {'aa':3s} {'image_score':11s} "
            f"{'val AUROC':>9s} " + " ".join(f"{s[:9]:>9s}" for s in sources)
            + "".join(f" {s[:9]:>9s}" for s in report) + f" {'fit s':>6s} {'MiB':>6s}")
    lines = [head]
    for r in rows[:limit]:
        mark = "*" if r["index"] == rec["chosen"]["index"] else " "
        lines.append(f"{mark} {r['model']:9s} {'+'.join(r['layers']):26s} {str(r.get('d', '')):>4s} "
                     f"{r['input_norm']:18s} {'on' if r['antialias'] else 'off':3s} {r['image_score']:11s} "
                     f"{r['validation_auroc']:9.4f} " + " ".join(f"{r['sources'].get(s, float('nan')):9.4f}"
                                                                 for s in sources)
                     + "".join(f" {r.get('report_auroc', {}).get(s, float('nan')):9.4f}" for s in report)
                     + f" {r['fit_seconds']:6.1f} {r['model_bytes'] / 2**20:6.1f}")
    status = (f"stopped by the budget ({rec['budget_minutes']:g} min) after {rec['scored']} of {rec['total']} "
              f"candidates" if rec["stopped_by_budget"] else f"all {rec['total']} candidates scored")
    lines.append(f"{status} in {rec['seconds']:.0f} s, each with {len(space.IMAGE_SCORES)} image scores; "
                 f"chosen (*): {_label(rec['chosen'])}")
    return "\n".join(lines)
