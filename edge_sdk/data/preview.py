"""A PNG contact sheet of samples with their defect masks outlined, for people to look at."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from edge_sdk.atomic import atomic_path


def _tile(sample, cell: int, outline: bool) -> Image.Image:
    img = sample.image if sample.image.ndim == 3 else np.repeat(sample.image[..., None], 3, axis=2)
    out = np.array(Image.fromarray(img).resize((cell, cell), Image.BILINEAR))
    if outline and sample.mask is not None and sample.mask.any():
        m = np.asarray(Image.fromarray(sample.mask * np.uint8(255)).resize((cell, cell), Image.NEAREST)) > 127
        out[m & ~ndimage.binary_erosion(m)] = (255, 30, 30)  # 1-pixel outline, the defect stays visible
    return Image.fromarray(out)


def save_preview(samples, path: str, *, cols: int = 8, cell: int = 160, outline: bool = True) -> str:
    """Grid of ``samples`` (defect type written under each; with ``outline`` the mask boundary in red,
    1 pixel wide), written atomically to ``path``."""
    if not samples:
        raise ValueError("save_preview: no samples")
    rows = (len(samples) + cols - 1) // cols
    label_h = 14
    sheet = Image.new("RGB", (cols * cell, rows * (cell + label_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, s in enumerate(samples):
        x, y = (k % cols) * cell, (k // cols) * (cell + label_h)
        sheet.paste(_tile(s, cell, outline), (x, y))
        draw.text((x + 3, y + cell + 1), s.defect_type, fill=(0, 0, 0) if s.label == 0 else (200, 0, 0))
    with atomic_path(path, ".png") as tmp:
        sheet.save(tmp, format="PNG")
    return path
