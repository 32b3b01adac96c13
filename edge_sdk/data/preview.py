"""A PNG contact sheet of samples with their defect masks outlined, for people to look at."""

from __future__ import annotations

import os
import tempfile

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage


def _tile(sample, cell: int) -> Image.Image:
    img = sample.image if sample.image.ndim == 3 else np.repeat(sample.image[..., None], 3, axis=2)
    img = img.copy()
    if sample.mask is not None and sample.mask.any():
        m = sample.mask.astype(bool)
        edge = m & ~ndimage.binary_erosion(m)
        edge = ndimage.binary_dilation(edge, iterations=max(1, img.shape[0] // 256))
        img[edge] = (255, 30, 30)
    return Image.fromarray(img).resize((cell, cell), Image.BILINEAR)


def save_preview(samples, path: str, *, cols: int = 8, cell: int = 160) -> str:
    """Grid of ``samples`` (label and defect type written under each; mask outlines in red), written
    atomically to ``path``."""
    if not samples:
        raise ValueError("save_preview: no samples")
    rows = (len(samples) + cols - 1) // cols
    label_h = 14
    sheet = Image.new("RGB", (cols * cell, rows * (cell + label_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, s in enumerate(samples):
        x, y = (k % cols) * cell, (k // cols) * (cell + label_h)
        sheet.paste(_tile(s, cell), (x, y))
        draw.text((x + 3, y + cell + 1), s.defect_type, fill=(0, 0, 0) if s.label == 0 else (200, 0, 0))
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=d)
    os.close(fd)
    try:
        sheet.save(tmp, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
