"""Synthetic generator: determinism, layout on disk, and masks that cover exactly what the defect changed."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from edge_sdk.data import load_dataset
from edge_sdk.data.preview import save_preview
from edge_sdk.data.synthetic import DEFECTS, KINDS, make_dataset, make_samples, render


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("gray", [False, True])
def test_masks_cover_exactly_the_change(kind, gray, rng):
    """Same rng state rendered good and with a defect: the scene draws are shared, so outside the mask
    the two differ by sensor noise only, inside the defect changes the pixels."""
    size = 128
    for defect in DEFECTS[kind]:
        seed = int(rng.integers(2**31))
        good, none_mask = render(kind, np.random.default_rng(seed), size, gray=gray, style_seed=3)
        bad, mask = render(kind, np.random.default_rng(seed), size, gray=gray, defect=defect, style_seed=3)
        assert none_mask is None
        assert good.shape == bad.shape == ((size, size) if gray else (size, size, 3))
        assert mask.shape == (size, size) and mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
        d = np.abs(bad.astype(np.int32) - good.astype(np.int32))
        d = d if gray else d.max(axis=-1)
        out, inside = d[mask == 0], d[mask == 1]
        assert out.mean() < 4.5, (defect, out.mean())          # two noise draws, sigma <= 2 levels each
        assert (out > 25).mean() < 1e-3, (defect, (out > 25).mean())
        assert np.median(inside) > 8, (defect, np.median(inside))


def test_deterministic_and_seed_dependent():
    a_train, a_test = make_samples("vial", 3, 6, 96, seed=11)
    b_train, b_test = make_samples("vial", 3, 6, 96, seed=11)
    c_train, _ = make_samples("vial", 3, 6, 96, seed=12)
    for x, y in zip(a_train + a_test, b_train + b_test):
        np.testing.assert_array_equal(x.image, y.image)
        assert (x.mask is None) == (y.mask is None)
        if x.mask is not None:
            np.testing.assert_array_equal(x.mask, y.mask)
    assert not np.array_equal(a_train[0].image, c_train[0].image)
    # image i does not depend on how many images are made
    more, _ = make_samples("vial", 5, 0, 96, seed=11)
    np.testing.assert_array_equal(more[2].image, a_train[2].image)
    # good variation: train images differ from each other, but are the same part
    assert not np.array_equal(a_train[0].image, a_train[1].image)
    assert np.abs(a_train[0].image.astype(float) - a_train[1].image).mean() < 20


def test_test_plan_and_labels():
    _, test = make_samples("tile", 0, 13, 64, seed=0, anomaly_fraction=10 / 13)
    types = [s.defect_type for s in test]
    assert types.count("good") == 3 and sum(s.label for s in test) == 10
    assert set(types) - {"good"} == set(DEFECTS["tile"])
    for s in test:
        assert (s.mask is None) == (s.label == 0)
    _, only = make_samples("tile", 0, 4, 64, seed=0, defects=["crack"])
    assert {s.defect_type for s in only} == {"good", "crack"}


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        make_samples("bottle", 1, 1)
    with pytest.raises(ValueError, match="size"):
        make_samples("tile", 1, 1, size=16)
    with pytest.raises(ValueError, match="n_train"):
        make_samples("tile", -1, 1)
    with pytest.raises(ValueError, match="defects"):
        make_samples("vial", 1, 2, defects=["spot"])
    with pytest.raises(ValueError, match="anomaly_fraction"):
        make_samples("vial", 1, 2, anomaly_fraction=1.5)


def test_make_dataset_writes_mvtec_layout(tmp_path):
    root = make_dataset(tmp_path / "syn", kind="vial", n_train=6, n_test=10, size=128, seed=4)
    assert root == str(tmp_path / "syn")
    train = load_dataset(root, "mvtec", "train", category="vial")
    test = load_dataset(root, "mvtec", "test", category="vial")
    mem_train, mem_test = make_samples("vial", 6, 10, 128, seed=4)
    assert len(train) == 6 and len(test) == 10
    np.testing.assert_array_equal(train[0].image, mem_train[0].image)
    by_type = {}
    for s in mem_test:
        by_type.setdefault(s.defect_type, []).append(s)
    for s in test:
        ref = by_type[s.defect_type][int(os.path.basename(s.path)[:3])]
        np.testing.assert_array_equal(s.image, ref.image)
        if s.label:
            np.testing.assert_array_equal(s.mask, ref.mask)
    meta = json.loads((tmp_path / "syn" / "vial" / "synthetic.json").read_text())
    assert meta["seed"] == 4 and meta["kind"] == "vial"
    with pytest.raises(FileExistsError):
        make_dataset(tmp_path / "syn", kind="vial", n_train=1, n_test=1, size=64)
    make_dataset(tmp_path / "syn", kind="vial", n_train=2, n_test=2, size=64, overwrite=True)
    assert len(load_dataset(root, "mvtec", "train", category="vial")) == 2
    assert not [n for n in os.listdir(tmp_path / "syn") if n.startswith(".")]  # no temp folders left
    # gray sets are written as single-channel PNGs and load as such with gray=True
    make_dataset(tmp_path / "g", kind="tile", n_train=2, n_test=3, size=64, gray=True)
    assert Image.open(tmp_path / "g" / "tile" / "train" / "good" / "000.png").mode == "L"
    assert load_dataset(tmp_path / "g", "mvtec", "test", gray=True)[0].image.shape == (64, 64)


def test_cli_and_preview(tmp_path, capsys):
    from edge_sdk.cli import main

    prev = tmp_path / "p.png"
    assert main(["synth", "tile", "--out", str(tmp_path / "o"), "--n-train", "2", "--n-test", "6",
                 "--size", "64", "--preview", str(prev)]) == 0
    im = Image.open(prev)
    assert im.mode == "RGB" and im.size[0] > 0
    assert main(["synth", "tile", "--out", str(tmp_path / "o"), "--n-train", "1", "--n-test", "1"]) == 2
    assert "exists; pass overwrite=True" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no samples"):
        save_preview([], str(tmp_path / "x.png"))
