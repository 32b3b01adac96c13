"""Synthetic Blow-Fill-Seal vial strips: a strip of 5 plastic ampoules seen against a back light,
each cut into 4 regions (cap, neck, body, bottom) -- the layout of the pharmaceutical lines the
reconstruction models were published for (20 regions a strip, 3 frames an acquisition, 60
patches a machine cycle).

Rendering (grayscale, back-lit): bright background; each ampoule is a silhouette with a twist-off
tab, a thin stem, a neck widening into the shoulder, a cylindrical body and a rounded bottom; the
plastic transmits ~75 % of the light with dark refracting edges and a bright lens stripe; the
body holds liquid with a curved dark meniscus; thin web plastic joins neighbouring bodies. Good
products vary in pose (+-2 px), brightness, liquid level, width, texture and sensor noise.

Defect kinds (one per defective product, in one vial and region, pixel mask in ground_truth/):
- particle: a small dark particle or fibre floating in the liquid (body or bottom region); it
  moves between acquisitions of the same product.
- black_spot: a dark, irregular inclusion in the plastic (cap, neck, body or bottom).
- scratch: a thin, slightly curved line on the surface (neck or body).
- deformed_bottom: a dented, flattened or skewed bottom (bottom region); the mask covers the
  difference from the good silhouette.

Test products are acquired `acquisitions` times (pose, light, noise and particle position change)
so decisions can be evaluated per acquisition and per product with the k-of-n rule. Layout on disk
(MVTec AD), inside `out_dir/vial_strip/`:

    train/good/s0000.png ...                  good strips
    test/<kind>/p0003_a07.png                 product 3, acquisition 7 (<kind> = good or a defect)
    test/<kind>/p0003_a07_lo.png              with frames=K: its lowest image (also _f00 ... _hi)
    ground_truth/<kind>/p0003_a07_mask.png    255 = defect
    regions.json                              region layout (edge_sdk.regions format)
    strips.json                               per test image: product, acquisition, kind, vial, region
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from edge_sdk.atomic import atomic_directory
from edge_sdk.synthesis.perlin import perlin_noise

__all__ = ["CATEGORY", "PARTS", "DEFECT_KINDS", "VIALS", "StripSpec", "region_layout", "render_strip",
           "render_acquisition", "acquisition_images", "make_vial_strip_dataset"]

CATEGORY = "vial_strip"
VIALS = 5
PARTS = ("cap", "neck", "body", "bottom")
DEFECT_KINDS = ("particle", "black_spot", "scratch", "deformed_bottom")
# Regions each defect kind may appear in (plausible places on this product).
_KIND_PARTS = {"particle": ("body", "bottom"), "black_spot": PARTS, "scratch": ("neck", "body"),
               "deformed_bottom": ("bottom",)}


def region_layout(region_size: int = 128) -> dict:
    """Region layout of a strip frame (regions.json content): 5 vials x 4 square regions, each
    vial's regions one group (the runtime reports a vial's score as the largest of its regions')."""
    s = int(region_size)
    regions = [dict(name=f"v{v}_{p}", x=v * s, y=r * s, width=s, height=s, vial=v, part=p, group=f"v{v}")
               for v in range(VIALS) for r, p in enumerate(PARTS)]
    return {"schema_version": 1, "frame": {"width": VIALS * s, "height": len(PARTS) * s}, "regions": regions}


@dataclass
class _Vial:
    dx: float  # horizontal offset of the axis from the column centre, px
    dy: float  # vertical offset, px
    width: float  # body half width scale (1 = nominal)
    level: float  # liquid level, in region units from the top of the vial
    bottom: dict | None = None  # deformation of the bottom: side (-1/1), kind, amount


@dataclass
class StripSpec:
    """One product: its vials, lighting and defect (positions in vial-local pixel coordinates)."""
    size: int
    brightness: float
    vials: list
    texture_seed: int
    defect: dict | None = None  # kind, vial, part, and kind-specific geometry
    extra: dict = field(default_factory=dict)


def _smoothstep(a, b, x):
    t = np.clip((x - a) / (b - a), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _half_width(u: np.ndarray, vial: _Vial, side: int) -> np.ndarray:
    """Half width of the silhouette (in region units) at height u (region units from the vial top)
    on one side (-1 left, +1 right)."""
    body = 0.40 * vial.width
    tab = 0.30 * _smoothstep(0.06, 0.12, u) * (1 - _smoothstep(0.52, 0.62, u))
    stem = 0.08 * _smoothstep(0.5, 0.6, u) * (1 - _smoothstep(1.25, 1.3, u))
    shoulder = (0.09 + (body - 0.09) * _smoothstep(1.25, 1.9, u)) * (u >= 1.25)
    end = 3.92
    b = vial.bottom
    if b is not None and b["kind"] == "short" and side == b["side"]:
        end = 3.92 - b["amount"]
    start = 3.5
    t = np.clip((u - start) / (end - start), 0.0, 1.0)
    rounding = np.where(u < start, 1.0, np.sqrt(np.clip(1 - t * t, 0.0, 1.0)))
    hw = np.maximum(np.maximum(tab, stem), shoulder * rounding)
    hw = np.where(u > end, 0.0, hw)
    if b is not None and b["kind"] == "dent" and side == b["side"]:
        hw = hw - b["amount"] * np.exp(-0.5 * ((u - b["at"]) / b["spread"]) ** 2) * (u > 3.0)
    if b is not None and b["kind"] == "skew":
        hw = hw + side * b["amount"] * _smoothstep(3.45, 3.9, u) * (u <= end)
    return np.maximum(hw, 0.0)


def _silhouette(vial: _Vial, s: int, deformed: bool = True):
    """Plastic footprint (4s, s) bool and the distance of each pixel to the nearest side edge."""
    v = vial if deformed else _Vial(vial.dx, vial.dy, vial.width, vial.level, None)
    y = (np.arange(4 * s) + 0.5 - v.dy) / s
    x = np.arange(s) + 0.5 - (s / 2 + v.dx)
    left = _half_width(y, v, -1)[:, None] * s
    right = _half_width(y, v, 1)[:, None] * s
    hw = np.where(x[None, :] < 0, left, right)
    dist = hw - np.abs(x)[None, :]
    return dist > 0, dist, hw


def _draw_disc(canvas: np.ndarray, cy: float, cx: float, radius: float, value: float, rng=None) -> np.ndarray:
    """Soft irregular blob added to canvas; returns its footprint (bool)."""
    yy, xx = np.mgrid[0:canvas.shape[0], 0:canvas.shape[1]]
    ang = np.arctan2(yy - cy, xx - cx)
    r = radius
    if rng is not None:  # irregular outline: a few random harmonics on the radius
        for k in (2, 3, 5):
            r = r * (1 + 0.15 * rng.uniform(-1, 1) * np.cos(k * ang + rng.uniform(0, 2 * math.pi)))
    d = np.hypot(yy - cy, xx - cx) - r
    alpha = np.clip(0.5 - d, 0.0, 1.0)
    canvas += value * alpha
    return alpha > 0.25


def _draw_polyline(canvas: np.ndarray, pts: np.ndarray, width: float, value: float) -> np.ndarray:
    yy, xx = np.mgrid[0:canvas.shape[0], 0:canvas.shape[1]]
    d = np.full(canvas.shape, np.inf)
    for (y0, x0), (y1, x1) in zip(pts[:-1], pts[1:]):
        vy, vx = y1 - y0, x1 - x0
        t = np.clip(((yy - y0) * vy + (xx - x0) * vx) / max(vy * vy + vx * vx, 1e-9), 0, 1)
        d = np.minimum(d, np.hypot(yy - (y0 + t * vy), xx - (x0 + t * vx)))
    alpha = np.clip(width / 2 + 0.5 - d, 0.0, 1.0)
    canvas += value * alpha
    return alpha > 0.25


def _new_product(rng: np.random.Generator, s: int, kind: str | None) -> StripSpec:
    vials = [_Vial(dx=float(rng.uniform(-2, 2)), dy=float(rng.uniform(-2, 2)), width=float(rng.uniform(0.97, 1.03)),
                   level=float(rng.uniform(2.12, 2.22))) for _ in range(VIALS)]
    spec = StripSpec(size=s, brightness=float(rng.uniform(0.94, 1.06)), vials=vials,
                     texture_seed=int(rng.integers(2**31)))
    if kind is None:
        return spec
    v = int(rng.integers(VIALS))
    part = str(rng.choice(_KIND_PARTS[kind]))
    d = dict(kind=kind, vial=v, part=part)
    r0 = PARTS.index(part) * s  # top of the region, vial-local
    if kind == "particle":
        fibre = bool(rng.random() < 0.3)
        d.update(fibre=fibre, radius=float(rng.uniform(1.5, 3.0)), length=float(rng.uniform(8, 16)),
                 angle=float(rng.uniform(0, math.pi)), contrast=float(rng.uniform(0.25, 0.5)),
                 y=float(rng.uniform(0.2, 0.8) * s + r0), x=float(rng.uniform(-0.2, 0.2) * s))
        if part == "body":  # below the meniscus
            d["y"] = float(max(d["y"], vials[v].level * s + 12))
    elif kind == "black_spot":
        # on the plastic: pick a height in the region and a horizontal offset inside the silhouette
        u = rng.uniform(0.25, 0.75) + PARTS.index(part)
        if part == "cap":
            u = rng.uniform(0.2, 0.45)
        hw = float(_half_width(np.array([u]), vials[v], 1)[0])
        d.update(radius=float(rng.uniform(2.5, 6.0)), contrast=float(rng.uniform(0.45, 0.75)),
                 y=float(u * s), x=float(rng.uniform(-0.6, 0.6) * hw * s), seed=int(rng.integers(2**31)))
    elif kind == "scratch":
        u = rng.uniform(0.3, 0.7) + PARTS.index(part)
        hw = float(_half_width(np.array([u]), vials[v], 1)[0])
        length = float(rng.uniform(0.25, 0.5) * s)
        ang = float(rng.uniform(-math.pi / 3, math.pi / 3) + (math.pi / 2 if part == "neck" else 0))
        bend = float(rng.uniform(-0.15, 0.15))
        cx = float(rng.uniform(-0.3, 0.3) * hw * s)
        d.update(y=float(u * s), x=cx, length=length, angle=ang, bend=bend, width=float(rng.uniform(1.0, 2.0)),
                 contrast=float(rng.uniform(0.12, 0.25)))
    elif kind == "deformed_bottom":
        b = dict(kind=str(rng.choice(["dent", "short", "skew"])), side=int(rng.choice([-1, 1])))
        if b["kind"] == "dent":
            b.update(amount=float(rng.uniform(0.06, 0.12)), at=float(rng.uniform(3.55, 3.8)), spread=float(rng.uniform(0.05, 0.09)))
        elif b["kind"] == "short":
            b.update(amount=float(rng.uniform(0.08, 0.16)))
        else:
            b.update(amount=float(rng.uniform(0.08, 0.14)))
        vials[v].bottom = b
        d.update(shape=b["kind"])
    spec.defect = d
    return spec


def _acquire(spec: StripSpec, rng: np.random.Generator, jitter: bool) -> StripSpec:
    """The same product seen again: small pose/light changes; a particle drifts."""
    if not jitter:
        return spec
    vials = [_Vial(v.dx + float(rng.uniform(-1, 1)), v.dy + float(rng.uniform(-1, 1)), v.width,
                   v.level + float(rng.uniform(-0.01, 0.01)), v.bottom) for v in spec.vials]
    defect = dict(spec.defect) if spec.defect else None
    if defect and defect["kind"] == "particle":
        s = spec.size
        r0 = PARTS.index(defect["part"]) * s
        defect["y"] = float(np.clip(defect["y"] + rng.uniform(-6, 6), r0 + 0.15 * s, r0 + 0.85 * s))
        defect["x"] = float(np.clip(defect["x"] + rng.uniform(-6, 6), -0.25 * s, 0.25 * s))
        defect["angle"] = float(defect["angle"] + rng.uniform(-0.5, 0.5))
    return StripSpec(spec.size, spec.brightness * float(rng.uniform(0.98, 1.02)), vials, spec.texture_seed, defect)


def render_strip(spec: StripSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Render one frame: (H, W) uint8 image and (H, W) uint8 mask in {0, 1}."""
    s = spec.size
    h, w = 4 * s, VIALS * s
    tex = perlin_noise((h, w), spec.texture_seed, scale_range=(2, 4), octaves=3, rotate=False)
    background = 212.0 * spec.brightness * (1.0 - 0.05 * np.linspace(-1, 1, h))[:, None] * np.ones((1, w))
    trans = np.ones((h, w))
    mask = np.zeros((h, w), bool)
    web_rows = slice(int(1.95 * s), int(3.55 * s))
    trans[web_rows, :] = 0.93  # thin flash plastic joining neighbouring bodies
    for i, vial in enumerate(spec.vials):
        cols = slice(i * s, (i + 1) * s)
        inside, dist, hw = _silhouette(vial, s)
        x = np.arange(s) + 0.5 - (s / 2 + vial.dx)
        t = 0.76 - 0.40 * np.exp(-np.maximum(dist, 0) / 2.5)  # refracting edges are dark
        t += 0.08 * np.exp(-(((x[None, :] + 0.3 * hw) / np.maximum(0.07 * hw, 1.0)) ** 2))  # lens stripe
        y = np.arange(4 * s)[:, None] + 0.5 - vial.dy
        level = vial.level * s - 5.0 * (np.abs(x)[None, :] / np.maximum(hw, 1.0)) ** 2  # meniscus curves up
        liquid = y > level
        t = np.where(liquid, t * 0.93, t)
        t -= 0.22 * np.exp(-0.5 * ((y - level) / 1.2) ** 2) * (hw > 0.3 * s)
        local = trans[:, cols]
        trans[:, cols] = np.where(inside, t, np.where((dist > -1.5) & (hw > 1.0), local * 0.85, local))
        d = spec.defect
        if d is None or d["vial"] != i:
            continue
        canvas = np.zeros((4 * s, s))
        cy, cx = d.get("y", 0) + vial.dy, d.get("x", 0) + s / 2 + vial.dx
        if d["kind"] == "particle":
            if d["fibre"]:
                a = d["angle"]
                pts = np.array([[cy - math.sin(a) * d["length"] / 2, cx - math.cos(a) * d["length"] / 2],
                                [cy + 2 * math.cos(a), cx - 2 * math.sin(a)],
                                [cy + math.sin(a) * d["length"] / 2, cx + math.cos(a) * d["length"] / 2]])
                fp = _draw_polyline(canvas, pts, 1.3, -d["contrast"])
            else:
                fp = _draw_disc(canvas, cy, cx, d["radius"], -d["contrast"])
        elif d["kind"] == "black_spot":
            fp = _draw_disc(canvas, cy, cx, d["radius"], -d["contrast"], np.random.default_rng(d["seed"]))
        elif d["kind"] == "scratch":
            a, half = d["angle"], d["length"] / 2
            ts = np.linspace(-1, 1, 7)
            pts = np.stack([cy + ts * half * math.sin(a) + d["bend"] * half * (1 - ts**2) * math.cos(a),
                            cx + ts * half * math.cos(a) - d["bend"] * half * (1 - ts**2) * math.sin(a)], 1)
            fp = _draw_polyline(canvas, pts, d["width"], -d["contrast"])
            _draw_polyline(canvas, pts + [0.0, d["width"]], 1.0, 0.5 * d["contrast"])  # bright rim
            fp &= inside
            canvas *= inside
        else:  # deformed bottom: footprint = where the silhouette changed
            good, _, _ = _silhouette(vial, s, deformed=False)
            fp = good ^ inside
        trans[:, cols] = trans[:, cols] + canvas
        mask[:, cols] |= ndimage.binary_dilation(fp, iterations=1)
    img = background * np.clip(trans, 0.02, 1.2) * (1.0 + 0.03 * tex) + rng.normal(0, 2.0, (h, w))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), mask.astype(np.uint8)


MAX_FRAMES = 1024


def _bubble(img: np.ndarray, cy: float, cx: float, radius: float) -> None:
    """A gas bubble or drop seen against the back light: a dark refracting rim around a lighter
    centre (drawn in place on a float image)."""
    yy, xx = np.ogrid[0:img.shape[0], 0:img.shape[1]]
    d = np.hypot(yy - cy, xx - cx)
    rim = np.exp(-0.5 * ((d - radius) / 0.8) ** 2)
    img *= 1.0 - 0.55 * rim
    img += 12.0 * np.clip(1.0 - d / max(radius - 1.0, 0.5), 0.0, 1.0)


def render_acquisition(spec: StripSpec, rng: np.random.Generator, frames: int = 16,
                       bubbles: tuple[int, int] = (1, 4)) -> tuple[np.ndarray, np.ndarray]:
    """The K frames of one acquisition while the strip is handled: (K, H, W) uint8 and the
    (K, H, W) uint8 masks of the defect in each frame. Between frames the pose and light stay,
    the sensor noise changes, gas bubbles and drops (a few a vial, in the liquid) rise and drift,
    and a particle defect floats; every other defect is fixed to the part. So the per-pixel
    lowest value over the frames shows what moved and what is fixed; the highest only what is
    fixed (`edge_sdk.kernels.frame_extremes`)."""
    if not 1 <= int(frames) <= MAX_FRAMES:
        raise ValueError(f"frames: expected 1 to {MAX_FRAMES}, got {frames}")
    s = spec.size
    moving = []
    for i, vial in enumerate(spec.vials):
        for _ in range(int(rng.integers(bubbles[0], bubbles[1] + 1))):
            moving.append(dict(x=i * s + s / 2 + vial.dx + float(rng.uniform(-0.25, 0.25) * s),
                               y=float(rng.uniform(vial.level * s + 0.15 * s, 3.4 * s)),
                               r=float(rng.uniform(2.0, 4.5)), vy=-float(rng.uniform(2.0, 5.0)),
                               vx=float(rng.uniform(-1.0, 1.0)), top=vial.level * s + 6.0))
    out = np.empty((int(frames), 4 * s, VIALS * s), np.uint8)
    masks = np.zeros_like(out)
    frame_spec = spec
    for f in range(int(frames)):
        if f and spec.defect and spec.defect["kind"] == "particle":  # it floats; the rest stays put
            d = dict(frame_spec.defect)
            r0 = PARTS.index(d["part"]) * s
            d["y"] = float(np.clip(d["y"] + rng.uniform(-2, 2), r0 + 0.15 * s, r0 + 0.85 * s))
            d["x"] = float(np.clip(d["x"] + rng.uniform(-2, 2), -0.25 * s, 0.25 * s))
            frame_spec = StripSpec(spec.size, spec.brightness, spec.vials, spec.texture_seed, d)
        img, m = render_strip(frame_spec, rng)
        work = img.astype(np.float64)
        for b in moving:
            y = b["y"] + f * b["vy"]
            if y > b["top"]:  # a bubble that reached the meniscus is gone
                _bubble(work, y, b["x"] + f * b["vx"], b["r"])
        out[f] = np.clip(np.rint(work), 0, 255).astype(np.uint8)
        masks[f] = m
    return out, masks


# Names of the images an acquisition of K frames becomes (the runtime's input.acquisition policy):
# the frames in order, then the per-pixel lowest and highest (edge_sdk.kernels.frame_extremes).
LOWEST, HIGHEST = "lo", "hi"


def acquisition_images(spec: StripSpec, rng: np.random.Generator, frames: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The K + 2 images the runtime judges for one acquisition, as (name, image, mask): the frames
    (f00, f01, ...) with their own masks, the lowest image with the union of the masks (a defect
    anywhere in any frame darkens it) and the highest with their intersection (only where the
    defect stayed in every frame can it darken the highest value)."""
    from edge_sdk.kernels import frame_extremes

    imgs, masks = render_acquisition(spec, rng, frames=frames)
    lo, hi = frame_extremes(imgs[None])  # the runtime's own kernel: training sees what it will judge
    out = [(f"f{i:02d}", imgs[i], masks[i]) for i in range(len(imgs))]
    return out + [(LOWEST, lo[0], masks.max(axis=0)), (HIGHEST, hi[0], masks.min(axis=0))]


def _write_png(path: str, array: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def make_vial_strip_dataset(out_dir: str, *, count: int = 60, products: int = 20, acquisitions: int = 10,
                            region_size: int = 128, seed: int = 0, defect_fraction: float = 0.5, frames: int = 0,
                            overwrite: bool = False, progress: bool = True) -> str:
    """Write the synthetic vial-strip set under `out_dir/vial_strip` and return that folder.

    count: good training strips; products: test products (a `defect_fraction` of them defective,
    kinds cycling through DEFECT_KINDS), each acquired `acquisitions` times. frames: 0 writes one
    frame an acquisition; K >= 2 renders each training strip and each test acquisition as K
    handled frames (moving bubbles and drops, `render_acquisition`) and writes the K + 2 images the
    runtime judges for a bundle exported with `--acquisition-frames K`: ``<stem>_f00.png`` ... and
    ``<stem>_lo.png`` / ``<stem>_hi.png`` (`acquisition_images`), so training sees the rank
    images the runtime makes. Deterministic in `seed`. The set is written to a temporary folder and
    renamed into place when complete."""
    for name, val, lo in (("count", count, 1), ("products", products, 1), ("acquisitions", acquisitions, 1),
                          ("region_size", region_size, 16)):
        if int(val) < lo:
            raise ValueError(f"{name}: expected >= {lo}, got {val}")
    if not 0.0 <= defect_fraction <= 1.0:
        raise ValueError(f"defect_fraction: expected a value in [0, 1], got {defect_fraction}")
    if int(frames) != 0 and not 2 <= int(frames) <= MAX_FRAMES:
        raise ValueError(f"frames: expected 0 (one frame an acquisition) or 2 to {MAX_FRAMES}, got {frames}")
    final = os.path.join(out_dir, CATEGORY)
    if os.path.exists(final) and not overwrite:
        raise FileExistsError(f"{final}: already exists (pass overwrite=True / --overwrite to replace it)")
    root = np.random.SeedSequence(seed)
    train_ss, test_ss = root.spawn(2)
    n_bad = int(round(products * defect_fraction))
    kinds = [None] * (products - n_bad) + [DEFECT_KINDS[i % len(DEFECT_KINDS)] for i in range(n_bad)]
    total = count + products * acquisitions

    def images(spec, rng):
        if frames:
            return acquisition_images(spec, rng, int(frames))
        return [(None, *render_strip(spec, rng))]

    def named(stem, image):
        return stem if image is None else f"{stem}_{image}"

    with atomic_directory(final, is_ours=_is_vial_strip_set, what="a vial-strip data set (strips.json)") as tmp:
        from tqdm import tqdm
        bar = tqdm(total=total, desc="vial strips", disable=not progress)
        for i, ss in enumerate(train_ss.spawn(count)):
            rng = np.random.default_rng(ss)
            for image, img, _ in images(_new_product(rng, region_size, None), rng):
                _write_png(os.path.join(tmp, "train", "good", named(f"s{i:04d}", image) + ".png"), img)
            bar.update()
        entries = []
        for p, (ss, kind) in enumerate(zip(test_ss.spawn(products), kinds)):
            rng = np.random.default_rng(ss)
            spec = _new_product(rng, region_size, kind)
            folder = kind or "good"
            d = spec.defect or {}
            for a in range(acquisitions):
                for image, img, mask in images(_acquire(spec, rng, jitter=a > 0), rng):
                    stem = named(f"p{p:04d}_a{a:02d}", image)
                    _write_png(os.path.join(tmp, "test", folder, stem + ".png"), img)
                    if kind is not None:
                        _write_png(os.path.join(tmp, "ground_truth", folder, stem + "_mask.png"), mask * 255)
                    entry = dict(path=f"test/{folder}/{stem}.png", product=p, acquisition=a, defect_type=folder,
                                 vial=d.get("vial"), region=(f"v{d['vial']}_{d['part']}" if d else None),
                                 defect_pixels=int(mask.sum()))
                    entries.append(entry if image is None else entry | {"image": image})
                bar.update()
        bar.close()
        with open(os.path.join(tmp, "regions.json"), "w") as f:
            json.dump(region_layout(region_size), f, indent=1)
        with open(os.path.join(tmp, "strips.json"), "w") as f:
            json.dump({"schema_version": 1, "seed": seed, "acquisitions": acquisitions, "frames": int(frames),
                       "images": entries}, f, indent=1)
    return final


def _is_vial_strip_set(path) -> bool:
    try:
        with open(os.path.join(path, "strips.json")) as f:
            return type(json.load(f).get("schema_version")) is int
    except (OSError, ValueError, AttributeError):
        return False
