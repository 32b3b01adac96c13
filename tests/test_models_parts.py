"""Building blocks of the embedding models: backbone weights and taps, ONNX export of the feature
networks, streaming covariance, online k-means, the approximate greedy coreset, model directories."""

import io
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edge_sdk.models import storage  # noqa: E402
from edge_sdk.models.backbone import (CustomBackbone, EfficientNetLite0, Lite0Backbone,  # noqa: E402
                                      load_state_dict_file, load_strict, lite0_weights_path)
from edge_sdk.models.coreset import StreamingCoreset, greedy_kcenter  # noqa: E402
from edge_sdk.models.features import PadimFeatures, PatchFeatures, random_orthonormal  # noqa: E402
from edge_sdk.models.streaming import OnlineKMeans, StreamingGaussian, regularized_cholesky  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def lite0():
    return EfficientNetLite0.pretrained()


# -- backbone ------------------------------------------------------------------------------------

def test_lite0_layout_matches_shipped_keys_exactly():
    state = torch.load(str(lite0_weights_path()), map_location="cpu", weights_only=True)
    own = EfficientNetLite0().state_dict()
    assert set(own) == set(state)
    assert all(tuple(own[k].shape) == tuple(state[k].shape) for k in own)
    assert len(own) == 296


def test_lite0_strict_loading_refuses_mismatches():
    state = load_state_dict_file(lite0_weights_path())
    model = EfficientNetLite0()
    missing = dict(state)
    del missing["_blocks.3._bn1.running_var"]
    with pytest.raises(ValueError, match="missing keys: _blocks.3._bn1.running_var"):
        load_strict(model, missing, "test")
    extra = dict(state, **{"_blocks.3._se_reduce.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="unexpected keys: _blocks.3._se_reduce.weight"):
        load_strict(model, extra, "test")
    wrong = dict(state, **{"_fc.bias": torch.zeros(10)})
    with pytest.raises(ValueError, match="shape mismatch: _fc.bias"):
        load_strict(model, wrong, "test")


def _photo(name, size=224):
    data = pytest.importorskip("skimage.data")
    img = torch.from_numpy(getattr(data, name)()).permute(2, 0, 1)[None].float() / 255
    img = torch.nn.functional.interpolate(img, (size, size), mode="bilinear", antialias=True)
    mean = torch.tensor(EfficientNetLite0.mean)[:, None, None]
    std = torch.tensor(EfficientNetLite0.std)[:, None, None]
    return (img - mean) / std


@pytest.mark.parametrize("photo, classes", [
    ("chelsea", {281, 282, 285}),   # tabby / tiger cat / Egyptian cat
    ("coffee", {967, 968}),         # espresso / cup
])
def test_lite0_classifies_real_photographs(lite0, photo, classes):
    # Wrong weights, layout, BN epsilon or normalization would not give the right top-1 with confidence.
    with torch.no_grad():
        probs = lite0(_photo(photo)).softmax(1)[0]
    assert int(probs.argmax()) in classes
    assert float(probs[list(classes)].sum()) > 0.8


def test_lite0_logits_on_synthetic_image_are_sane(lite0):
    x = torch.zeros(1, 3, 224, 224)  # a mid-grey image after normalization is near zero
    with torch.no_grad():
        logits = lite0(x)[0]
    assert torch.isfinite(logits).all()
    assert 0.3 < float(logits.std()) < 10.0
    assert float(logits.softmax(0).max()) < 0.9  # no confident class for a blank image


def test_lite0_taps_shapes_and_match_full_network(lite0):
    bb = Lite0Backbone(("stride4", "stride8", "stride16"))
    assert [(t.channels, t.stride) for t in bb.taps] == [(24, 4), (40, 8), (112, 16)]
    x = torch.randn(2, 3, 256, 256)
    with torch.no_grad():
        f4, f8, f16 = bb(x)
        # the same blocks run by hand through the full pretrained network
        y = torch.clamp(lite0._bn0(lite0._conv_stem(x)), 0, 6)
        outs = []
        for i, blk in enumerate(lite0._blocks[:11]):
            y = blk(y)
            outs.append(y)
    assert f4.shape == (2, 24, 64, 64) and f8.shape == (2, 40, 32, 32) and f16.shape == (2, 112, 16, 16)
    torch.testing.assert_close(f4, outs[2])
    torch.testing.assert_close(f16, outs[10])
    with pytest.raises(ValueError, match="unknown EfficientNet-Lite0 tap"):
        Lite0Backbone(("layer3",), pretrained=False)


class TinyNet(torch.nn.Module):
    """A user's own network (ResNet-like stem and two stages)."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
        self.layer1 = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, 2, 1), torch.nn.ReLU())
        self.layer2 = torch.nn.Sequential(torch.nn.Conv2d(16, 32, 3, 2, 1), torch.nn.ReLU())
        self.head = torch.nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.layer2(self.layer1(self.stem(x))).mean((2, 3)))


def tiny_net():
    return TinyNet()


@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
def test_custom_backbone_loads_weights_and_taps(tmp_path, fmt):
    from safetensors.torch import save_file

    src = TinyNet().eval()
    path = tmp_path / f"w.{fmt}"
    if fmt == "safetensors":
        save_file(src.state_dict(), str(path))
    else:
        torch.save({"state_dict": src.state_dict()}, str(path))
    bb = CustomBackbone(TinyNet(), ["layer1", "layer2"], weights=path)
    assert [(t.channels, t.stride) for t in bb.taps] == [(16, 4), (32, 8)]
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = bb(x)
        ref1 = src.layer1(src.stem(x))
        ref2 = src.layer2(ref1)
    torch.testing.assert_close(a, ref1)
    torch.testing.assert_close(b, ref2)
    assert isinstance(bb.net, torch.fx.GraphModule)  # cut after layer2: the head never runs
    assert "head" not in dict(bb.net.named_modules())


class BranchyNet(TinyNet):
    """Data-dependent control flow: not traceable by torch.fx, so taps come from forward hooks."""

    def forward(self, x):
        y = self.layer1(self.stem(x))
        if float(y.mean()) > 1e9:
            y = y * 0
        return self.head(self.layer2(y).mean((2, 3)))


def test_custom_backbone_falls_back_to_hooks():
    net = BranchyNet().eval()
    bb = CustomBackbone(net, ["layer1", "layer2"])
    assert not isinstance(bb.net, torch.fx.GraphModule)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a, b = bb(x)
        ref1 = net.layer1(net.stem(x))
    torch.testing.assert_close(a, ref1)
    torch.testing.assert_close(b, net.layer2(ref1))


def test_custom_backbone_refuses_pickled_objects_and_bad_layers(tmp_path):
    path = tmp_path / "evil.pt"
    buf = io.BytesIO()
    torch.save({"weights": TinyNet()}, buf)  # a whole pickled module, not a state dict
    path.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="weights_only"):
        CustomBackbone(TinyNet(), ["layer1"], weights=path)
    with pytest.raises(ValueError, match="not submodules"):
        CustomBackbone(TinyNet(), ["layer9"])
    with pytest.raises(FileNotFoundError):
        CustomBackbone(TinyNet(), ["layer1"], weights=tmp_path / "missing.pt")


@pytest.mark.parametrize("kind", ["padim", "patch"])
def test_feature_networks_export_to_onnx_and_match(tmp_path, kind):
    ort = pytest.importorskip("onnxruntime")
    bb = Lite0Backbone(("stride4", "stride8", "stride16") if kind == "padim" else ("stride8", "stride16"))
    if kind == "padim":
        net = PadimFeatures(bb, torch.arange(0, 176, 3))
    else:
        net = PatchFeatures(bb, random_orthonormal(152, 64, seed=1))
    net.eval()
    x = torch.randn(2, 3, 128, 128)
    path = tmp_path / "f.onnx"
    torch.onnx.export(net, (x,), str(path), input_names=["input"], output_names=["features"], opset_version=17,
                      dynamic_axes={"input": {0: "n"}, "features": {0: "n"}}, dynamo=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["features"], {"input": x.numpy()})[0]
    with torch.no_grad():
        ref = net(x).numpy()
    assert got.shape == ref.shape == ((2, 1024, 59) if kind == "padim" else (2, 256, 64))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_patch_features_aggregate_and_upsample():
    bb = Lite0Backbone(("stride8", "stride16"))
    net = PatchFeatures(bb)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        f8, f16 = bb(x)
        out = net(x)
    a8 = torch.nn.functional.avg_pool2d(f8, 3, 1, 1, count_include_pad=False)
    a16 = torch.nn.functional.interpolate(torch.nn.functional.avg_pool2d(f16, 3, 1, 1, count_include_pad=False),
                                          size=(8, 8), mode="bilinear", align_corners=False)
    ref = torch.cat([a8, a16], 1).flatten(2).transpose(1, 2)
    torch.testing.assert_close(out, ref)
    # interior location: plain 3x3 mean
    torch.testing.assert_close(out[0, 3 * 8 + 4, :40], f8[0, :, 2:5, 3:6].mean((1, 2)))


def test_random_orthonormal_is_orthonormal_and_seeded():
    q = random_orthonormal(50, 20, seed=3)
    np.testing.assert_allclose((q.T @ q).numpy(), np.eye(20), atol=1e-5)
    assert torch.equal(q, random_orthonormal(50, 20, seed=3))
    assert not torch.equal(q, random_orthonormal(50, 20, seed=4))


# -- streaming statistics ------------------------------------------------------------------------

def test_streaming_gaussian_matches_numpy(rng):
    n, locs, c = 57, 6, 9
    x = rng.standard_normal((n, locs, c)) @ rng.standard_normal((c, c)) + 1e3 * rng.standard_normal(c)
    stats = StreamingGaussian(locs, c)
    start = 0
    while start < n:
        step = int(rng.integers(1, 9))
        stats.update(torch.from_numpy(x[start:start + step]))
        start += step
    assert stats.count == n
    for loc in range(locs):
        np.testing.assert_allclose(stats.mean[loc].numpy(), x[:, loc].mean(0), rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(stats.covariance()[loc].numpy(), np.cov(x[:, loc], rowvar=False),
                                   rtol=1e-9, atol=1e-9)


def test_streaming_gaussian_is_stable_with_a_large_mean(rng):
    # Small spread around a huge mean: E[xx^T] - mu mu^T loses every digit in float64; the
    # merged centred sums do not.
    x = 1e8 + rng.standard_normal((400, 1, 3))
    stats = StreamingGaussian(1, 3)
    for i in range(0, 400, 7):
        stats.update(x[i:i + 7])
    ref = np.cov(x[:, 0] - 1e8, rowvar=False)
    np.testing.assert_allclose(stats.covariance()[0].numpy(), ref, rtol=1e-6, atol=1e-6)
    naive = (x[:, 0].T @ x[:, 0]) / 400 - np.outer(x[:, 0].mean(0), x[:, 0].mean(0))
    assert np.abs(naive * 400 / 399 - ref).max() > 1e-2  # the naive formula really fails here


def test_regularized_cholesky(rng):
    a = rng.standard_normal((3, 5, 2))
    a[:, -1] = 0  # an exactly zero last row and column: the factorization must fail at location 0
    cov = torch.from_numpy(a @ a.transpose(0, 2, 1))  # rank 2: singular without eps (rounding can
    # hide a merely rank-deficient matrix, never an exact zero pivot)
    chol = regularized_cholesky(cov, 0.01)
    np.testing.assert_allclose((chol @ chol.transpose(1, 2)).numpy(), cov.numpy() + 0.01 * np.eye(5), atol=1e-12)
    assert torch.all(torch.triu(chol, 1) == 0)
    with pytest.raises(ValueError, match="location 0 is not positive definite"):
        regularized_cholesky(cov, 0.0)
    # block-wise, scaled, cast: the same factor
    blocked = regularized_cholesky(cov * 7, 0.01, scale=1 / 7, dtype=torch.float32, block=2)
    assert blocked.dtype == torch.float32
    np.testing.assert_allclose(blocked.numpy(), chol.numpy(), rtol=1e-5, atol=1e-6)
    stats = StreamingGaussian(2, 3)
    x = rng.standard_normal((20, 2, 3))
    stats.update(x)
    np.testing.assert_allclose(stats.cholesky(0.01, dtype=torch.float64).numpy(),
                               regularized_cholesky(stats.covariance(), 0.01).numpy(), rtol=1e-12)


def _macqueen_reference(z, k):
    n, locs, c = z.shape
    cent = np.zeros((locs, k, c))
    cnt = np.zeros((locs, k))
    for loc in range(locs):
        for i in range(n):
            v = z[i, loc]
            if i < k:
                cent[loc, i], cnt[loc, i] = v, 1
                continue
            j = int(np.argmin(((cent[loc] - v) ** 2).sum(1)))
            cnt[loc, j] += 1
            cent[loc, j] += (v - cent[loc, j]) / cnt[loc, j]
    return cent


def test_online_kmeans_matches_sequential_reference(rng):
    z = rng.standard_normal((40, 5, 3)) + 4 * rng.integers(0, 3, (40, 5, 1))
    km = OnlineKMeans(5, 3, k=3)
    for i in range(0, 40, 6):
        km.update(z[i:i + 6])
    np.testing.assert_allclose(km.result().numpy(), _macqueen_reference(z, 3), rtol=1e-12, atol=1e-12)
    one = OnlineKMeans(5, 3, k=1)
    one.update(z)
    np.testing.assert_allclose(one.result()[:, 0].numpy(), z.mean(0), atol=1e-12)


# -- coreset -------------------------------------------------------------------------------------

def _kcenter_reference(x, m, start):
    x = x.astype(np.float64)
    chosen = [start]
    d = ((x - x[start]) ** 2).sum(1)
    for _ in range(m - 1):
        nxt = int(np.argmax(d))
        chosen.append(nxt)
        d = np.minimum(d, ((x - x[nxt]) ** 2).sum(1))
    return np.array(chosen)


def test_greedy_kcenter_matches_reference(rng):
    x = rng.standard_normal((500, 12)).astype(np.float32)
    got = greedy_kcenter(torch.from_numpy(x), 40, start=7).numpy()
    np.testing.assert_array_equal(got, _kcenter_reference(x, 40, 7))
    assert len(set(got.tolist())) == 40


def _covering_radius(x, centres):
    d = torch.cdist(torch.from_numpy(x), torch.from_numpy(centres))
    return float(d.min(1).values.max())


def test_streaming_coreset_size_determinism_and_coverage(rng):
    centres = 6 * rng.standard_normal((30, 16))
    x = (centres[rng.integers(0, 30, 5000)] + rng.standard_normal((5000, 16))).astype(np.float32)
    # clusters of very different sizes: random sampling misses the rare ones
    x[:40] += 40.0

    def run(seed):
        cs = StreamingCoreset(16, 0.05, chunk_size=1200, projection_dim=8, seed=seed)
        for i in range(0, 5000, 333):
            cs.add(x[i:i + 333])
        return cs.finish().numpy()

    bank = run(0)
    expected = 4 * round(0.05 * 1200) + round(0.05 * (5000 - 4 * 1200))
    assert bank.shape == (expected, 16)
    np.testing.assert_array_equal(bank, run(0))
    assert not np.array_equal(bank, run(1))
    rows = {r.tobytes() for r in x}
    assert all(r.tobytes() in rows for r in bank)  # selected rows, unchanged
    ours = _covering_radius(x, bank)
    randoms = [_covering_radius(x, x[rng.choice(5000, len(bank), replace=False)]) for _ in range(5)]
    assert ours < 0.8 * min(randoms), (ours, randoms)


def test_streaming_coreset_errors():
    with pytest.raises(ValueError, match="ratio"):
        StreamingCoreset(4, 0.0)
    cs = StreamingCoreset(4, 0.5)
    with pytest.raises(ValueError, match="expected"):
        cs.add(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="no features"):
        cs.finish()


# -- model directories ---------------------------------------------------------------------------

def test_model_dir_round_trip_and_checksum(tmp_path, rng):
    arrays = {"a": rng.standard_normal((3, 4)).astype(np.float32), "i": np.arange(5, dtype=np.int64)}
    d = storage.write_model_dir(tmp_path / "m", {"model": "x", "settings": {"k": 1}}, {"arrays": arrays})
    cfg = storage.read_config(d)
    assert cfg["model"] == "x" and "arrays.safetensors" in cfg["files"]
    back = storage.read_tensors(d, cfg, "arrays")
    for k in arrays:
        np.testing.assert_array_equal(back[k], arrays[k])
    # overwrite in place leaves no temporary folders behind
    storage.write_model_dir(tmp_path / "m", {"model": "x"}, {"arrays": arrays})
    assert sorted(os.listdir(tmp_path)) == ["m"]
    raw = bytearray((d / "arrays.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (d / "arrays.safetensors").write_bytes(bytes(raw))
    with pytest.raises(storage.ModelFormatError, match="checksum mismatch"):
        storage.read_tensors(d, storage.read_config(d), "arrays")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("user data")
    with pytest.raises(storage.ModelFormatError, match=f"{tmp_path / 'other'}: exists and is not .*refusing to replace"):
        storage.write_model_dir(tmp_path / "other", {"model": "x"}, {"arrays": arrays})
    assert sorted(os.listdir(tmp_path / "other")) == ["keep.txt"]
    with pytest.raises(storage.ModelFormatError, match="config.json: missing"):
        storage.read_config(tmp_path / "other")
    (tmp_path / "other" / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(storage.ModelFormatError, match="not an edge-sdk-model config"):
        storage.read_config(tmp_path / "other")


def test_saving_never_replaces_a_directory_that_is_not_a_model(tmp_path):
    # another application's folder that happens to have a config.json: refused, nothing touched
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "config.json").write_text(json.dumps({"name": "my-app", "version": 3}))
    (app / "precious.txt").write_text("irreplaceable")
    (app / "src" / "main.c").write_text("int main() {}")
    arrays = {"a": np.ones(4, np.float32)}
    with pytest.raises(storage.ModelFormatError, match=f"{app}: exists and is not an edge-sdk-model model directory"):
        storage.write_model_dir(app, {"model": "x"}, {"arrays": arrays})
    assert (app / "precious.txt").read_text() == "irreplaceable" and (app / "src" / "main.c").is_file()
    assert sorted(os.listdir(tmp_path)) == ["app"]
    # the marker without an integer version is not ours either; ours (any version) and empty are replaced
    (app / "config.json").write_text(json.dumps({"format": storage.FORMAT, "version": "1"}))
    with pytest.raises(storage.ModelFormatError, match="refusing"):
        storage.write_model_dir(app, {"model": "x"}, {"arrays": arrays})
    model = tmp_path / "model"
    model.mkdir()
    storage.write_model_dir(model, {"model": "x"}, {"arrays": arrays})
    cfg = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**cfg, "version": storage.VERSION + 1}))
    storage.write_model_dir(model, {"model": "y"}, {"arrays": arrays})
    assert storage.read_config(model)["model"] == "y"


def test_per_output_parity_tolerances_are_checked_and_applied():
    """ExportParts.tolerances: only outputs of its networks, within (0, 0.01]; the parity check
    judges that output against it and every other output against the default."""
    import torch

    from edge_sdk.converters.onnx_export import export_onnx, onnx_vs_torch
    from edge_sdk.models.export_parts import ExportParts

    class Two(torch.nn.Module):
        def forward(self, x):
            return x * 2.0, x.mean(dim=(1, 2, 3))

    def parts(tol):
        return ExportParts(networks={"n": (Two(), ["input"], ["a", "b"])}, arrays={},
                           preprocess=dict(height=4, width=4, channels=1, mean=[0.0], std=[1.0], scale=1.0),
                           postprocess={"kind": "ssim"}, calibration={"threshold": 0.5, "min": 0.0, "max": 1.0},
                           tolerances=tol)

    parts({"a": 1e-3}).validate()
    with pytest.raises(ValueError, match=r"tolerances\['c'\]: not an output"):
        parts({"c": 1e-3}).validate()
    with pytest.raises(ValueError, match=r"tolerances\['a'\]: expected a number in \(0, 0.01\]"):
        parts({"a": 0.5}).validate()
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    data = export_onnx(Two(), [torch.from_numpy(x)], ["input"], ["a", "b"], opset=17)
    res = {r.output: r for r in onnx_vs_torch("n", Two(), data, [x], ["input"], ["a", "b"], kind="random",
                                              tolerance=1e-4, tolerances={"a": 1e-3})}
    assert res["a"].tolerance == 1e-3 and res["b"].tolerance == 1e-4 and res["a"].passed and res["b"].passed
