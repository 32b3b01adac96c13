"""ResGANAD / GRD-Net through the bundle and the C++ runtime: scores, maps and region verdicts
match the model's own predict (1e-4 relative)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


pytestmark = [pytest.mark.onnxruntime, pytest.mark.usefixtures("torch_one_thread")]

@pytest.fixture(scope="module")
def strips(tmp_path_factory):
    from edge_sdk.data import load_dataset
    from edge_sdk.data.vial_strip import make_vial_strip_dataset
    from edge_sdk.regions import RegionLayout, RegionPatches

    root = make_vial_strip_dataset(str(tmp_path_factory.mktemp("vs")), count=3, products=4, acquisitions=1,
                                   region_size=40, seed=3, progress=False)
    lay = RegionLayout.load(root)
    train = RegionPatches(load_dataset(root, "mvtec", "train", gray=True), lay)
    test = load_dataset(root, "mvtec", "test", gray=True)
    return train, [test[i].image for i in range(len(test))], lay


def _bundle(model, path, real):
    from edge_sdk.converters.onnx_export import export_bundle

    export_bundle(model.export_parts(), path, model_type=model.name, real_images=real)
    from edge_sdk.runtime import Runtime

    return Runtime(path, threads=1)


def test_resganad_bundle_matches_predict(recon_tiny, strips, tmp_path):
    from edge_sdk.models.resganad import ResGANAD

    train, frames, lay = strips
    model = ResGANAD("small", seed=0, blur_sigma=1.5, **recon_tiny).fit(train, epochs=1, progress=False, val_fraction=0.34)
    patches = [p for f in frames for p in lay.cut(f)]
    rt = _bundle(model, tmp_path / "b", np.stack(patches[:4])[..., None])
    res = rt.predict(frames)
    ours = model.predict_frames(frames)
    np.testing.assert_allclose(res.regions.scores, ours["scores"], rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(res.regions.verdicts == "reject", ours["region_rejects"])
    np.testing.assert_array_equal(res.verdicts == "reject", ours["product_rejects"])
    assert res.regions.names == lay.names
    # the frame heatmap holds each region's map at its place
    pred = model.predict(lay.cut(frames[0]))
    for k, r in enumerate(lay.regions):
        np.testing.assert_allclose(res.heatmaps[0][r.y:r.y + r.height, r.x:r.x + r.width], pred.maps[k],
                                   rtol=1e-4, atol=1e-5)


def test_grdnet_bundle_matches_predict(recon_tiny, strips, tmp_path):
    from edge_sdk.models.grdnet import GRDNet

    train, frames, lay = strips
    model = GRDNet("small", seed=0, **recon_tiny).fit(train, epochs=1, progress=False, val_fraction=0.34)
    patches = [p for f in frames for p in lay.cut(f)]
    rt = _bundle(model, tmp_path / "g", np.stack(patches[:4])[..., None])
    res = rt.predict(frames)
    ours = model.predict_frames(frames)
    np.testing.assert_allclose(res.regions.scores, ours["scores"], rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(res.verdicts == "reject", ours["product_rejects"])
