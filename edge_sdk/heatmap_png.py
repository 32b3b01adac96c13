"""Heatmap PNGs for people to look at: image | heatmap over the image [| ground truth], with a
caption line. One renderer for `edge-sdk eval` (a model's raw map through
``kernels.calibrated_normalize``, 0.5 = the decision threshold, and the mask outlined in red) and
`edge-sdk predict` (a bundle's map in its display normalization); jet palette.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from edge_sdk import kernels
from edge_sdk.atomic import atomic_path


def jet(values: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8, the classic jet palette (blue - cyan - yellow - red)."""
    v = np.clip(values, 0.0, 1.0)
    r = np.clip(1.5 - np.abs(4.0 * v - 3.0), 0.0, 1.0)
    g = np.clip(1.5 - np.abs(4.0 * v - 2.0), 0.0, 1.0)
    b = np.clip(1.5 - np.abs(4.0 * v - 1.0), 0.0, 1.0)
    return (np.stack([r, g, b], axis=-1) * 255.0 + 0.5).astype(np.uint8)


def panels(image: np.ndarray, heat01: np.ndarray, caption: str = "", *, truth: bool = False,
           mask: np.ndarray | None = None) -> Image.Image:
    """Image | heatmap (values in [0, 1]) blended over it [| the image with ``mask`` outlined in
    red, when ``truth``], each panel the image's size, under a caption line."""
    rgb = image if image.ndim == 3 and image.shape[2] == 3 else np.repeat(image.reshape(*image.shape[:2], 1), 3, 2)
    overlay = (0.5 * rgb.astype(np.float32) + 0.5 * jet(heat01).astype(np.float32)).astype(np.uint8)
    shown = [rgb, overlay]
    if truth:
        outlined = rgb.copy()
        if mask is not None and mask.any():
            m = mask.astype(bool)
            outlined[m & ~ndimage.binary_erosion(m)] = (255, 30, 30)
        shown.append(outlined)
    h, w = rgb.shape[:2]
    top = 14
    sheet = Image.new("RGB", (len(shown) * w, h + top), (255, 255, 255))
    for k, panel in enumerate(shown):
        sheet.paste(Image.fromarray(panel), (k * w, top))
    ImageDraw.Draw(sheet).text((3, 1), caption, fill=(0, 0, 0))
    return sheet


def heatmap_panel(image: np.ndarray, raw_map: np.ndarray, calibration: dict, mask: np.ndarray | None = None,
                  title: str = "") -> Image.Image:
    """A model's raw map, calibrated: image | heatmap | ground truth."""
    norm = kernels.calibrated_normalize(np.ascontiguousarray(raw_map, dtype=np.float32),
                                        calibration["threshold"], calibration["min"], calibration["max"])
    return panels(image, norm, title, truth=True, mask=mask)


def save_png(img: Image.Image, path: str) -> str:
    """Atomic PNG write (temporary file + rename)."""
    with atomic_path(path, ".png") as tmp:
        img.save(tmp, format="PNG")
    return path
