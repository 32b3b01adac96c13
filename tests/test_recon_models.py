"""ResGANAD and GRD-Net: architecture, training pieces, scoring path through the kernels, regions,
saving, export. Tiny configurations, one thread."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from scipy import ndimage  # noqa: E402

from edge_sdk import kernels  # noqa: E402
from edge_sdk.data import Sample  # noqa: E402
from edge_sdk.models import recon_nets, recon_train  # noqa: E402
from edge_sdk.models.recon_abc import ABCEncoder  # noqa: E402
from edge_sdk.models.grdnet import GRDNet  # noqa: E402
from edge_sdk.models.recon_config import PRESETS, make_config  # noqa: E402
from edge_sdk.models.resganad import ResGANAD  # noqa: E402
from edge_sdk.models.ssim_loss import ssim as torch_ssim  # noqa: E402
from edge_sdk.models.storage import ModelFormatError  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

def _stripes(rng, n, size=40):
    """Good patches: smooth horizontal stripes with a random phase, plus noise (uint8)."""
    y = np.arange(size)[:, None]
    out = []
    for _ in range(n):
        img = 128 + 60 * np.sin(y / 4.0 + rng.uniform(0, 6.28)) + rng.normal(0, 3, (size, size))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def _samples(images):
    return [Sample(image=im, mask=None, label=0, defect_type="good", path=None) for im in images]


@pytest.fixture(scope="module")
def trained(recon_tiny):
    rng = np.random.default_rng(0)
    torch.set_num_threads(1)
    data = _samples(_stripes(rng, 24))
    res = ResGANAD("small", seed=1, **recon_tiny).fit(data, epochs=2, progress=False, val_fraction=0.2)
    grd = GRDNet("small", seed=1, **recon_tiny).fit(data, epochs=1, progress=False, val_fraction=0.2)
    return res, grd, data


# ------------------------------------------------------------------------------------ architecture

def test_full_preset_is_the_published_abc_network():
    from edge_sdk.models import recon_abc

    cfg = make_config("full")
    assert (cfg.arch, cfg.size, cfg.stages, cfg.latent, cfg.top, cfg.bottleneck) == ("abc", 256, 4, 64, 1024, "dense")
    with torch.device("meta"):
        enc, dec = recon_nets.make_coder(cfg.arch, channels=1, size=256, filters=cfg.filters, stages=4,
                                         blocks=cfg.blocks, latent=64, top=1024)
        x = torch.empty(2, 1, 256, 256)
        feats = enc.features(x)
        out = dec(enc(x))
    assert tuple(feats.shape) == (2, 1024, 16, 16) and tuple(out.shape) == (2, 1, 256, 256)
    blocks = list(enc.stages)
    assert [type(b).__name__ for b in blocks] == ["BlockA", "BlockB", "BlockC"] * 4
    for s in range(4):
        a, b, c = blocks[3 * s: 3 * s + 3]
        width = cfg.filters * 2**s
        # A: three 3x3 convolutions in a row beside one 1x1; B: three 3x3 beside its input (A's output);
        # C: three 3x3 (the last strided) beside a 1x1 -> strided 3x3 -> 1x1 downsampling block.
        assert [m[0].kernel_size for m in a.chain] == [(3, 3)] * 3 and a.side[0].kernel_size == (1, 1)
        assert b.out_channels == a.out_channels + width
        assert [m[0].stride for m in c.chain] == [(1, 1), (1, 1), (2, 2)]
        assert [m[0].kernel_size for m in c.sample] == [(1, 1), (3, 3), (1, 1)] and c.sample[1][0].stride == (2, 2)
    assert isinstance(dec, recon_abc.ABCDecoder)
    assert any(isinstance(m, torch.nn.ConvTranspose2d) for m in dec.modules())


def test_abc_blocks_concatenate_their_branches(rng):
    from edge_sdk.models.recon_abc import BlockA, BlockB, BlockC

    torch.manual_seed(0)
    x = torch.from_numpy(rng.standard_normal((2, 3, 8, 8), dtype=np.float32))
    a, b, c = BlockA(3, 4).eval(), BlockB(8, 4).eval(), BlockC(12, 4, 12).eval()
    with torch.no_grad():
        ya = a(x)
        np.testing.assert_array_equal(ya[:, :4].numpy(), a.chain(x).numpy())
        np.testing.assert_array_equal(ya[:, 4:].numpy(), a.side(x).numpy())
        yb = b(ya)
        np.testing.assert_array_equal(yb[:, 4:].numpy(), ya.numpy())
        yc = c(yb)
    assert tuple(yc.shape) == (2, 16, 4, 4)
    np.testing.assert_array_equal(yc[:, 4:].numpy(), c.sample(yb).detach().numpy())


def test_resnetv2_variant_shapes():
    # Model dirs saved before the A/B/C network carry no `arch` and load as this variant.
    from edge_sdk.models.recon_config import ReconConfig

    assert ReconConfig().arch == "resnetv2"
    kw = dict(channels=1, size=256, filters=32, stages=4, blocks=3, latent=64)
    with torch.device("meta"):
        enc = recon_nets.Encoder(**kw)
        dec = recon_nets.Decoder(**kw)
        x = torch.empty(2, 1, 256, 256)
        feats = enc.features(x)
        out = dec(enc(x))
        zc = recon_nets.Encoder(**kw, bottleneck="conv")(x)
        outc = recon_nets.Decoder(**kw, bottleneck="conv")(zc)
        d_logit, d_feat = recon_nets.Discriminator(1, 256, 64)(x)
    assert tuple(feats.shape) == (2, 1024, 16, 16) and tuple(out.shape) == (2, 1, 256, 256)
    assert tuple(zc.shape) == (2, 32, 8, 8) and tuple(outc.shape) == (2, 1, 256, 256)
    assert tuple(d_logit.shape) == (2,) and tuple(d_feat.shape) == (2, 512, 16, 16)
    blocks = list(enc.stages)
    assert len(blocks) == 12
    for s in range(4):
        first, mid, last = blocks[3 * s: 3 * s + 3]
        assert first.project and isinstance(first.shortcut, torch.nn.Conv2d) and first.shortcut.stride == (1, 1)
        assert isinstance(mid.shortcut, torch.nn.Identity)
        assert isinstance(last.shortcut, torch.nn.MaxPool2d) and last.body[3].stride == (2, 2)


def test_decoder_output_is_an_image_in_unit_range(rng):
    g = recon_nets.Generator(channels=1, size=32, filters=2, stages=2, blocks=2, latent=8).eval()
    x = torch.from_numpy(rng.random((3, 1, 32, 32), dtype=np.float32))
    with torch.no_grad():
        x_hat, z, z_hat = g(x)
    assert x_hat.shape == x.shape and z.shape == z_hat.shape == (3, 8)
    assert float(x_hat.min()) >= 0 and float(x_hat.max()) <= 1


def test_geometry_errors_are_named():
    with pytest.raises(ValueError, match="size: 40 must be a positive multiple of 16"):
        recon_nets.Encoder(channels=1, size=40, filters=2, stages=4, blocks=1, latent=8)
    with pytest.raises(ValueError, match="bottleneck"):
        make_config("small", bottleneck="sparse")
    with pytest.raises(ValueError, match="abc architecture has a dense bottleneck"):
        make_config("full", bottleneck="conv")
    with pytest.raises(ValueError, match="arch"):
        make_config("small", arch="vgg")
    with pytest.raises(ValueError, match="preset"):
        ResGANAD("medium")
    with pytest.raises(ValueError, match="unknown setting"):
        ResGANAD("small", filtres=3)
    with pytest.raises(ValueError, match="rotation"):
        make_config("small", rotation=math.pi)


# ----------------------------------------------------------------------------------- training pieces

def test_warm_restart_schedule_peaks_decay_by_a_third():
    cycle = 10
    f = [recon_train.restart_factor(t, cycle, 1 / 3) for t in range(40)]
    assert f[0] == 1 and f[10] == pytest.approx(1 / 3) and f[20] == pytest.approx(1 / 9) and f[30] == pytest.approx(1 / 27)
    assert f[5] == pytest.approx(0.5) and f[15] == pytest.approx(0.5 / 3)
    assert all(a > b for a, b in zip(f[:9], f[1:10]))  # decays within a cycle


def test_training_follows_the_schedule(trained):
    res, _, _ = trained
    # 19 training images (5 held out), batch 8 -> 3 steps an epoch; lr logged after each epoch
    c = res.config
    steps = math.ceil(19 / c.batch_size)
    for h in res.history:
        t = (h["epoch"] + 1) * steps
        assert h["lr"] == pytest.approx(c.lr * recon_train.restart_factor(t, c.cycle_epochs * steps, c.restart_decay))


def test_augmentation_flips_vertically_and_rotates_within_bounds():
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 1, 2] = 1.0
    flipped = recon_train.augment_geometry(x, gen, 0.0, 1.0)
    torch.testing.assert_close(flipped, x.flip(-2))  # upside down, never left-right
    bar = torch.zeros(64, 1, 65, 65)
    bar[:, :, 31:34, 8:57] = 1.0
    out = recon_train.augment_geometry(bar, gen, math.pi / 8, 0.0)
    yy, xx = torch.meshgrid(torch.arange(65.0), torch.arange(65.0), indexing="ij")
    angles = []
    for img in out[:, 0]:
        w = img / img.sum()
        my, mx = (w * yy).sum(), (w * xx).sum()
        cyy, cxx, cxy = (w * (yy - my) ** 2).sum(), (w * (xx - mx) ** 2).sum(), (w * (yy - my) * (xx - mx)).sum()
        angles.append(0.5 * math.atan2(2 * float(cxy), float(cxx - cyy)))
    angles = np.abs(angles)
    assert angles.max() <= math.pi / 8 + 0.03 and angles.max() > math.pi / 16


def test_losses_match_references(rng):
    x = torch.from_numpy(rng.random((2, 1, 8, 8)))
    y = torch.from_numpy(rng.random((2, 1, 8, 8)))
    m = torch.from_numpy((rng.random((2, 1, 8, 8)) > 0.7).astype(np.float64))
    ref = (((x - y) ** 2) * m).sum() / m.sum()
    assert float(recon_train.masked_l2(x, y, m)) == pytest.approx(float(ref))
    assert float(recon_train.masked_l2(x, y, torch.zeros_like(m))) == 0.0
    p = torch.from_numpy(rng.uniform(0.01, 0.99, (2, 1, 8, 8)))
    bce = F.binary_cross_entropy(p, m)
    assert float(recon_train.focal_loss(p, m, gamma=0.0)) == pytest.approx(float(bce), rel=1e-6)
    pn, mn = p.numpy(), m.numpy()
    pt = np.where(mn > 0.5, pn, 1 - pn)
    assert float(recon_train.focal_loss(p, m, gamma=2.0)) == pytest.approx(float((-(1 - pt) ** 2 * np.log(pt)).mean()))


def test_training_is_deterministic_and_learns(recon_tiny, rng):
    data = torch.from_numpy(np.stack(
        [kernels.preprocess(np.stack(_stripes(np.random.default_rng(3), 16))[..., None], (32, 32), mean=[0.0],
                            std=[1.0], channels=1)])[0])
    a = ResGANAD("small", seed=4, **recon_tiny)
    b = ResGANAD("small", seed=4, **recon_tiny)
    ha = a.train_patches(data, epochs=6, progress=False)
    hb = b.train_patches(data, epochs=6, progress=False)
    assert ha == hb
    for (k, va), vb in zip(a.generator.state_dict().items(), b.generator.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=k)
    assert ha[-1]["con"] < ha[0]["con"]


# ------------------------------------------------------------------------------------- scoring

def test_resganad_scores_and_maps_follow_the_kernel_path(trained, rng):
    res, _, data = trained
    imgs = [d.image for d in data[:4]]
    pred = res.predict(imgs)
    x = kernels.preprocess(np.stack(imgs)[..., None], (32, 32), mean=[0.0], std=[1.0], channels=1)
    with torch.no_grad():
        x_hat = res.reconstructor()(torch.from_numpy(x)).numpy()
    # independent: SSIM in torch (tested equal to the kernel) and pytorch_msssim
    pm = pytest.importorskip("pytorch_msssim")
    ref = 1 - pm.ssim(torch.from_numpy(x), torch.from_numpy(x_hat), data_range=1.0, size_average=False).numpy()
    np.testing.assert_allclose(pred.scores, ref, atol=1e-5)
    np.testing.assert_allclose(pred.scores, 1 - torch_ssim(torch.from_numpy(x), torch.from_numpy(x_hat)).numpy(), atol=1e-5)
    ref_maps = F.interpolate(torch.from_numpy(np.abs(x - x_hat)), size=(40, 40), mode="bilinear",
                             align_corners=False).numpy()[:, 0]
    np.testing.assert_allclose(pred.maps, ref_maps, atol=1e-5)
    heat = res.heatmaps(imgs)
    lo = ref_maps.reshape(4, -1).min(1)[:, None, None]
    hi = ref_maps.reshape(4, -1).max(1)[:, None, None]
    np.testing.assert_allclose(heat, (ref_maps - lo) / (hi - lo), atol=1e-4)
    # optional smoothing: Gaussian blur after resizing, as scipy does it
    res.config.blur_sigma = 2.0
    try:
        blurred = res.predict(imgs).maps
    finally:
        res.config.blur_sigma = 0.0
    ref_blur = np.stack([ndimage.gaussian_filter(m.astype(np.float64), 2.0, mode="reflect", truncate=4.0) for m in ref_maps])
    np.testing.assert_allclose(blurred, ref_blur, atol=1e-5)


def test_grdnet_score_is_max_of_smoothed_mask(trained):
    _, grd, data = trained
    imgs = [d.image for d in data[:3]]
    roi = np.zeros((32, 32), np.float32)
    roi[4:28, 4:28] = 1.0
    grd.set_roi(roi)
    try:
        pred = grd.predict(imgs)
        x = torch.from_numpy(kernels.preprocess(np.stack(imgs)[..., None], (32, 32), mean=[0.0], std=[1.0], channels=1))
        with torch.no_grad():
            p = torch.sigmoid(grd.unet(x, grd.reconstructor()(x)))[:, 0].numpy() * roi
    finally:
        grd.set_roi(None)
    smooth = [ndimage.gaussian_filter(m.astype(np.float64), 4.0, mode="reflect", truncate=4.0) for m in p]
    np.testing.assert_allclose(pred.scores, [s.max() for s in smooth], atol=1e-6)
    ref_maps = F.interpolate(torch.from_numpy(p[:, None]), size=(40, 40), mode="bilinear", align_corners=False).numpy()[:, 0]
    np.testing.assert_allclose(pred.maps, ref_maps, atol=1e-6)
    assert pred.maps.shape == (3, 40, 40)
    with pytest.raises(ValueError, match="roi: expected shape"):
        grd.set_roi(np.ones((8, 8)))


def test_input_errors(recon_tiny, trained):
    res, _, _ = trained
    with pytest.raises(TypeError, match=r"images\[0\]: expected uint8"):
        res.predict([np.zeros((40, 40), np.float32)])
    rgb = np.zeros((40, 40, 3), np.uint8)
    rgb[..., 0] = 10
    with pytest.raises(ValueError, match=r"images\[0\]: colour image for a grayscale model"):
        res.predict([rgb])
    gray3 = np.repeat(np.full((40, 40, 1), 7, np.uint8), 3, axis=2)
    np.testing.assert_array_equal(res.predict([gray3]).scores, res.predict([gray3[..., 0]]).scores)
    with pytest.raises(RuntimeError, match="not trained"):
        ResGANAD("small", **recon_tiny).predict([gray3])
    # one (H, W, C) image given as an array is refused, not judged as 40 gray images of 40 x C
    for c in (1, 3, 4):
        with pytest.raises(ValueError, match=rf"shape \(40, 40, {c}\) looks like one image"):
            res.predict(np.zeros((40, 40, c), np.uint8))
    assert len(res.predict(np.zeros((2, 40, 40), np.uint8)).scores) == 2  # a gray batch is still one
    bad = _samples(_stripes(np.random.default_rng(0), 2))
    bad[1].label = 1
    with pytest.raises(ValueError, match="good images only"):
        ResGANAD("small", **recon_tiny).fit(bad, epochs=1, progress=False)


# ---------------------------------------------------------------------------- save, load, export

@pytest.mark.parametrize("which", [0, 1])
def test_save_load_round_trip(trained, tmp_path, which):
    model = trained[which]
    imgs = [d.image for d in trained[2][:3]]
    model.save(tmp_path / "m")
    again = type(model).load(tmp_path / "m")
    np.testing.assert_array_equal(again.predict(imgs).scores, model.predict(imgs).scores)
    assert again.calibration == model.calibration
    other = ResGANAD if which else GRDNet
    with pytest.raises(ModelFormatError, match="not"):
        other.load(tmp_path / "m")
    f = tmp_path / "m" / "generator.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="checksum"):
        type(model).load(tmp_path / "m")


def _onnx_run(module, inputs, names, outputs, path):
    ort = pytest.importorskip("onnxruntime")
    torch.onnx.export(module, tuple(torch.from_numpy(a) for a in inputs), str(path), input_names=names,
                      output_names=outputs, opset_version=17, dynamo=False,
                      dynamic_axes={n: {0: "n"} for n in names + outputs})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, dict(zip(names, inputs)))[0]


def test_export_parts_reproduce_predict_through_onnx(trained, tmp_path):
    res, grd, data = trained
    imgs = [d.image for d in data[:5]]
    x = kernels.preprocess(np.stack(imgs)[..., None], (32, 32), mean=[0.0], std=[1.0], channels=1)
    parts = res.export_parts()
    assert parts.postprocess["kind"] == "ssim" and list(parts.networks) == ["reconstructor"]
    assert parts.preprocess == {"height": 32, "width": 32, "channels": 1, "mean": [0.0], "std": [1.0],
                                "scale": 1 / 255, "resize": "bilinear", "antialias": False}
    module, ins, outs = parts.networks["reconstructor"]
    assert not any(isinstance(m, recon_nets.Discriminator) for m in module.modules())
    assert sum(isinstance(m, (recon_nets.Encoder, ABCEncoder)) for m in module.modules()) == 1  # second encoder not exported
    x_hat = _onnx_run(module, [x], ins, outs, tmp_path / "rec.onnx")
    s = 1 - kernels.ssim(x, x_hat, **parts.postprocess["ssim"])
    np.testing.assert_allclose(s, res.predict(imgs).scores, rtol=1e-4)
    gparts = grd.export_parts()
    assert gparts.postprocess["kind"] == "mask" and list(gparts.networks) == ["reconstructor", "mask_head"]
    m1, i1, o1 = gparts.networks["reconstructor"]
    m2, i2, o2 = gparts.networks["mask_head"]
    rec = _onnx_run(m1, [x], i1, o1, tmp_path / "g1.onnx")
    mask = _onnx_run(m2, [x, rec], i2, o2, tmp_path / "g2.onnx")
    sig = gparts.postprocess["score_blur_sigma"]
    score = kernels.gaussian_blur(np.ascontiguousarray(mask[:, 0]), sig).reshape(5, -1).max(1)
    np.testing.assert_allclose(score, grd.predict(imgs).scores, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------ regions

def test_regions_calibrated_and_decided(recon_tiny, tmp_path):
    from edge_sdk.data import load_dataset
    from edge_sdk.data.vial_strip import make_vial_strip_dataset
    from edge_sdk.regions import RegionLayout, RegionPatches, decide

    root = make_vial_strip_dataset(str(tmp_path), count=3, products=2, acquisitions=1, region_size=32, seed=1,
                                   progress=False)
    lay = RegionLayout.load(root)
    train = RegionPatches(load_dataset(root, "mvtec", "train", gray=True), lay)
    model = ResGANAD("small", seed=0, **recon_tiny).fit(train, epochs=1, progress=False, val_fraction=0.34)
    layout = model.region_layout()
    assert layout.names == lay.names
    assert set(model.region_methods.values()) <= {"quantile", "image_threshold"}
    parts = model.export_parts()
    assert [r["name"] for r in parts.regions] == lay.names
    assert parts.postprocess["frame"] == {"width": 160, "height": 128}
    test = load_dataset(root, "mvtec", "test", gray=True)
    frames = [test[i].image for i in range(len(test))]
    out = model.predict_frames(frames)
    patches = [p for f in frames for p in lay.cut(f)]
    np.testing.assert_allclose(out["scores"].ravel(), model.predict(patches).scores)
    reg, prod = decide(out["scores"], layout.thresholds())
    np.testing.assert_array_equal(out["region_rejects"], reg)
    np.testing.assert_array_equal(out["product_rejects"], reg.any(1))


def test_presets_documented():
    assert set(PRESETS) == {"small", "full"}
    small = make_config("small")
    assert small.size <= 128 and small.filters <= 8 and small.lr == 1e-3
    full = make_config("full")
    assert full.lr == 1.5e-4 and full.batch_size == 32 and full.restart_decay == pytest.approx(1 / 3)


def test_registry_builds_models_and_finds_region_layouts(tmp_path):
    import argparse

    from edge_sdk.data import load_dataset
    from edge_sdk.data.vial_strip import make_vial_strip_dataset
    from edge_sdk.commands import _model_options as registry
    from edge_sdk.regions import RegionPatches

    p = argparse.ArgumentParser()
    p.add_argument("--model")
    p.add_argument("--data")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--input-size", type=int)
    registry.add_recon_arguments(p)
    args = p.parse_args(["--model", "grdnet", "--data", str(tmp_path), "--epochs", "3", "--filters", "2",
                         "--input-size", "32"])
    model = registry.build_recon_model(args)
    assert isinstance(model, GRDNet) and model.config.epochs == 3 and model.config.filters == 2
    assert model.config.size == 32 and registry.is_recon("resganad") and not registry.is_recon("padim")
    root = make_vial_strip_dataset(str(tmp_path), count=1, products=2, acquisitions=1, region_size=16, seed=0,
                                   progress=False)
    train = load_dataset(str(tmp_path), "mvtec", "train", gray=True)
    wrapped = registry.with_regions(train, args)
    assert isinstance(wrapped, RegionPatches) and len(wrapped) == 20
    assert registry.with_regions(train, p.parse_args(["--data", str(tmp_path), "--no-regions"])) is train
    (tmp_path / "bad.json").write_text("{}")
    from edge_sdk.cli import UserError
    with pytest.raises(UserError, match="bad.json"):
        registry.with_regions(train, p.parse_args(["--data", root, "--regions", str(tmp_path / "bad.json")]))
