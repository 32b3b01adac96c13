"""Rank-filter images of an acquisition (kernels.frame_extremes) against NumPy, on random frames
and on frames of a part with a static defect and a moving bubble."""

import os

import numpy as np
import pytest

from edge_sdk import kernels


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("shape", [(4, 16, 37, 53), (2, 3, 64, 64, 3), (1, 2, 1, 1), (3, 7, 129, 200)])
def test_matches_numpy(rng, dtype, shape):
    frames = rng.integers(0, 256, shape).astype(dtype)
    if dtype == np.float32:
        frames += rng.random(shape, dtype=np.float32)
    lo, hi = kernels.frame_extremes(frames)
    assert lo.dtype == dtype and lo.shape == shape[:1] + shape[2:]
    np.testing.assert_array_equal(lo, frames.min(axis=1))
    np.testing.assert_array_equal(hi, frames.max(axis=1))


def test_what_moves_shows_only_in_the_darker_image():
    part = np.full((16, 48, 48), 200, np.uint8)
    part[:, 20:24, 10:30] = 60  # a defect fixed to the part: in every frame
    for f in range(16):  # a dark bubble rising through the liquid: a different place in each frame
        part[f, 40 - 2 * f:44 - 2 * f, 35:39] = 20
    lo, hi = kernels.frame_extremes(part[None])
    assert (lo[0, 20:24, 10:30] == 60).all() and (hi[0, 20:24, 10:30] == 60).all()
    trail = lo[0, 10:44, 35:39]
    assert (trail == 20).mean() > 0.9 and (hi[0, :, 35:39] == 200).all()


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="frames: expected dtype uint8 or float32, got uint16"):
        kernels.frame_extremes(np.zeros((1, 2, 4, 4), np.uint16))
    with pytest.raises(ValueError, match="frames: expected 4 or 5 dimensions"):
        kernels.frame_extremes(np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="frames: expected 2 to 1024 frames"):
        kernels.frame_extremes(np.zeros((1, 1, 4, 4), np.uint8))
    bad = np.zeros((1, 2, 4, 4), np.float32)
    bad[0, 1, 2, 2] = np.nan
    with pytest.raises(ValueError, match="frames: contains NaN"):
        kernels.frame_extremes(bad)


def test_synthetic_acquisition_bubbles_move_defects_stay():
    """The vial-strip generator's frames: rising bubbles darken the lowest image along their
    trails and vanish from the highest; a black spot fixed to the plastic stays dark in both."""
    from edge_sdk.data.vial_strip import _new_product, render_acquisition

    rng = np.random.default_rng(1)
    spec = _new_product(rng, 64, "black_spot")
    frames, masks = render_acquisition(spec, rng, frames=16, bubbles=(3, 4))
    assert masks.shape == frames.shape and (masks == masks[0]).all()  # a black spot does not move
    lo, hi = kernels.frame_extremes(frames[None])
    lo, hi, m = lo[0].astype(int), hi[0].astype(int), masks[0].astype(bool)
    assert frames.shape == (16, 256, 320) and m.sum() > 20
    ring = np.zeros_like(m)
    ring[max(0, np.flatnonzero(m.any(1))[0] - 12):np.flatnonzero(m.any(1))[-1] + 12,
         max(0, np.flatnonzero(m.any(0))[0] - 12):np.flatnonzero(m.any(0))[-1] + 12] = True
    ring &= ~m
    assert hi[m].mean() < hi[ring].mean() - 40  # the spot is in the lighter image
    liquid = np.zeros_like(m)
    liquid[150:220] = True  # the bodies below the meniscus, where the bubbles rise
    # bubble rims: many pixels far darker in the lowest image than in the highest
    assert ((hi - lo)[liquid & ~m] > 40).mean() > 0.02
    # without bubbles the two images differ by sensor noise only
    calm, _ = render_acquisition(spec, np.random.default_rng(2), frames=16, bubbles=(0, 0))
    clo, chi = kernels.frame_extremes(calm[None])
    assert ((chi[0].astype(int) - clo[0])[liquid & ~m] > 40).mean() < 0.001
    with pytest.raises(ValueError, match="frames: expected 1 to 1024"):
        render_acquisition(spec, rng, frames=0)


def test_vial_strip_set_holds_the_images_the_runtime_judges(tmp_path):
    """make_vial_strip_dataset(frames=K): each acquisition is written as its K frames and the lowest /
    highest images, bit for bit the runtime's (frame_extremes of the written frames); masks: each
    frame its own, lowest the union, highest the intersection (a floating particle leaves it)."""
    import json

    from PIL import Image

    from edge_sdk.data.vial_strip import make_vial_strip_dataset
    from edge_sdk.regions import per_acquisition, product_ids

    root = make_vial_strip_dataset(str(tmp_path), count=2, products=4, acquisitions=2, region_size=32, seed=3,
                                   frames=3, progress=False)
    assert sorted(os.listdir(os.path.join(root, "train", "good"))) == [
        f"s{i:04d}_{x}.png" for i in range(2) for x in ("f00", "f01", "f02", "hi", "lo")]
    meta = json.load(open(os.path.join(root, "strips.json")))
    assert meta["frames"] == 3 and len(meta["images"]) == 4 * 2 * 5
    particle = [e for e in meta["images"] if e["defect_type"] == "particle" and e["acquisition"] == 1]
    assert [e["image"] for e in particle] == ["f00", "f01", "f02", "lo", "hi"]

    def load(rel):
        return np.array(Image.open(os.path.join(root, rel)))

    frames = np.stack([load(e["path"]) for e in particle[:3]])
    lo, hi = kernels.frame_extremes(frames[None])
    np.testing.assert_array_equal(load(particle[3]["path"]), lo[0])
    np.testing.assert_array_equal(load(particle[4]["path"]), hi[0])
    masks = [load(e["path"].replace("test/", "ground_truth/").replace(".png", "_mask.png")) > 0 for e in particle]
    np.testing.assert_array_equal(masks[3], masks[0] | masks[1] | masks[2])
    np.testing.assert_array_equal(masks[4], masks[0] & masks[1] & masks[2])
    assert masks[3].sum() > masks[0].sum() > masks[4].sum()  # it floated between the frames
    # product ids and per-acquisition rows follow the image suffixes
    paths = [e["path"] for e in meta["images"]]
    assert product_ids(paths).tolist() == [e["product"] for e in meta["images"]]
    scores = np.arange(len(paths), dtype=np.float64)[:, None]
    merged, labels, names = per_acquisition(scores, np.zeros_like(scores), paths)
    assert names[:2] == ["p0000_a00", "p0000_a01"] and merged[:2, 0].tolist() == [4.0, 9.0]
    with pytest.raises(ValueError, match="frames: expected 0"):
        make_vial_strip_dataset(str(tmp_path / "x"), count=1, products=1, frames=1, progress=False)


def test_runtime_judges_an_acquisition_with_its_rank_images(tmp_path):
    """Runtime.predict_acquisition: K frames + lowest + highest, each judged as predict judges it."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    import edge_sdk
    from edge_sdk.converters import export_bundle
    from tests.bundle_helpers import ssim_parts

    b = export_bundle(ssim_parts(size=32), tmp_path / "b", model_type="resganad").bundle
    rt = edge_sdk.Runtime(b, threads=1)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 32, 32), dtype=np.uint8)
    res = rt.predict_acquisition(list(frames))
    assert len(res) == 7
    want = rt.predict(list(frames) + [frames.min(0), frames.max(0)])
    np.testing.assert_array_equal(res.scores, want.scores)
    np.testing.assert_array_equal(res.verdicts, want.verdicts)
    with pytest.raises(ValueError, match="frames: expected 2 to 1024"):
        rt.predict_acquisition(frames[:1])


def test_a_bundle_declares_its_acquisitions(tmp_path):
    """input.acquisition.frames = K (export --acquisition-frames): the runtime takes exactly K frames
    an acquisition; out-of-range values are refused when the bundle is written and when it loads."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    import json

    import edge_sdk
    from edge_sdk.bundle import BundleError
    from edge_sdk.converters import export_bundle
    from tests.bundle_helpers import ssim_parts

    b = export_bundle(ssim_parts(size=32), tmp_path / "b", model_type="resganad", acquisition_frames=4).bundle
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["input"]["acquisition"] == {"frames": 4}
    rt = edge_sdk.Runtime(b, threads=1)
    assert rt.acquisition_frames == 4
    frames = np.random.default_rng(1).integers(0, 256, (5, 32, 32), dtype=np.uint8)
    assert len(rt.predict_acquisition(frames[:4])) == 6
    with pytest.raises(ValueError, match=r"acquisitions are 4 frames \(input.acquisition.frames\), got 5"):
        rt.predict_acquisition(frames)
    for bad in (1, 1025):
        with pytest.raises(BundleError, match="input.acquisition.frames"):
            export_bundle(ssim_parts(size=32), tmp_path / f"x{bad}", model_type="resganad", acquisition_frames=bad)
    # a manifest edited past the writer: the runtime's own validator names the field
    from edge_sdk.bundle.reader import read_bundle
    from edge_sdk.bundle.writer import write_bundle

    src = read_bundle(b, trusted_keys_from_env=False)
    m = {k: v for k, v in src.manifest.items() if k != "files"}
    m["input"] = {**m["input"], "acquisition": {"frames": 0}}
    with pytest.raises(BundleError, match="input.acquisition.frames"):
        write_bundle(tmp_path / "edited", m, dict(src.networks), src.arrays)
