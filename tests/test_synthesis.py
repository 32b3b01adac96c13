"""Perlin anomalies, defect pasting and the synthetic vial-strip data set."""

import json
import os

import numpy as np
import pytest
from scipy import ndimage

from edge_sdk.synthesis import DefectLibrary, paste_defect, perlin_anomaly, perlin_batch, perlin_mask, perlin_noise


# ----------------------------------------------------------------------------------------- Perlin

def test_perlin_is_deterministic_in_seed():
    a = perlin_anomaly(np.full((1, 64, 64), 0.5, np.float32), 7)
    b = perlin_anomaly(np.full((1, 64, 64), 0.5, np.float32), 7)
    c = perlin_anomaly(np.full((1, 64, 64), 0.5, np.float32), 8)
    for x, y in zip(a[:3], b[:3]):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.mask, c.mask)


def test_perlin_blend_formula_holds(rng):
    x = rng.random((1, 48, 56)).astype(np.float32)
    out = perlin_anomaly(x, rng)
    m = out.mask
    assert set(np.unique(m)) <= {0.0, 1.0} and m.any()
    assert 0.5 <= out.beta <= 1.0
    np.testing.assert_array_equal(out.noise[:, m == 0], 0)
    expected = (1 - m) * x + (1 - out.beta) * m * x + out.beta * out.noise
    np.testing.assert_allclose(out.image, expected, atol=1e-6)
    np.testing.assert_array_equal(out.image[:, m == 0], x[:, m == 0])


def test_perlin_threshold_and_scale_and_octaves():
    # same seed -> same field: a higher threshold keeps a subset of the mask
    lo = perlin_mask((64, 64), 3, threshold=0.3, max_tries=1)
    hi = perlin_mask((64, 64), 3, threshold=0.6, max_tries=1)
    assert lo.sum() > hi.sum() and np.all(lo >= hi)
    # larger lattice exponents make smaller blobs
    def mean_blob(scale_range):
        sizes = []
        for s in range(30):
            lab, n = ndimage.label(perlin_mask((96, 96), s, scale_range=scale_range, threshold=0.3))
            sizes += list(np.bincount(lab.ravel())[1:])
        return np.mean(sizes)
    assert mean_blob((0, 2)) > 5 * mean_blob((4, 5))
    # more octaves add high-frequency energy
    rough = lambda n: np.abs(np.diff(n, axis=1)).mean()
    one = np.mean([rough(perlin_noise((64, 64), s, scale_range=(2, 3), octaves=1)) for s in range(10)])
    four = np.mean([rough(perlin_noise((64, 64), s, scale_range=(2, 3), octaves=4)) for s in range(10)])
    assert four > 1.5 * one
    n = np.stack([perlin_noise((64, 64), s) for s in range(20)])
    assert np.abs(n).max() < 1.5 and abs(n.mean()) < 0.1


def test_perlin_batch_probability(rng):
    x = rng.random((200, 1, 32, 32)).astype(np.float32)
    out, masks = perlin_batch(x, 1, probability=0.75)
    touched = masks.reshape(200, -1).any(1)
    assert 0.6 < touched.mean() < 0.9
    np.testing.assert_array_equal(out[~touched], x[~touched])
    out0, masks0 = perlin_batch(x, 1, probability=0.0)
    np.testing.assert_array_equal(out0, x)
    assert not masks0.any()


def test_perlin_bad_arguments():
    with pytest.raises(ValueError, match="scale_range"):
        perlin_noise((8, 8), 0, scale_range=(3, 3))
    with pytest.raises(ValueError, match="octaves"):
        perlin_noise((8, 8), 0, octaves=0)
    with pytest.raises(ValueError, match="beta_range"):
        perlin_anomaly(np.zeros((8, 8), np.float32), 0, beta_range=(0.5, 1.5))
    with pytest.raises(ValueError, match="image"):
        perlin_anomaly(np.zeros((8,), np.float32), 0)
    with pytest.raises(ValueError, match="source"):
        perlin_anomaly(np.zeros((8, 8), np.float32), 0, source=np.zeros((4, 4)))
    with pytest.raises(ValueError, match="probability"):
        perlin_batch(np.zeros((1, 1, 8, 8), np.float32), 0, probability=2)


# ---------------------------------------------------------------------------------- Defect pasting

def _spot_image(bg: float, spot: float, centre=(20, 30), radius=4, shape=(64, 80)):
    img = np.full(shape, bg, np.float32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    m = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2
    img[m] = spot
    return img, m.astype(np.uint8)


def test_library_cuts_one_entry_per_component():
    img, m = _spot_image(100, 40)
    img2, m2 = _spot_image(100, 40, centre=(40, 60), radius=6)
    m3 = m | m2
    tiny = np.zeros_like(m)
    tiny[5, 5] = 1  # below min_area: skipped
    lib = DefectLibrary.from_images([img, np.minimum(img, img2)], [m, m3 | tiny], ["a", "b"])
    assert len(lib) == 3
    assert sorted(d.kind for d in lib.defects) == ["a", "b", "b"]
    np.testing.assert_allclose(lib.defects[0].background, [100.0])


@pytest.mark.parametrize("match,expected", [("additive", 180 - 60), ("multiplicative", 180 * 0.4), ("none", 40)])
def test_paste_matches_brightness(match, expected):
    src, m = _spot_image(100, 40)
    lib = DefectLibrary.from_images([src], [m])
    target = np.full((64, 80), 180, np.uint8)
    out, mask, d = paste_defect(target, lib, 0, match=match, feather=0)
    assert out.dtype == np.uint8 and out.shape == target.shape
    assert mask.sum() == m.sum()
    np.testing.assert_allclose(out[mask > 0], expected, atol=0.51)
    np.testing.assert_array_equal(out[mask == 0], 180)


def test_paste_position_near_and_allowed(rng):
    src, m = _spot_image(100, 40, centre=(50, 60), radius=3)
    lib = DefectLibrary.from_images([src], [m])
    target = (rng.random((64, 80)) * 50 + 100).astype(np.float32)
    out, mask, _ = paste_defect(target, lib, rng, position="near", jitter=4)
    cy, cx = np.argwhere(mask).mean(0)
    assert abs(cy - 50) <= 4.5 and abs(cx - 60) <= 4.5
    # feathered edge: pixels outside the footprint untouched
    np.testing.assert_array_equal(out[mask == 0], target[mask == 0])
    allowed = np.zeros((64, 80), bool)
    allowed[:30, :40] = True
    for seed in range(5):
        _, mask, _ = paste_defect(target, lib, seed, position="anywhere", allowed=allowed)
        assert allowed[mask > 0].all()
    with pytest.raises(ValueError, match="allowed"):
        paste_defect(target, lib, 0, allowed=np.zeros((64, 80), bool), max_tries=5)
    a = paste_defect(target, lib, 11, position="anywhere")
    b = paste_defect(target, lib, 11, position="anywhere")
    np.testing.assert_array_equal(a[0], b[0])


def test_paste_rgb_and_errors():
    src, m = _spot_image(100, 40)
    rgb = np.repeat(src[:, :, None], 3, axis=2)
    lib = DefectLibrary.from_images([rgb], [m])
    out, mask, _ = paste_defect(np.full((64, 80, 3), 200, np.uint8), lib, 0, feather=0)
    np.testing.assert_array_equal(out[mask > 0], 140)
    with pytest.raises(ValueError, match="library"):
        paste_defect(np.zeros((8, 8)), DefectLibrary([]), 0)
    with pytest.raises(ValueError, match="position"):
        paste_defect(np.zeros((64, 80)), lib, 0, position="middle")
    with pytest.raises(ValueError, match="masks\\[0\\]"):
        DefectLibrary.from_images([src], [m[:10]])


# --------------------------------------------------------------------------------- Vial strip set

@pytest.fixture(scope="module")
def strip_set(tmp_path_factory):
    from edge_sdk.data.vial_strip import make_vial_strip_dataset

    out = tmp_path_factory.mktemp("vs")
    return make_vial_strip_dataset(str(out), count=3, products=8, acquisitions=2, region_size=64, seed=5,
                                   progress=False)


def test_vial_strip_layout_and_loading(strip_set):
    from edge_sdk.data import load_dataset
    from edge_sdk.data.vial_strip import DEFECT_KINDS

    train = load_dataset(strip_set, "mvtec", "train", gray=True)
    test = load_dataset(strip_set, "mvtec", "test", gray=True)
    assert len(train) == 3 and len(test) == 16
    assert train[0].image.shape == (256, 320)
    assert sorted(set(test.defect_types)) == sorted(["good", *DEFECT_KINDS])
    meta = json.load(open(os.path.join(strip_set, "strips.json")))
    layout = json.load(open(os.path.join(strip_set, "regions.json")))
    rects = {r["name"]: r for r in layout["regions"]}
    assert len(rects) == 20 and layout["frame"] == {"width": 320, "height": 256}
    by_path = {os.path.relpath(p, strip_set): i for i, p in enumerate(test.paths)}
    for e in meta["images"]:
        s = test[by_path[e["path"]]]
        if e["defect_type"] == "good":
            assert s.label == 0 and s.mask is None
            continue
        assert s.label == 1 and s.mask.sum() == e["defect_pixels"] > 0
        r = rects[e["region"]]
        inside = s.mask[r["y"]: r["y"] + r["height"], r["x"]: r["x"] + r["width"]].sum()
        assert inside >= 0.9 * s.mask.sum(), e


def test_vial_strip_defects_are_visible(strip_set):
    """Inside the defect mask the image departs from what a good strip shows at the same place."""
    from edge_sdk.data import load_dataset

    test = load_dataset(strip_set, "mvtec", "test", gray=True)
    good = np.stack([s.image.astype(np.float32) for s in test if s.label == 0])
    mean, spread = good.mean(0), good.std(0) + 2.0
    for s in test:
        if s.label == 1:
            z = np.abs(s.image.astype(np.float32) - mean) / spread
            assert z[s.mask > 0].max() > 4.0, s.path


def test_vial_strip_deterministic_and_refuses_to_overwrite(tmp_path, strip_set):
    from edge_sdk.data.vial_strip import make_vial_strip_dataset

    a = make_vial_strip_dataset(str(tmp_path / "a"), count=1, products=2, acquisitions=1, region_size=32, seed=3, progress=False)
    b = make_vial_strip_dataset(str(tmp_path / "b"), count=1, products=2, acquisitions=1, region_size=32, seed=3, progress=False)
    c = make_vial_strip_dataset(str(tmp_path / "c"), count=1, products=2, acquisitions=1, region_size=32, seed=4, progress=False)
    f = "train/good/s0000.png"
    assert open(os.path.join(a, f), "rb").read() == open(os.path.join(b, f), "rb").read()
    assert open(os.path.join(a, f), "rb").read() != open(os.path.join(c, f), "rb").read()
    with pytest.raises(FileExistsError, match="vial_strip"):
        make_vial_strip_dataset(str(tmp_path / "a"), count=1, products=2, acquisitions=1, region_size=32, progress=False)
    with pytest.raises(ValueError, match="region_size"):
        make_vial_strip_dataset(str(tmp_path / "d"), region_size=8)
    assert not [n for n in os.listdir(tmp_path / "a") if n.startswith(".")]  # no temp folder left


def test_synth_cli(tmp_path, capsys):
    from edge_sdk.cli import main

    rc = main(["synth", "vial-strip", "--out", str(tmp_path), "--count", "1", "--products", "2",
               "--acquisitions", "1", "--region-size", "32", "--seed", "1"])
    assert rc == 0
    root = capsys.readouterr().out.strip()
    assert os.path.isfile(os.path.join(root, "regions.json"))
    assert main(["synth", "vial-strip", "--out", str(tmp_path), "--count", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
