"""Region layouts, per-region thresholds and product decisions.

A frame (e.g. one image of a 5-vial Blow-Fill-Seal strip) is cut into named rectangular regions;
each is resized to the model input and scored on its own; each region has its own threshold
(a region is rejected when its score >= its threshold, the rule of `edge_sdk.calibration`), and
one rejected region rejects the product.

- `RegionLayout`: the layout (`regions.json`: {"schema_version": 1, "frame": {"width", "height"},
  "regions": [{"name", "x", "y", "width", "height", optional "threshold", "group" (the unit it
  belongs to, e.g. a vial), "view" (the camera or view that sees it), free extra keys}]}),
  validation with errors naming the file and field, cutting frames and masks.
- `RegionPatches`: a data set of frames seen as a data set of region patches (Samples), so every
  model trains and is evaluated on patches; it keeps which region and frame each patch comes from.
- `calibrate_region_thresholds`: per region (or per view: the regions of one view share their
  patches and threshold), the maximum-accuracy threshold on labelled good and defective patches,
  or a quantile of the normal scores when the region has no defects ("auto").
- `retune_thresholds`: the thresholds re-tuned after aggregation, for the best strip or run result.
- `decide`: per-region verdicts and the product verdict.
- `evaluate_decisions`: patch, strip and run (k-of-n over repeated acquisitions) level results.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace

import numpy as np

from edge_sdk.atomic import write_json

__all__ = ["Region", "RegionLayout", "RegionError", "RegionPatches", "calibrate_region_thresholds", "decide",
           "evaluate_decisions", "evaluate_region_patches", "k_of_n_correct", "product_ids", "retune_thresholds"]

SCHEMA_VERSION = 1


class RegionError(ValueError):
    """A region layout that cannot be used; the message names the file and field."""


@dataclass(frozen=True)
class Region:
    name: str
    x: int
    y: int
    width: int
    height: int
    threshold: float | None = None
    extra: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        d = {"name": self.name, "x": self.x, "y": self.y, "width": self.width, "height": self.height}
        if self.threshold is not None:
            d["threshold"] = float(self.threshold)
        return {**d, **self.extra}


def _int_field(d: dict, key: str, where: str) -> int:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise RegionError(f"{where}.{key}: expected an integer, got {v!r}")
    return int(v)


@dataclass(frozen=True)
class RegionLayout:
    frame_width: int
    frame_height: int
    regions: tuple[Region, ...]

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict, source: str = "regions") -> "RegionLayout":
        if not isinstance(d, dict):
            raise RegionError(f"{source}: expected a JSON object")
        if d.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise RegionError(f"{source}: schema_version {d.get('schema_version')!r}, this SDK reads {SCHEMA_VERSION}")
        frame = d.get("frame")
        if not isinstance(frame, dict):
            raise RegionError(f"{source}: missing 'frame' object with width and height")
        fw, fh = _int_field(frame, "width", f"{source}: frame"), _int_field(frame, "height", f"{source}: frame")
        if fw < 1 or fh < 1:
            raise RegionError(f"{source}: frame: width and height must be positive, got {fw} x {fh}")
        items = d.get("regions")
        if not isinstance(items, list) or not items:
            raise RegionError(f"{source}: 'regions' must be a non-empty list")
        regions, seen = [], set()
        for i, r in enumerate(items):
            where = f"{source}: regions[{i}]"
            if not isinstance(r, dict):
                raise RegionError(f"{where}: expected an object")
            name = r.get("name")
            if not isinstance(name, str) or not name:
                raise RegionError(f"{where}.name: expected a non-empty string, got {name!r}")
            if name in seen:
                raise RegionError(f"{where}.name: duplicate region name {name!r}")
            seen.add(name)
            x, y = _int_field(r, "x", where), _int_field(r, "y", where)
            w, h = _int_field(r, "width", where), _int_field(r, "height", where)
            if w < 1 or h < 1:
                raise RegionError(f"{where} ({name}): width and height must be positive, got {w} x {h}")
            if x < 0 or y < 0 or x + w > fw or y + h > fh:
                raise RegionError(f"{where} ({name}): rectangle x={x} y={y} {w}x{h} leaves the {fw}x{fh} frame")
            t = r.get("threshold")
            if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not np.isfinite(t)):
                raise RegionError(f"{where}.threshold: expected a finite number or null, got {t!r}")
            for key in ("group", "view"):
                v = r.get(key)
                if v is not None and (isinstance(v, bool) or not isinstance(v, (str, int)) or v == ""):
                    raise RegionError(f"{where}.{key}: expected a non-empty string (or an integer), got {v!r}")
            extra = {k: v for k, v in r.items() if k not in ("name", "x", "y", "width", "height", "threshold")}
            regions.append(Region(name, x, y, w, h, None if t is None else float(t), extra))
        return cls(fw, fh, tuple(regions))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RegionLayout":
        """From a regions.json file, or a folder holding one."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, "regions.json")
        try:
            with open(path) as f:
                d = json.load(f)
        except FileNotFoundError:
            raise RegionError(f"{path}: region layout not found") from None
        except json.JSONDecodeError as exc:
            raise RegionError(f"{path}: not valid JSON ({exc})") from None
        return cls.from_dict(d, source=path)

    @classmethod
    def from_bundle_regions(cls, regions: list[dict], frame_width: int, frame_height: int) -> "RegionLayout":
        return cls.from_dict({"frame": {"width": frame_width, "height": frame_height}, "regions": regions})

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "frame": {"width": self.frame_width, "height": self.frame_height},
                "regions": [r.to_dict() for r in self.regions]}

    def save(self, path: str | os.PathLike) -> None:
        """Writes regions.json atomically (temp file + rename)."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, "regions.json")
        write_json(path, self.to_dict(), indent=1)

    # -- use ---------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [r.name for r in self.regions]

    def __len__(self) -> int:
        return len(self.regions)

    def with_thresholds(self, thresholds: dict[str, float]) -> "RegionLayout":
        missing = [n for n in self.names if n not in thresholds]
        if missing:
            raise RegionError(f"thresholds: no threshold for region(s) {missing}")
        return replace(self, regions=tuple(replace(r, threshold=float(thresholds[r.name])) for r in self.regions))

    def thresholds(self) -> np.ndarray:
        missing = [r.name for r in self.regions if r.threshold is None]
        if missing:
            raise RegionError(f"regions without a threshold: {missing} (calibrate them first)")
        return np.array([r.threshold for r in self.regions], dtype=np.float64)

    def bundle_regions(self) -> list[dict]:
        """The `ExportParts.regions` list: dict(name, x, y, width, height, threshold[, group])."""
        t = self.thresholds()
        return [dict(name=r.name, x=r.x, y=r.y, width=r.width, height=r.height, threshold=float(v),
                     **({"group": str(self.group_of(r))} if self.group_of(r) is not None else {}))
                for r, v in zip(self.regions, t)]

    @staticmethod
    def group_of(region: "Region") -> str | None:
        """The unit a region belongs to (its ``group`` field, e.g. the vial of a strip), or None."""
        g = region.extra.get("group")
        return None if g is None or g == "" else str(g)

    @staticmethod
    def view_of(region: "Region") -> str | None:
        """The camera or view that sees a region (its ``view`` field), or None."""
        v = region.extra.get("view")
        return None if v is None or v == "" else str(v)

    def views(self) -> dict[str, str]:
        """region name -> view, for the regions that name one."""
        return {r.name: v for r in self.regions if (v := self.view_of(r)) is not None}

    def groups(self) -> dict[str, list[int]]:
        """group name -> indices of its regions, in order of first appearance."""
        out: dict[str, list[int]] = {}
        for k, r in enumerate(self.regions):
            g = self.group_of(r)
            if g is not None:
                out.setdefault(g, []).append(k)
        return out

    def _check_frame(self, a: np.ndarray, what: str) -> None:
        if a.ndim < 2 or a.shape[0] != self.frame_height or a.shape[1] != self.frame_width:
            raise RegionError(f"{what}: frame of shape {a.shape[:2]} does not match the layout's "
                              f"{self.frame_height} x {self.frame_width} (height x width)")

    def cut(self, image: np.ndarray, what: str = "image") -> list[np.ndarray]:
        """The region patches of one frame (H, W[, C]), in layout order (views)."""
        a = np.asarray(image)
        self._check_frame(a, what)
        return [a[r.y:r.y + r.height, r.x:r.x + r.width] for r in self.regions]


class RegionPatches:
    """A data set of frames as a data set of region patches: item k is region k % R of frame k // R.

    Each item is an `edge_sdk.data.Sample` with the patch, its part of the mask, label 1 when the
    mask marks at least `min_defect_pixels` pixels in the patch (else 0, defect_type "good"), and
    path "<frame path>#<region name>". `region_names[k]` / `frame_index[k]` say where item k comes
    from (no pixels read)."""

    def __init__(self, dataset, layout: RegionLayout, *, min_defect_pixels: int = 1):
        self.dataset = dataset
        self.layout = layout
        self.min_defect_pixels = int(min_defect_pixels)
        r = len(layout)
        self.region_names = [layout.names[k % r] for k in range(len(dataset) * r)]
        self.frame_index = [k // r for k in range(len(dataset) * r)]
        self._cache: tuple[int, object] | None = None

    def __len__(self) -> int:
        return len(self.dataset) * len(self.layout)

    def _frame(self, i: int):
        if self._cache is None or self._cache[0] != i:
            self._cache = (i, self.dataset[i])
        return self._cache[1]

    def __getitem__(self, k: int):
        from edge_sdk.data import Sample

        n = len(self)
        if not isinstance(k, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(k).__name__}")
        if not -n <= k < n:
            raise IndexError(f"patch index {k} out of range for {n} patches")
        k = int(k) % n
        r = len(self.layout)
        s = self._frame(k // r)
        reg = self.layout.regions[k % r]
        where = s.path or f"frame {k // r}"
        self.layout._check_frame(s.image, where)
        img = np.ascontiguousarray(s.image[reg.y:reg.y + reg.height, reg.x:reg.x + reg.width])
        mask = None
        label = 0
        if s.mask is not None:
            m = np.ascontiguousarray(s.mask[reg.y:reg.y + reg.height, reg.x:reg.x + reg.width])
            if int(m.sum()) >= self.min_defect_pixels:
                mask, label = m, 1
        if s.label == 1 and s.mask is None:
            raise RegionError(f"{where}: anomalous frame without a mask; cannot tell which region is defective")
        return Sample(image=img, mask=mask, label=label, defect_type=s.defect_type if label else "good",
                      path=f"{s.path}#{reg.name}" if s.path else None, index=k)

    @property
    def labels(self) -> np.ndarray:
        """Patch labels (reads the masks of anomalous frames)."""
        out = np.zeros(len(self), dtype=np.int64)
        r = len(self.layout)
        frame_labels = getattr(self.dataset, "labels", None)
        for i in range(len(self.dataset)):
            if frame_labels is not None and frame_labels[i] == 0:
                continue
            for j in range(r):
                out[i * r + j] = self[i * r + j].label
        return out


def calibrate_region_thresholds(scores, labels, region_names, *, method: str = "auto", quantile: float = 0.99,
                                names: list[str] | None = None,
                                views: dict[str, str] | None = None) -> tuple[dict[str, float], dict[str, str]]:
    """Threshold per region from patch scores.

    method "accuracy": maximum accuracy on the region's labelled good + defective patches (needs
    both); "quantile": the `quantile` of the region's good-patch scores; "auto": accuracy where the
    region has both classes, quantile otherwise. `names` (default: the regions seen) lists regions
    that must get a threshold. `views` (region name -> view, `RegionLayout.views()`): the regions of
    one view are calibrated together, on their pooled patches, and share that threshold (scores
    cluster by camera and view, not by position). Returns (thresholds, method used per region)."""
    from edge_sdk.calibration import choose_threshold

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    rn = np.asarray(region_names)
    if not (s.shape == y.shape == rn.shape) or s.ndim != 1:
        raise ValueError(f"scores, labels, region_names: expected equal 1-D lengths, got {s.shape}, {y.shape}, {rn.shape}")
    if method not in ("auto", "accuracy", "quantile"):
        raise ValueError(f"method: expected 'auto', 'accuracy' or 'quantile', got {method!r}")
    names = list(dict.fromkeys(rn.tolist())) if names is None else list(names)
    views = views or {}
    members = {name: [m for m in names if views.get(m) is not None and views.get(m) == views.get(name)] or [name]
               for name in names}
    thresholds, used = {}, {}
    for name in names:
        sel = np.isin(rn, members[name])
        if not sel.any():
            raise ValueError(f"region_names: no patches of region {name!r} to calibrate on")
        rs, ry = s[sel], y[sel]
        both = bool((ry == 1).any() and (ry == 0).any())
        m = method if method != "auto" else ("accuracy" if both else "quantile")
        if m == "accuracy" and not both:
            raise ValueError(f"region {name!r}: method 'accuracy' needs good and defective patches")
        if m == "quantile":
            normal = rs[ry == 0]
            if normal.size == 0:
                raise ValueError(f"region {name!r}: no good patches for a quantile threshold")
            thresholds[name] = float(choose_threshold(normal, None, method="quantile", quantile=quantile))
        else:
            thresholds[name] = float(choose_threshold(rs, ry, method="accuracy"))
        used[name] = m
    return thresholds, used


def decide(scores, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """scores (N, R) per frame and region, thresholds (R,) -> (region rejects (N, R) bool,
    product rejects (N,) bool: any region rejects). A non-finite score rejects (never accept what
    could not be judged)."""
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    if s.ndim != 2 or t.shape != (s.shape[1],):
        raise ValueError(f"scores (N, R) and thresholds (R,): got shapes {s.shape} and {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError("thresholds: contain NaN/inf")
    reject = ~(s < t)  # NaN compares False -> reject
    return reject, reject.any(axis=1)


def _rates(y: np.ndarray, p: np.ndarray) -> dict:
    y, p = y.astype(bool), p.astype(bool)
    pos, neg = int(y.sum()), int((~y).sum())
    return {"n": int(y.size), "defective": pos, "accuracy": float((y == p).mean()) if y.size else float("nan"),
            "tpr": float((p & y).sum() / pos) if pos else float("nan"),
            "tnr": float((~p & ~y).sum() / neg) if neg else float("nan")}


def k_of_n_correct(labels, verdicts, products, k: int = 7) -> dict:
    """Run-level acceptance: a product is correctly classified when its label is confirmed in at
    least k of its n acquisitions (`edge_sdk.calibration.k_of_n_decision` on "verdict == label").
    labels/verdicts (M,) per acquisition (1 = defective / reject), products (M,) product ids.
    Returns {product: (label, confirmed count, n, correct)}."""
    from edge_sdk.calibration import k_of_n_decision

    y = np.asarray(labels).astype(bool)
    v = np.asarray(verdicts).astype(bool)
    p = np.asarray(products)
    if not (y.shape == v.shape == p.shape) or y.ndim != 1:
        raise ValueError("labels, verdicts, products: expected equal 1-D lengths")
    out = {}
    for prod in dict.fromkeys(p.tolist()):
        sel = p == prod
        lab = y[sel]
        if lab.min() != lab.max():
            raise ValueError(f"products: product {prod!r} has both good and defective acquisitions")
        n = int(sel.sum())
        if n < k:
            raise ValueError(f"products: product {prod!r} has {n} acquisitions, fewer than k={k}")
        confirmed = v[sel] == lab[0]
        out[prod] = (bool(lab[0]), int(confirmed.sum()), n, bool(k_of_n_decision(confirmed, k, n)))
    return out


def retune_thresholds(scores, labels, thresholds, *, level: str, products=None, k: int = 7,
                      n: int | None = None) -> tuple[np.ndarray, dict]:
    """Per-region thresholds re-tuned after aggregation (the published vial line re-tunes them for
    the strip and run decisions, not the patch).

    scores, labels (N, R) per frame and region (label 1 = defective patch); thresholds (R,), e.g.
    from `calibrate_region_thresholds`. Every threshold moves by the same multiple d of its region's
    spread (the standard deviation of its good-patch scores): t_j + d * sd_j, so regions keep their
    relative strictness. d is chosen for the highest accuracy at `level`:
    - "strip": a frame is rejected when any region rejects; defective when any region is;
    - "run": `products` (N,) ids; a product of n acquisitions is rejected when at least k of them
      are rejected (the runtime's run vote, `edge_sdk.run_vote`; every acquisition is judged here);
      defective when any of its frames is.
    Ties go to fewer false accepts, then to the smallest |d|. Every d between two decision changes
    gives the same decisions, so the candidates are the midpoints between consecutive unit margins
    (the d at which a unit's decision flips) plus one beyond each end: the search is exact.
    Returns (new thresholds (R,), {"level", "delta", "before", "after", "units", "spread"}) where
    before/after are accuracy / TPR / TNR and false accepts at the level with the old and new
    thresholds, both computed with `decide` (the runtime's rule)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    t = np.asarray(thresholds, dtype=np.float64)
    if s.ndim != 2 or y.shape != s.shape or t.shape != (s.shape[1],):
        raise ValueError(f"scores, labels (N, R) and thresholds (R,): got {s.shape}, {y.shape}, {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError("thresholds: contain NaN/inf")
    if level not in ("strip", "run"):
        raise ValueError(f"level: expected 'strip' or 'run', got {level!r}")
    good = np.where(~y & np.isfinite(s), s, np.nan)
    with np.errstate(invalid="ignore"):
        spread = np.nanstd(good, axis=0) if (~np.isnan(good)).any() else np.full(t.shape, np.nan)
    pooled = float(np.nanstd(good)) if np.isfinite(good).sum() > 1 else 0.0
    fallback = pooled if pooled > 0 else max(float(np.abs(t).max()), 1.0)
    spread = np.where(np.isfinite(spread) & (spread > 0), spread, fallback)
    # a patch rejects iff d <= (s - t) / sd (NaN scores always reject: +inf)
    margin = np.where(np.isfinite(s), (s - t) / spread, np.inf)
    frame_margin, frame_label = margin.max(axis=1), y.any(axis=1)
    if level == "strip":
        unit_margin, unit_label = frame_margin, frame_label
    else:
        if products is None:
            raise ValueError("level 'run': needs products (the product id of each frame)")
        p = np.asarray(products)
        if p.shape != (s.shape[0],):
            raise ValueError(f"products: expected one id per frame ({s.shape[0]}), got shape {p.shape}")
        ids = list(dict.fromkeys(p.tolist()))
        counts = {i: int((p == i).sum()) for i in ids}
        if n is not None and any(c != n for c in counts.values()):
            raise ValueError(f"products: every product needs n={n} acquisitions, got {sorted(set(counts.values()))}")
        if min(counts.values()) < k:
            raise ValueError(f"products: a product has {min(counts.values())} acquisitions, fewer than k={k}")
        # rejected iff at least k acquisitions reject iff d <= the k-th largest frame margin
        unit_margin = np.array([np.sort(frame_margin[p == i])[::-1][k - 1] for i in ids])
        unit_label = np.array([bool(frame_label[p == i].any()) for i in ids])
    if not (unit_label.any() and (~unit_label).any()):
        raise ValueError(f"level {level!r}: needs both good and defective units to tune on "
                         f"({int(unit_label.sum())} defective of {unit_label.size})")
    finite = np.unique(unit_margin[np.isfinite(unit_margin)])
    if finite.size:
        cands = np.concatenate([[finite[0] - 1.0], (finite[:-1] + finite[1:]) / 2, [finite[-1] + 1.0], [0.0]])
    else:
        cands = np.array([0.0])
    rej = unit_margin[None, :] >= cands[:, None]
    acc = (rej == unit_label[None, :]).mean(axis=1)
    false_accepts = (~rej & unit_label[None, :]).sum(axis=1)
    best = np.lexsort((np.abs(cands), false_accepts, -acc))[0]
    delta = float(cands[best])
    new = (t + delta * spread).astype(np.float32).astype(np.float64)  # as the bundle stores them

    def figures(th):
        _, frame_rej = decide(s, th)
        if level == "strip":
            unit_rej = frame_rej
        else:
            unit_rej = np.array([int(frame_rej[p == i].sum()) >= k for i in ids])
        r = _rates(unit_label, unit_rej)
        r["false_accepts"] = int((~unit_rej & unit_label).sum())
        return r

    return new, {"level": level, "delta": delta, "k": k if level == "run" else None,
                 "units": int(unit_label.size), "defective": int(unit_label.sum()),
                 "spread": spread.tolist(), "before": figures(t), "after": figures(new)}


def evaluate_decisions(scores, labels, thresholds, region_names, *, products=None, k: int = 7,
                       groups: dict[str, list[int]] | None = None) -> dict:
    """Decisions at three levels (four with region groups).

    scores, labels (N, R): per frame (acquisition) and region; thresholds (R,); region_names (R,).
    - patch: accuracy / TPR / TNR per region and over all patches;
    - group (with `groups`, name -> region indices, e.g. the vials of a strip): a group is rejected
      when any of its regions rejects (the runtime's group rule); its label is 1 when any of its
      regions is defective; accuracy / TPR / TNR per group and over all;
    - strip: a frame is rejected when any region rejects; its label is 1 when any region is defective;
    - run (with `products` (N,) ids of the product each frame shows): k-of-n rule -- a product is
      correct when its label is confirmed in >= k of its acquisitions; accuracy / TPR / TNR over products.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if s.shape != y.shape or s.ndim != 2 or len(region_names) != s.shape[1]:
        raise ValueError(f"scores and labels (N, R) with R region_names: got {s.shape}, {y.shape}, {len(region_names)}")
    rej, prod_rej = decide(s, thresholds)
    out = {"patch": {"all": _rates(y.ravel(), rej.ravel()),
                     "regions": {n: _rates(y[:, j], rej[:, j]) for j, n in enumerate(region_names)}},
           "strip": _rates(y.any(axis=1), prod_rej)}
    if groups:
        per = {g: (y[:, idx].any(axis=1), rej[:, idx].any(axis=1)) for g, idx in groups.items()}
        out["group"] = {"all": _rates(np.concatenate([a for a, _ in per.values()]),
                                      np.concatenate([b for _, b in per.values()])),
                        "groups": {g: _rates(a, b) for g, (a, b) in per.items()}}
    if products is not None:
        res = k_of_n_correct(y.any(axis=1), prod_rej, products, k=k)
        lab = np.array([r[0] for r in res.values()])
        correct = np.array([r[3] for r in res.values()])
        n_acq = sorted({r[2] for r in res.values()})
        pos, neg = int(lab.sum()), int((~lab).sum())
        out["run"] = {"k": k, "acquisitions": n_acq, "products": len(res), "defective": pos,
                      "accuracy": float(correct.mean()),
                      "tpr": float(correct[lab].mean()) if pos else float("nan"),
                      "tnr": float(correct[~lab].mean()) if neg else float("nan")}
    return out


# p<product>_a<acquisition>, with an image suffix where an acquisition of K frames became K + 2
# images (_f00 ... the frames, _lo / _hi the rank images: edge_sdk.data.vial_strip.acquisition_images).
_ACQUISITION = re.compile(r"^p(\d+)_a(\d+)(?:_(f\d+|lo|hi))?$")


def product_ids(paths) -> np.ndarray | None:
    """Product id of each frame from file names ``p<product>_a<acquisition>[_<image>].<ext>`` (the
    vial-strip set's naming), or None when any name does not follow it."""
    ids = []
    for p in paths:
        m = _ACQUISITION.match(os.path.splitext(os.path.basename(p))[0])
        if m is None:
            return None
        ids.append(int(m.group(1)))
    return np.asarray(ids, dtype=np.int64)


def per_acquisition(scores, labels, paths) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows of the images of one acquisition (``p<product>_a<acquisition>_<image>``: its K frames
    and rank images) merged into one row: per region the highest score (the acquisition is rejected
    where any of its images is, as the runtime's verdicts on those images decide; NaN stays NaN,
    which rejects) and any defective label. Returns (scores (A, R), labels (A, R), one path a row
    named ``p<product>_a<acquisition>``) in order of first appearance."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    if s.ndim != 2 or y.shape != s.shape or len(paths) != len(s):
        raise ValueError(f"scores, labels (N, R) and N paths: got {s.shape}, {y.shape}, {len(paths)}")
    keys: dict[str, int] = {}
    rows = []
    for p in paths:
        m = _ACQUISITION.match(os.path.splitext(os.path.basename(p))[0])
        if m is None:
            raise ValueError(f"{p}: not named p<product>_a<acquisition>[_<image>]")
        rows.append(keys.setdefault(f"p{m.group(1)}_a{m.group(2)}", len(keys)))
    rows = np.asarray(rows)
    out_s = np.full((len(keys), s.shape[1]), -np.inf)
    out_y = np.zeros((len(keys), s.shape[1]), bool)
    np.maximum.at(out_s, rows, s)  # np.maximum propagates NaN
    np.logical_or.at(out_y, rows, y)
    return out_s, out_y, list(keys)


def evaluate_region_patches(scores, patches: RegionPatches, thresholds, *, k: int = 7, labels=None) -> dict:
    """`evaluate_decisions` for scores of all patches of a `RegionPatches` (in its order): frames are
    the strips, products come from the file names (`product_ids`) when they follow the
    acquisition naming. `labels` (patch labels) are read from the masks when not given."""
    r = len(patches.layout)
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (len(patches),):
        raise ValueError(f"scores: expected one per patch ({len(patches)}), got shape {s.shape}")
    y = patches.labels if labels is None else np.asarray(labels)
    paths = getattr(patches.dataset, "paths", None)
    products = product_ids(paths) if paths else None
    if products is not None:
        counts = np.unique(products, return_counts=True)[1]
        if counts.min() < k:
            products = None  # too few acquisitions per product for the k-of-n rule
    return evaluate_decisions(s.reshape(-1, r), y.reshape(-1, r), thresholds, patches.layout.names,
                              products=products, k=k, groups=patches.layout.groups() or None)
