"""Synthetic industrial images with exact defect masks, deterministic from a seed; no files needed.

Two parts, each the same product photographed again and again with small good variation (position,
brightness, texture, sensor noise):

- ``kind="tile"``: a glazed ceramic / stone surface (mottling, grain, pores), colour or grayscale.
  Defects: scratch, spot, crack, missing (chipped material), discoloration.
- ``kind="vial"``: a back-lit translucent container seen from the side, shaped like a Blow-Fill-Seal
  ampoule (rounded bottom, body, shoulder, neck, twist-off tab), with liquid, meniscus, dark refracting
  walls and specular highlights. Defects: scratch, particle, crack, deformation (dented wall),
  discoloration.

Mask of a defect = pixels that the defect covers for at least half (its coverage map) or changes by
more than 0.04 (10 grey levels, any channel) in the noise-free rendering: exactly the pixels the defect
visibly alters, computed from the same geometry that drew it.

    root = make_dataset("/tmp/syn", kind="vial", n_train=30, n_test=20, size=256, seed=0)
    edge-sdk synth vial --out /tmp/syn --preview /tmp/syn/vial.png
"""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

from edge_sdk.atomic import atomic_directory
from edge_sdk.data.render import blob_coverage, blurred_points, polyline_coverage, random_walk, smooth_noise
from edge_sdk.data.sample import Sample

KINDS = ("tile", "vial")
DEFECTS = {
    "tile": ("scratch", "spot", "crack", "missing", "discoloration"),
    "vial": ("scratch", "particle", "crack", "deformation", "discoloration"),
}
MASK_DIFF = 0.04  # noise-free change (in [0, 1]) above which a pixel belongs to the defect
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


# ------------------------------------------------------------------------------------------ helpers

def _blend(img: np.ndarray, alpha: np.ndarray, target: np.ndarray) -> np.ndarray:
    a = alpha[..., None]
    return img * (1.0 - a) + target * a


def _to_output(img: np.ndarray, gray: bool) -> np.ndarray:
    return (img @ _LUMA)[..., None] if gray else img


def _quantize(img: np.ndarray) -> np.ndarray:
    out = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    return out[..., 0] if out.shape[-1] == 1 else out


def _mask(good: np.ndarray, bad: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    changed = np.abs(bad - good).max(axis=-1) > MASK_DIFF
    return ((alpha >= 0.5) | changed).astype(np.uint8)


# ------------------------------------------------------------------------------------------ tile

_TILE_PALETTES = np.array([[0.70, 0.63, 0.54],   # beige glaze
                           [0.57, 0.59, 0.62],   # grey stone
                           [0.66, 0.47, 0.37]],  # terracotta
                          np.float32)


def _tile_style(seed: int) -> dict:
    r = np.random.default_rng([seed, 7001])
    return {"color": _TILE_PALETTES[r.integers(len(_TILE_PALETTES))] * r.uniform(0.95, 1.05, 3).astype(np.float32)}


def _tile_good(rng: np.random.Generator, size: int, style: dict) -> tuple[np.ndarray, dict]:
    s = size / 256.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    mottle = 0.035 * smooth_noise(rng, size, size, 6) + 0.02 * smooth_noise(rng, size, size, 40)
    grain = 0.07 * blurred_points(rng, size, size, size * size // 30, 0.7 * s)
    pores = blurred_points(rng, size, size, max(4, size * size // 700), 1.1 * s)
    pores = -0.35 * np.clip(pores, 0, None)
    g = rng.normal(0, 0.05, 2)
    light = (1.0 + g[0] * xx + g[1] * yy) * rng.uniform(0.96, 1.04)
    lum = (1.0 + mottle + grain + pores) * light
    tint = 1.0 + 0.012 * smooth_noise(rng, size, size, 4)[..., None] * np.array([1.0, -0.5, -1.0], np.float32)
    img = (style["color"] * lum[..., None] * tint).astype(np.float32)
    return img, {"size": size, "s": s}


def _tile_defect(rng: np.random.Generator, good: np.ndarray, scene: dict, defect: str):
    size, s = scene["size"], scene["s"]
    cx, cy = rng.uniform(0.2, 0.8, 2) * size
    if defect == "scratch":
        pts = random_walk(rng, (cx, cy), rng.uniform(0.25, 0.5) * size, 3 * s, rng.uniform(0, 2 * np.pi), 0.02,
                          persistence=0.9, bend=rng.normal(0, 0.008))
        alpha = polyline_coverage(pts, rng.uniform(0.7, 1.2) * s, size, size)
        bad = _blend(good, alpha, np.clip(good * 1.35 + 0.08, 0, 1))
    elif defect == "spot":
        alpha = blob_coverage(rng, cx, cy, rng.uniform(0.03, 0.06) * size, size, size,
                              aspect=rng.uniform(0.6, 1.0), roughness=0.3, soft=1.2)
        bad = _blend(good, alpha, good * rng.uniform(0.35, 0.55))
    elif defect == "crack":
        walks = [random_walk(rng, (cx, cy), rng.uniform(0.3, 0.5) * size, 2.5 * s, rng.uniform(0, 2 * np.pi), 0.5)]
        for _ in range(int(rng.integers(1, 3))):
            start = walks[0][rng.integers(len(walks[0]))]
            walks.append(random_walk(rng, tuple(start), rng.uniform(0.08, 0.18) * size, 2.5 * s,
                                     rng.uniform(0, 2 * np.pi), 0.5))
        hw = rng.uniform(0.6, 0.9) * s
        alpha = np.max([polyline_coverage(w, hw, size, size) for w in walks], axis=0)
        bad = _blend(good, alpha, good * 0.3)
    elif defect == "missing":
        alpha = blob_coverage(rng, cx, cy, rng.uniform(0.06, 0.1) * size, size, size,
                              aspect=rng.uniform(0.6, 1.0), roughness=0.45, soft=1.0)
        rough = 0.08 * smooth_noise(rng, size, size, 40)
        floor = good.mean(axis=-1, keepdims=True) * (0.55 + rough[..., None]) * np.array([1.0, 0.96, 0.9], np.float32)
        bad = _blend(good, alpha, floor)
        # bevel of the chip edge lit from the top left: bright on one side, shadow on the other
        gy, gx = np.gradient(alpha)
        bevel = np.clip(-(gx + gy) * 0.6, -0.25, 0.25)
        bad = np.clip(bad + bevel[..., None], 0, 1)
    elif defect == "discoloration":
        r = rng.uniform(0.08, 0.14) * size
        alpha = blob_coverage(rng, cx, cy, r, size, size, aspect=rng.uniform(0.5, 1.0), roughness=0.3,
                              soft=0.5 * r)
        beta = 0.75 * alpha
        bad = _blend(good, beta, good * np.array([0.92, 0.74, 0.5], np.float32))
    else:
        raise ValueError(f"unknown tile defect {defect!r}; known: {DEFECTS['tile']}")
    return bad.astype(np.float32), alpha


# ------------------------------------------------------------------------------------------ vial

def _vial_style(seed: int) -> dict:
    r = np.random.default_rng([seed, 7002])
    liquid = np.array([[0.93, 0.95, 0.97], [0.95, 0.88, 0.70]], np.float32)[r.integers(2)]
    return {"liquid": liquid, "level": r.uniform(0.46, 0.52)}


def _vial_profile(scene: dict, dents: tuple[np.ndarray, np.ndarray] | None = None):
    """Left and right wall x positions per row (rows outside the part have xl >= xr)."""
    S, k, x0, yo = scene["size"], scene["k"], scene["x0"], scene["yoff"]
    y = np.arange(S, dtype=np.float32) + 0.5
    yb, ys, yse, ynt, ytw, ytt = (f * S + yo for f in (0.93, 0.42, 0.31, 0.235, 0.205, 0.06))
    wb, wn, wtw, wt = 0.2 * S * k, 0.085 * S * k, 0.05 * S * k, 0.15 * S * k
    rb, rt = 0.05 * S, 0.03 * S
    hw = np.full(S, -1.0, np.float32)
    body = (y >= ys) & (y <= yb)
    hw[body] = wb
    bottom = (y > yb - rb) & (y <= yb)
    hw[bottom] = wb - rb + np.sqrt(np.maximum(rb * rb - (y[bottom] - (yb - rb)) ** 2, 0))
    sh = (y >= yse) & (y < ys)
    t = (y[sh] - yse) / (ys - yse)
    hw[sh] = wn + (wb - wn) * (0.5 - 0.5 * np.cos(np.pi * t))
    hw[(y >= ynt) & (y < yse)] = wn
    hw[(y >= ytw) & (y < ynt)] = wtw
    tab = (y >= ytt) & (y < ytw)
    hw[tab] = wt
    top = tab & (y < ytt + rt)
    hw[top] = wt - rt + np.sqrt(np.maximum(rt * rt - (ytt + rt - y[top]) ** 2, 0))
    xl, xr = x0 - hw, x0 + hw
    if dents is not None:
        xl, xr = xl + dents[0], xr - dents[1]
    geo = {"yb": yb, "ys": ys, "yse": yse, "ytw": ytw, "ytt": ytt, "wb": wb}
    return xl, xr, geo


def _vial_render(scene: dict, style: dict, dents=None) -> tuple[np.ndarray, np.ndarray, dict]:
    S = scene["size"]
    s = S / 256.0
    # Shading follows the intact profile; a dent only moves the silhouette edge (and its dark rim),
    # so the far wall and the highlights stay where they were.
    xl0, xr0, geo = _vial_profile(scene)
    xl, xr, _ = _vial_profile(scene, dents)
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) + 0.5
    XL, XR = xl[:, None], xr[:, None]
    edge = np.minimum(xx - XL, XR - xx)
    alpha = np.clip(edge + 0.5, 0, 1) * (XR > XL)
    c, h = (xl0 + xr0)[:, None] / 2, np.maximum((xr0 - xl0)[:, None] / 2, 1e-3)
    u = np.clip((xx - c) / h, -1.5, 1.5)
    au = np.abs(u)
    # back light with vignetting
    r2 = ((xx / S - 0.5 - scene["light_dx"]) ** 2 + (yy / S - 0.5) ** 2)
    bg = scene["bright"] * (0.86 - 0.25 * r2)[..., None] * np.array([0.97, 0.99, 1.0], np.float32)
    # walls refract the light away: dark rims, a darker inner-wall line
    trans = 0.88 - 0.62 * au ** 5 - 0.12 * np.exp(-((au - 0.87) / 0.035) ** 2)
    tab = yy < geo["ytw"]
    trans = np.where(tab, 0.62 + 0.05 * scene["tab_tex"] - 0.3 * au ** 4, trans)
    spec = 0.22 * np.exp(-((u + 0.55) / 0.07) ** 2) + 0.07 * np.exp(-((u - 0.62) / 0.05) ** 2)
    spec = spec * (1 - 0.5 * tab)
    # liquid with meniscus climbing the wall; a dark line where the surface meets the light
    level = scene["level"] - 0.014 * S * au ** 3
    inner = np.clip((0.9 - au) * h / 2 + 0.5, 0, 1)
    liquid = np.clip(yy - level + 0.5, 0, 1) * inner * (yy < geo["yb"] - 1.5 * s)
    lt = 1 - liquid[..., None] * (1 - style["liquid"]) - 0.1 * liquid[..., None]
    men = 1 - 0.4 * np.exp(-((yy - level) / (1.3 * s)) ** 2) * inner
    rim = 1 - 0.45 * np.exp(-np.maximum(edge, 0) / (1.5 * s))
    part = bg * (trans * men * rim)[..., None] * lt + spec[..., None]
    img = _blend(bg, alpha, np.clip(part, 0, 1)).astype(np.float32)
    geo.update(alpha=alpha, c=c, h=h, level=scene["level"])
    return img, alpha, geo


def _vial_scene(rng: np.random.Generator, size: int, style: dict) -> dict:
    S = size
    return {"size": S, "k": 1 + rng.normal(0, 0.01), "x0": 0.5 * S + rng.normal(0, 0.008 * S),
            "yoff": rng.normal(0, 0.006 * S), "bright": rng.uniform(0.96, 1.04),
            "light_dx": rng.normal(0, 0.02), "level": (style["level"] + rng.normal(0, 0.008)) * S,
            "tab_tex": smooth_noise(rng, S, S, 8)}


def _vial_good(rng, size, style):
    scene = _vial_scene(rng, size, style)
    img, _, geo = _vial_render(scene, style)
    scene["geo"] = geo
    return img, scene


def _in_body(rng, geo, size, margin=0.6, liquid=False):
    top = geo["level"] + 0.03 * size if liquid else geo["ys"] + 0.04 * size
    y = rng.uniform(top, geo["yb"] - 0.08 * size)
    row = int(np.clip(y, 0, size - 1))
    x = float(geo["c"][row, 0] + rng.uniform(-margin, margin) * geo["h"][row, 0])
    return x, y


def _vial_defect(rng, good, scene, defect, style):
    S = scene["size"]
    s = S / 256.0
    geo = scene["geo"]
    body = geo["alpha"] * (np.arange(S, dtype=np.float32)[:, None] + 0.5 > geo["ys"])
    if defect == "scratch":
        x, y = _in_body(rng, geo, S)
        ang = rng.choice([-1, 1]) * rng.uniform(0.3, 1.2)
        pts = random_walk(rng, (x, y), rng.uniform(0.08, 0.2) * S, 2 * s, ang, 0.02, persistence=0.9,
                          bend=rng.normal(0, 0.01))
        alpha = polyline_coverage(pts, rng.uniform(0.6, 0.9) * s, S, S) * body
        bad = np.clip(good + 0.28 * alpha[..., None], 0, 1)
    elif defect == "particle":
        x, y = _in_body(rng, geo, S, margin=0.55, liquid=True)
        alpha = blob_coverage(rng, x, y, rng.uniform(0.012, 0.025) * S, S, S, aspect=rng.uniform(0.4, 1.0),
                              roughness=0.5, soft=0.8)
        bad = _blend(good, alpha, good * 0.3)
    elif defect == "crack":
        x, y = _in_body(rng, geo, S)
        pts = random_walk(rng, (x, y), rng.uniform(0.1, 0.25) * S, 2 * s, rng.uniform(0, 2 * np.pi), 0.5)
        core = polyline_coverage(pts, rng.uniform(0.5, 0.8) * s, S, S) * body
        halo = polyline_coverage(pts, 2.0 * s, S, S) * body
        bad = np.clip(good + 0.12 * (halo - core)[..., None], 0, 1)
        bad = _blend(bad, core, good * 0.4)
        alpha = core
    elif defect == "deformation":
        yd = rng.uniform(geo["ys"] + 0.08 * S, geo["yb"] - 0.1 * S)
        y = np.arange(S, dtype=np.float32) + 0.5
        dent = rng.uniform(0.05, 0.09) * S * np.exp(-(((y - yd) / (rng.uniform(0.03, 0.05) * S)) ** 2))
        zero = np.zeros(S, np.float32)
        dents = (dent, zero) if rng.random() < 0.5 else (zero, dent)
        bad, a_bad, _ = _vial_render(scene, style, dents)
        alpha = np.abs(geo["alpha"] - a_bad)
    elif defect == "discoloration":
        x, y = _in_body(rng, geo, S, margin=0.4)
        r = rng.uniform(0.04, 0.07) * S
        alpha = blob_coverage(rng, x, y, r, S, S, aspect=rng.uniform(0.5, 1.0), roughness=0.3, soft=0.5 * r) * body
        bad = _blend(good, 0.8 * alpha, good * np.array([0.9, 0.72, 0.42], np.float32))
    else:
        raise ValueError(f"unknown vial defect {defect!r}; known: {DEFECTS['vial']}")
    return bad.astype(np.float32), alpha.astype(np.float32)


# ------------------------------------------------------------------------------------------ public

def render(kind: str, rng: np.random.Generator, size: int = 256, *, gray: bool = False, defect: str | None = None,
           style_seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """One image of ``kind`` (uint8 (S, S, 3), or (S, S) when ``gray``) and its defect mask ((S, S) uint8
    {0, 1}, None when ``defect`` is None). ``style_seed`` fixes the product (palette, liquid); ``rng``
    draws this image's good variation and its defect."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if defect is not None and defect not in DEFECTS[kind]:
        raise ValueError(f"unknown {kind} defect {defect!r}; known: {DEFECTS[kind]}")
    if kind == "tile":
        style = _tile_style(style_seed)
        good, scene = _tile_good(rng, size, style)
    else:
        style = _vial_style(style_seed)
        good, scene = _vial_good(rng, size, style)
    noise_sigma = (2.0 if kind == "tile" else 1.3) / 255.0
    mask = None
    img = good
    if defect is not None:
        g_out = _to_output(good, gray)
        for _ in range(20):  # redraw a defect that landed where it changes (almost) nothing
            bad, alpha = (_tile_defect(rng, good, scene, defect) if kind == "tile"
                          else _vial_defect(rng, good, scene, defect, style))
            mask = _mask(g_out, _to_output(bad, gray), alpha)
            if mask.sum() >= max(6, size * size // 8000):
                break
        else:  # pragma: no cover - geometry makes this practically impossible
            raise RuntimeError(f"could not place a visible {defect} defect")
        img = bad
    out = _to_output(img, gray)
    out = out + rng.normal(0, noise_sigma, out.shape).astype(np.float32)
    return _quantize(out), mask


def _test_plan(kind: str, n_test: int, anomaly_fraction: float, defects) -> list[str | None]:
    n_bad = int(round(n_test * anomaly_fraction))
    if n_test >= 2:
        n_bad = min(max(n_bad, 1), n_test - 1)
    return [None] * (n_test - n_bad) + [defects[i % len(defects)] for i in range(n_bad)]


def _check_args(kind, n_train, n_test, size, anomaly_fraction, defects):
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    for name, v, lo in (("n_train", n_train, 0), ("n_test", n_test, 0), ("size", size, 64)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    if size > 4096:
        raise ValueError(f"size must be <= 4096, got {size}")
    if not 0.0 <= anomaly_fraction <= 1.0:
        raise ValueError(f"anomaly_fraction must be in [0, 1], got {anomaly_fraction}")
    defects = tuple(defects) if defects is not None else DEFECTS[kind]
    bad = [d for d in defects if d not in DEFECTS[kind]]
    if bad or not defects:
        raise ValueError(f"defects {bad or '()'} not known for {kind}; known: {DEFECTS[kind]}")
    return defects


def make_samples(kind: str = "tile", n_train: int = 20, n_test: int = 20, size: int = 256, seed: int = 0,
                 gray: bool = False, *, anomaly_fraction: float = 0.6, defects=None, progress: bool = False):
    """(train, test) lists of `Sample` in memory. Test: ``round(n_test * anomaly_fraction)`` anomalous
    images cycling through ``defects`` (default: all of the kind), the rest good. Image i of a split
    depends only on (seed, split, i), not on the counts."""
    defects = _check_args(kind, n_train, n_test, size, anomaly_fraction, defects)
    plan = [("train", i, None) for i in range(n_train)]
    plan += [("test", i, d) for i, d in enumerate(_test_plan(kind, n_test, anomaly_fraction, defects))]
    it = plan
    if progress:
        from tqdm import tqdm

        it = tqdm(plan, desc=f"synthetic {kind}", unit="img")
    train, test = [], []
    for split, i, d in it:
        rng = np.random.default_rng([int(seed), 0 if split == "train" else 1, i])
        img, mask = render(kind, rng, size, gray=gray, defect=d, style_seed=int(seed))
        smp = Sample(image=img, mask=mask, label=int(d is not None), defect_type=d or "good", path=None)
        (train if split == "train" else test).append(smp)
    return train, test


def make_dataset(out_dir, kind: str = "tile", n_train: int = 20, n_test: int = 20, size: int = 256, seed: int = 0,
                 gray: bool = False, *, anomaly_fraction: float = 0.6, defects=None, overwrite: bool = False,
                 progress: bool = False) -> str:
    """Writes an MVTec-layout set ``<out_dir>/<kind>/{train/good, test/<type>, ground_truth/<type>}`` (PNG;
    masks 0/255 as ``<stem>_mask.png``) plus ``<kind>/synthetic.json`` (the parameters), and returns
    ``out_dir`` (the MVTec root: ``load_dataset(root, "mvtec", split, category=kind)``). The category is
    written to a temporary folder and renamed into place; an existing one is replaced only with
    ``overwrite=True``."""
    out_dir = os.fspath(out_dir)
    train, test = make_samples(kind, n_train, n_test, size, seed, gray, anomaly_fraction=anomaly_fraction,
                               defects=defects, progress=progress)
    final = os.path.join(out_dir, kind)
    if os.path.exists(final) and not overwrite:
        raise FileExistsError(f"{final} exists; pass overwrite=True to replace it")
    with atomic_directory(final, is_ours=_is_synthetic_set, what="a synthetic data set (synthetic.json)") as tmp:
        counters: dict[str, int] = {}
        for split, samples in (("train", train), ("test", test)):
            for smp in samples:
                key = f"{split}/{smp.defect_type}"
                i = counters.get(key, 0)
                counters[key] = i + 1
                folder = os.path.join(tmp, split, smp.defect_type)
                os.makedirs(folder, exist_ok=True)
                Image.fromarray(smp.image).save(os.path.join(folder, f"{i:03d}.png"))
                if smp.mask is not None:
                    gt = os.path.join(tmp, "ground_truth", smp.defect_type)
                    os.makedirs(gt, exist_ok=True)
                    Image.fromarray(smp.mask * np.uint8(255)).save(os.path.join(gt, f"{i:03d}_mask.png"))
        meta = {"generator": "edge_sdk.data.synthetic", "kind": kind, "n_train": n_train, "n_test": n_test,
                "size": size, "seed": seed, "gray": bool(gray), "anomaly_fraction": anomaly_fraction,
                "counts": counters}
        with open(os.path.join(tmp, "synthetic.json"), "w") as f:
            json.dump(meta, f, indent=2)
    return out_dir


def _is_synthetic_set(path) -> bool:
    try:
        with open(os.path.join(path, "synthetic.json")) as f:
            return json.load(f).get("generator") == "edge_sdk.data.synthetic"
    except (OSError, ValueError, AttributeError):
        return False
