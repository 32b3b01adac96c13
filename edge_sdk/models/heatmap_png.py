"""Heatmap PNGs for people to look at: image | calibrated heatmap over the image | ground truth.

The heatmap is the model's raw map through ``kernels.calibrated_normalize`` (0.5 = the decision
threshold), coloured with a jet palette; the ground-truth panel outlines the mask in red.
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


def heatmap_panel(image: np.ndarray, raw_map: np.ndarray, calibration: dict, mask: np.ndarray | None = None,
                  title: str = "") -> Image.Image:
    """Three panels side by side, each the image's size, plus a caption line."""
    rgb = image if image.ndim == 3 and image.shape[2] == 3 else np.repeat(image.reshape(*image.shape[:2], 1), 3, 2)
    norm = kernels.calibrated_normalize(np.ascontiguousarray(raw_map, dtype=np.float32),
                                        calibration["threshold"], calibration["min"], calibration["max"])
    overlay = (0.5 * rgb.astype(np.float32) + 0.5 * jet(norm).astype(np.float32)).astype(np.uint8)
    truth = rgb.copy()
    if mask is not None and mask.any():
        m = mask.astype(bool)
        truth[m & ~ndimage.binary_erosion(m)] = (255, 30, 30)
    h, w = rgb.shape[:2]
    caption = 14
    sheet = Image.new("RGB", (3 * w, h + caption), (255, 255, 255))
    for k, panel in enumerate((rgb, overlay, truth)):
        sheet.paste(Image.fromarray(panel), (k * w, caption))
    ImageDraw.Draw(sheet).text((3, 1), title, fill=(0, 0, 0))
    return sheet


def save_png(img: Image.Image, path: str) -> str:
    """Atomic PNG write (temporary file + rename)."""
    with atomic_path(path, ".png") as tmp:
        img.save(tmp, format="PNG")
    return path
