"""The heatmap sheets people look at: labelled panels, a colour bar whose colours are the palette's,
legible sizes, and captions in the runtime's verdict words."""

import math

import numpy as np
import pytest
from PIL import Image

from edge_sdk.heatmap_png import MIN_PANEL, caption_text, panels, save_png, verdict_of


def test_verdict_words_follow_the_decision_rule():
    assert verdict_of(2.0, 2.0) == "reject"  # score >= threshold is anomalous
    assert verdict_of(1.999, 2.0) == "accept"
    assert verdict_of(math.nan, 2.0) == "review"
    assert verdict_of(1.0, None) == "review"
    text = caption_text(3.21, 2.5, "reject", "(crack)")
    assert text.startswith("REJECT") and "score 3.21" in text and "threshold 2.5" in text and "(crack)" in text
    for word in ("anomalous", "good"):
        assert word not in text.lower()


def test_sheet_layout_colour_bar_and_enlargement(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 60), dtype=np.uint8)
    heat = np.zeros((40, 60), np.float32)
    heat[10:20, 20:40] = 1.0
    mask = np.zeros((40, 60), bool)
    mask[12:18, 22:38] = True
    sheet = panels(img, heat, "caption", truth=True, mask=mask)
    a = np.asarray(sheet)
    panel_w = MIN_PANEL  # a 60-pixel image is enlarged to the minimum panel width
    assert sheet.width > 3 * panel_w and sheet.height > MIN_PANEL * 40 // 60
    # the colour bar: a column right of the three panels holding the palette's top (1) and bottom (0)
    right = a[:, 3 * (panel_w + 6):].astype(int)
    dark_red = (right[..., 0] > 110) & (right[..., 1] < 20) & (right[..., 2] < 20)
    dark_blue = (right[..., 2] > 110) & (right[..., 0] < 20) & (right[..., 1] < 20)
    assert dark_red.sum() > 20 and dark_blue.sum() > 20
    # the outline of the mask is red in the ground-truth panel
    assert ((a[:, 2 * (panel_w + 6):3 * (panel_w + 6)] == (255, 30, 30)).all(-1)).sum() > 50
    # text was drawn above the panels (dark pixels in the caption and label lines)
    assert (a[:30].min(-1) < 100).sum() > 50
    out = save_png(sheet, str(tmp_path / "s.png"))
    assert Image.open(out).size == sheet.size


def test_large_images_are_shrunk_and_shapes_checked():
    sheet = panels(np.zeros((2000, 1000, 3), np.uint8), np.zeros((2000, 1000), np.float32))
    assert sheet.height < 1200
    with pytest.raises(ValueError, match="heatmap shape"):
        panels(np.zeros((10, 10), np.uint8), np.zeros((5, 5), np.float32))
