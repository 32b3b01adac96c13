"""Heatmap pictures for people to look at: image | heatmap over the image [| ground truth], each
panel labelled, a colour bar with its scale, and a caption with the score, the threshold and the
verdict in the runtime's words (accept / reject / review). One renderer for `edge-sdk eval` and
`edge-sdk report` (a model's raw map through ``kernels.calibrated_normalize``, 0.5 = the decision
threshold, the mask outlined in red) and `edge-sdk predict` (a bundle's map in its display
normalization); jet palette.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from edge_sdk import kernels
from edge_sdk.atomic import atomic_path

MIN_PANEL = 224  # smaller images are enlarged (nearest neighbour) so that labels fit and stay legible
MAX_PANEL = 1024  # larger ones are shrunk: a sheet stays a picture, not a poster
FONT_PX = 15
# The colour bar's scale for maps normalized by the calibration: 0.5 is the decision threshold.
CALIBRATED_TICKS = ((0.0, "0"), (0.5, "threshold"), (1.0, "1"))


def jet(values: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8, the classic jet palette (blue - cyan - yellow - red)."""
    v = np.clip(values, 0.0, 1.0)
    r = np.clip(1.5 - np.abs(4.0 * v - 3.0), 0.0, 1.0)
    g = np.clip(1.5 - np.abs(4.0 * v - 2.0), 0.0, 1.0)
    b = np.clip(1.5 - np.abs(4.0 * v - 1.0), 0.0, 1.0)
    return (np.stack([r, g, b], axis=-1) * 255.0 + 0.5).astype(np.uint8)


def font(size: int = FONT_PX):
    """A scalable font (the one Pillow ships) at ``size`` pixels; Pillow's tiny bitmap font only
    where FreeType is missing."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def verdict_of(score: float, threshold: float | None) -> str:
    """A model's verdict in the runtime's words: review when the score is not a number (or there
    is no threshold), reject at or above the threshold, accept below (the rule of
    `edge_sdk.metrics`; a bundle's review band is the runtime's to apply)."""
    if threshold is None or not math.isfinite(score):
        return "review"
    return "reject" if score >= threshold else "accept"


def caption_text(score: float, threshold: float | None, verdict: str, extra: str = "") -> str:
    """'reject  score 1.23  threshold 0.98' (+ extra): the caption of every sheet."""
    parts = [verdict.upper(), f"score {score:.4g}"]
    if threshold is not None:
        parts.append(f"threshold {threshold:.4g}")
    if extra:
        parts.append(extra)
    return "   ".join(parts)


def _fit(panel: np.ndarray, side: int) -> np.ndarray:
    h, w = panel.shape[:2]
    if max(h, w) == side:
        return panel
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.NEAREST if scale > 1 else Image.BILINEAR
    return np.asarray(Image.fromarray(panel).resize(size, resample))


def _colour_bar(height: int, ticks, fnt) -> Image.Image:
    """A vertical jet bar, 1 at the top, with tick labels to its right."""
    bar_w, pad = 16, 6
    label_w = max(int(fnt.getlength(text)) for _, text in ticks) if ticks else 0
    img = Image.new("RGB", (pad + bar_w + 4 + label_w + pad, height), (255, 255, 255))
    column = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None].repeat(bar_w, 1)
    img.paste(Image.fromarray(jet(column)), (pad, 0))
    draw = ImageDraw.Draw(img)
    draw.rectangle((pad, 0, pad + bar_w - 1, height - 1), outline=(0, 0, 0))
    for value, text in ticks:
        y = round((1.0 - value) * (height - 1))
        draw.line((pad + bar_w, y, pad + bar_w + 3, y), fill=(0, 0, 0))
        ty = min(max(0, y - FONT_PX // 2), height - FONT_PX - 1)
        draw.text((pad + bar_w + 5, ty), text, fill=(0, 0, 0), font=fnt)
    return img


def panels(image: np.ndarray, heat01: np.ndarray, caption: str = "", *, truth: bool = False,
           mask: np.ndarray | None = None, ticks=CALIBRATED_TICKS, heat_label: str = "heatmap") -> Image.Image:
    """Labelled panels 'image' | ``heat_label`` (values in [0, 1] blended over the image) [|
    'ground truth', the image with ``mask`` outlined in red, when ``truth``], a colour bar with
    ``ticks`` ((value, label) pairs), and ``caption`` above them."""
    rgb = image if image.ndim == 3 and image.shape[2] == 3 else np.repeat(image.reshape(*image.shape[:2], 1), 3, 2)
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    heat01 = np.asarray(heat01, dtype=np.float32)
    if heat01.shape != rgb.shape[:2]:
        raise ValueError(f"heatmap shape {heat01.shape} differs from the image's {rgb.shape[:2]}")
    overlay = (0.5 * rgb.astype(np.float32) + 0.5 * jet(heat01).astype(np.float32)).astype(np.uint8)
    shown = [("image", rgb), (heat_label, overlay)]
    if truth:
        outlined = rgb.copy()
        label = "ground truth (no defect)"
        if mask is not None and mask.any():
            m = mask.astype(bool)
            outlined[m & ~ndimage.binary_erosion(m)] = (255, 30, 30)
            label = "ground truth (red)"
        shown.append((label, outlined))
    side = min(MAX_PANEL, max(MIN_PANEL, *rgb.shape[:2]))
    shown = [(label, _fit(p, side)) for label, p in shown]
    h, w = shown[0][1].shape[:2]
    fnt, gap, line = font(), 6, FONT_PX + 6
    top = 2 * line + 4  # caption line, panel label line
    bar = _colour_bar(h, ticks, fnt)
    sheet = Image.new("RGB", (len(shown) * (w + gap) + bar.width, top + h + gap), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 3), caption, fill=(0, 0, 0), font=fnt)
    for k, (label, panel) in enumerate(shown):
        x = k * (w + gap)
        draw.text((x + 2, line + 3), label, fill=(60, 60, 60), font=fnt)
        sheet.paste(Image.fromarray(panel), (x, top))
    sheet.paste(bar, (len(shown) * (w + gap), top))
    return sheet


def heatmap_panel(image: np.ndarray, raw_map: np.ndarray, calibration: dict, mask: np.ndarray | None = None,
                  title: str = "") -> Image.Image:
    """A model's raw map, calibrated: image | heatmap | ground truth, 0.5 of the bar = threshold."""
    norm = kernels.calibrated_normalize(np.ascontiguousarray(raw_map, dtype=np.float32),
                                        calibration["threshold"], calibration["min"], calibration["max"])
    return panels(image, norm, title, truth=True, mask=mask)


def save_png(img: Image.Image, path: str) -> str:
    """Atomic PNG write (temporary file + rename)."""
    with atomic_path(path, ".png") as tmp:
        img.save(tmp, format="PNG")
    return path
