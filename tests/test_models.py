"""PaDiM, PatchCore and MhBC-PatchCore end to end on the synthetic data set: training, scores against
float64 references, separation of good and defective images, calibration, save/load in a new
process, export parts, determinism, errors, and the train/eval CLI."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
scipy_ndimage = pytest.importorskip("scipy.ndimage")

from edge_sdk import metrics  # noqa: E402
from edge_sdk.data.synthetic import make_dataset, make_samples  # noqa: E402
from edge_sdk.models import MhBC, PaDiM, PatchCore, load_model  # noqa: E402
from edge_sdk.models.backbone import IMAGENET_MEAN, IMAGENET_STD, CustomBackbone  # noqa: E402
from edge_sdk.models.storage import ModelFormatError  # noqa: E402

torch.set_num_threads(1)
SIZE = 96
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make(name, **kw):
    base = dict(input_size=SIZE, batch_size=8)
    if name == "padim":
        return PaDiM(d=64, **base, **kw)
    if name == "patchcore":
        return PatchCore(coreset_ratio=0.1, coreset_chunk=4096, **base, **kw)
    return MhBC(k=3, **base, **kw)


@pytest.fixture(scope="module")
def synth():
    return make_samples("tile", n_train=24, n_test=16, size=SIZE, seed=0)


@pytest.fixture(scope="module")
def trained(synth):
    train, _ = synth
    return {name: make(name).fit(train, progress=False) for name in ("padim", "patchcore", "mhbc")}


# -- references ----------------------------------------------------------------------------------

def ref_preprocess(images, size):
    x = torch.from_numpy(images.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return ((x - mean) / std).float()


def ref_location_scores(model, feats):
    f = feats.astype(np.float64)
    if model.name in ("padim", "mhbc"):
        diff = (f - model.mean.astype(np.float64)).transpose(1, 2, 0)  # (L, C, N)
        from scipy.linalg import solve_triangular

        z = np.stack([solve_triangular(model.chol[l].astype(np.float64), diff[l], lower=True)
                      for l in range(diff.shape[0])])
        z = z.transpose(2, 0, 1)  # (N, L, C)
        if model.name == "padim":
            return np.sqrt((z ** 2).sum(-1))
        c = model.centroids.astype(np.float64)  # (L, K, C)
        return np.sqrt(((z[:, :, None, :] - c[None]) ** 2).sum(-1).min(-1))
    bank = model.bank.astype(np.float64)
    q = f.reshape(-1, f.shape[-1])
    d2 = (q ** 2).sum(1)[:, None] - 2 * q @ bank.T + (bank ** 2).sum(1)[None]
    return np.sqrt(np.maximum(d2.min(1), 0)).reshape(f.shape[0], -1)


def ref_maps(grid, size, sigma):
    up = torch.nn.functional.interpolate(torch.from_numpy(grid)[:, None], size=size, mode="bilinear",
                                         align_corners=False)[:, 0].numpy().astype(np.float64)
    return np.stack([scipy_ndimage.gaussian_filter(u, sigma, mode="reflect", truncate=4.0) for u in up])


# -- behaviour -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["padim", "patchcore", "mhbc"])
def test_scores_separate_good_from_defective(trained, synth, name):
    _, test = synth
    pred = trained[name].predict([s.image for s in test])
    labels = np.array([s.label for s in test])
    assert pred.scores.shape == (len(test),) and pred.maps.shape == (len(test), SIZE, SIZE)
    assert metrics.image_auroc(labels, pred.scores) >= 0.9
    assert metrics.pixel_auroc([s.mask for s in test], list(pred.maps)) >= 0.85


@pytest.mark.parametrize("name", ["padim", "patchcore", "mhbc"])
def test_predict_matches_float64_reference(trained, synth, name):
    model = trained[name]
    images = np.stack([s.image for s in synth[1][:6]])
    feats = model.features(images)
    with torch.no_grad():
        ref_feats = model.network(ref_preprocess(images, model.input_size)).numpy()
    np.testing.assert_allclose(feats, ref_feats, rtol=1e-4, atol=1e-4)
    grid = ref_location_scores(model, feats).reshape(len(images), *model.grid)
    maps = ref_maps(grid.astype(np.float32), images.shape[1:3], model.blur_sigma)
    pred = model.predict(images)
    np.testing.assert_allclose(pred.maps, maps, rtol=1e-4, atol=1e-4 * maps.max())
    expected = grid.reshape(len(images), -1).max(1) if model.image_score == "max_raw" else maps.max(axis=(1, 2))
    np.testing.assert_allclose(pred.scores, expected, rtol=1e-4)


def test_maps_follow_each_image_size(trained, synth):
    _, test = synth
    small = test[0].image[:64, :80]
    gray = test[1].image[..., 0]  # (H, W) gray input
    pred = trained["patchcore"].predict([small, gray])
    assert [m.shape for m in pred.maps] == [(64, 80), (SIZE, SIZE)]
    alone = trained["patchcore"].predict(small[None])
    np.testing.assert_allclose(pred.maps[0], alone.maps[0], rtol=1e-6)


def test_mhbc_with_one_centroid_is_mahalanobis(synth):
    train, test = synth
    model = MhBC(k=1, input_size=SIZE, image_score="max_raw").fit(train[:12], progress=False)
    feats = model.features(np.stack([s.image for s in test[:4]]))
    from edge_sdk import kernels

    maha = kernels.mahalanobis(feats, model.mean, model.chol)
    got = model.location_scores(feats)
    # the only centroid is the mean of the whitened training features, i.e. 0 up to rounding
    assert np.abs(model.centroids).max() < 1e-3
    np.testing.assert_allclose(got, maha, rtol=1e-3, atol=1e-3)


def test_patchcore_reweighting_matches_paper_formula(trained, synth):
    base = trained["patchcore"]
    model = make("patchcore", reweight=True, num_neighbors=5)
    model._ensure_network()
    model.bank, model.calibration = base.bank, base.calibration
    images = np.stack([s.image for s in synth[1][:5]])
    feats = base.features(images)
    raw = base.predict(images).scores
    got = model.predict(images).scores
    bank = base.bank.astype(np.float64)
    for i in range(len(images)):
        f = feats[i].astype(np.float64)
        d = np.sqrt(((f[:, None, :] - bank[None]) ** 2).sum(-1))  # (L, M)
        p = d.min(1).argmax()
        m_star = d[p].argmin()
        support = np.argsort(np.sqrt(((bank - bank[m_star]) ** 2).sum(1)))[:5]
        ds = np.sqrt(((bank[support] - f[p]) ** 2).sum(1))
        w = 1 - np.exp(ds[0]) / np.exp(ds).sum()
        np.testing.assert_allclose(got[i], w * d[p, m_star], rtol=1e-4)
        assert got[i] < raw[i]


def test_calibration_and_metrics_stored(trained, synth):
    model = trained["padim"]
    cal = model.calibration
    assert cal["method"] == "quantile" and cal["source"] == "held_out_train" and cal["images"] == 2
    assert cal["min"] <= cal["threshold"] <= cal["max"]
    # a labelled validation set gives the F1-optimal threshold and validation metrics
    train, test = synth
    m = make("patchcore").fit(train[:12], val_dataset=test, progress=False)
    assert m.calibration["method"] == "f1" and m.calibration["source"] == "validation"
    assert m.metrics["image_auroc"] >= 0.9 and 0 <= m.metrics["f1"] <= 1


def test_save_load_in_new_process_gives_identical_scores(trained, synth, tmp_path):
    images = np.stack([s.image for s in synth[1][:6]])
    np.save(tmp_path / "images.npy", images)
    expected = {}
    for name, model in trained.items():
        model.save(tmp_path / name)
        pred = model.predict(images)
        expected[name] = (pred.scores, pred.maps)
    code = (
        "import sys, numpy as np, torch; torch.set_num_threads(1)\n"
        "from edge_sdk.models import load_model\n"
        "d = sys.argv[1]; imgs = np.load(d + '/images.npy')\n"
        "out = {}\n"
        "for n in ('padim', 'patchcore', 'mhbc'):\n"
        "    p = load_model(d + '/' + n).predict(imgs); out[n + '_s'] = p.scores; out[n + '_m'] = p.maps\n"
        "np.savez(d + '/out.npz', **out)\n"
    )
    env = dict(os.environ, EDGE_SDK_NUM_THREADS="1", PYTHONPATH=REPO)
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=env, cwd=REPO)
    got = np.load(tmp_path / "out.npz", allow_pickle=False)
    for name, (scores, maps) in expected.items():
        np.testing.assert_array_equal(got[name + "_s"], scores)
        np.testing.assert_array_equal(got[name + "_m"], maps)
    reloaded = load_model(tmp_path / "patchcore")
    assert reloaded.calibration == trained["patchcore"].calibration
    np.testing.assert_array_equal(reloaded.bank, trained["patchcore"].bank)


def test_training_is_deterministic(synth):
    train = synth[0][:10]
    a = make("patchcore", seed=3).fit(train, progress=False)
    b = make("patchcore", seed=3).fit(train, progress=False)
    c = make("patchcore", seed=4).fit(train, progress=False)
    np.testing.assert_array_equal(a.bank, b.bank)
    assert not np.array_equal(a.bank, c.bank)
    p1, p2 = make("padim", seed=3).fit(train, progress=False), make("padim", seed=3).fit(train, progress=False)
    np.testing.assert_array_equal(p1.chol, p2.chol)


@pytest.mark.parametrize("name", ["padim", "patchcore", "mhbc"])
def test_export_parts_reproduce_features_and_describe_postprocess(trained, synth, name):
    model = trained[name]
    parts = model.export_parts()
    net, inputs, outputs = parts.networks["features"]
    assert inputs == ["input"] and outputs == ["features"]
    images = np.stack([s.image for s in synth[1][:2]])
    from edge_sdk import kernels

    pre = parts.preprocess
    x = kernels.preprocess(images, (pre["height"], pre["width"]), mean=pre["mean"], std=pre["std"],
                           channels=pre["channels"], scale=pre["scale"])
    with torch.no_grad():
        feats = net(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(feats, model.features(images))
    post = parts.postprocess
    assert post["kind"] == {"padim": "mahalanobis", "patchcore": "knn", "mhbc": "mhbc"}[name]
    assert post["grid"] == list(model.grid) and post["channels"] == feats.shape[-1]
    assert feats.shape[1] == model.grid[0] * model.grid[1]
    assert post["blur_sigma"] == 4.0 and post["map_upsample"] == "bilinear"
    assert post["image_score"] == ("max_blurred" if name == "padim" else "max_raw")
    for array_name in post["arrays"].values():
        assert parts.arrays[array_name].dtype == np.float32
    assert set(parts.calibration) == {"threshold", "min", "max"}


@pytest.mark.parametrize("name", ["padim", "patchcore", "mhbc", "mhbc_per_image", "mhbc_per_image_highpass"])
def test_runtime_reproduces_predict_from_export_parts(trained, synth, tmp_path, name):
    from edge_sdk.runtime import Runtime, available_backends

    if "onnxruntime" not in available_backends():
        pytest.skip("this build has no ONNX Runtime backend (headers missing at build time: "
                    "scripts/fetch_onnxruntime_headers.sh)")
    from edge_sdk.converters.onnx_export import export_bundle

    if name.startswith("mhbc_per_image"):  # the per-image standardization is part of the exported graph
        norm = name[len("mhbc_"):]
        name, model = "mhbc", make("mhbc", input_norm=norm, highpass_window=31).fit(synth[0][:12], progress=False)
    else:
        model = trained[name]
    if name == "patchcore":  # the re-weighted image score goes through the runtime too
        model = make("patchcore", reweight=True)
        model._ensure_network()
        model.bank, model.calibration = trained["patchcore"].bank, trained["patchcore"].calibration
    images = np.stack([s.image for s in synth[1][:6]])
    report = export_bundle(model.export_parts(), tmp_path / "b", model_type=name, real_images=images)
    got = Runtime(report.bundle, threads=1).predict(images)
    pred = model.predict(images)
    np.testing.assert_allclose(got.scores, pred.scores, rtol=1e-4)
    np.testing.assert_allclose(got.heatmaps, pred.maps, rtol=1e-4, atol=1e-4 * float(pred.maps.max()))


def test_per_image_input_norm_standardizes_inside_the_network(synth, tmp_path):
    train, test = synth
    model = make("padim", input_norm="per_image").fit(train[:12], progress=False)
    images = np.stack([s.image for s in test[:4]])
    # float64 reference: fixed preprocess, then each image's channels to zero mean / unit variance
    x = ref_preprocess(images, (SIZE, SIZE)).double()
    mu = x.mean(dim=(2, 3), keepdim=True)
    x = (x - mu) / torch.sqrt(((x - mu) ** 2).mean(dim=(2, 3), keepdim=True) + 1e-6)
    with torch.no_grad():
        expected = model.network.inner(x.float()).numpy()
    np.testing.assert_allclose(model.features(images), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    # an exposure change (gain and offset) moves the features much less than without the option
    darker = np.clip(np.round(images.astype(np.float64) * 0.7 + 20), 0, 255).astype(np.uint8)
    plain = make("padim")
    plain._ensure_network()
    rel = lambda m: np.abs(m.features(darker) - m.features(images)).mean() / np.abs(m.features(images)).mean()
    assert rel(model) < 0.5 * rel(plain)  # measured 0.11 vs 0.29 (what is left: uint8 rounding)
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.input_norm == "per_image"
    np.testing.assert_array_equal(again.predict(images).scores, model.predict(images).scores)
    with pytest.raises(ValueError, match="input_norm"):
        make("padim", input_norm="per_batch")


def test_per_image_highpass_input_norm_matches_float64_reference(synth, tmp_path):
    from scipy.ndimage import uniform_filter

    train, test = synth
    w = 31
    model = make("padim", input_norm="per_image_highpass", highpass_window=w).fit(train[:12], progress=False)
    images = np.stack([s.image for s in test[:4]])
    # float64 reference: minus the w x w box mean over the pixels inside the image (zero-padded sums
    # divided by the zero-padded count of ones), then each image's channels standardized
    x = ref_preprocess(images, (SIZE, SIZE)).double().numpy()
    sums = uniform_filter(x, size=(1, 1, w, w), mode="constant", cval=0.0)
    counts = uniform_filter(np.ones_like(x), size=(1, 1, w, w), mode="constant", cval=0.0)
    x = x - sums / counts
    mu = x.mean(axis=(2, 3), keepdims=True)
    x = (x - mu) / np.sqrt(((x - mu) ** 2).mean(axis=(2, 3), keepdims=True) + 1e-6)
    with torch.no_grad():
        expected = model.network.inner(torch.from_numpy(x).float()).numpy()
    np.testing.assert_allclose(model.features(images), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    # a linear shading ramp down the image is mostly removed (exactly only where the box lies inside),
    # which plain standardization keeps
    ramp = np.clip(np.round(images.astype(np.float64) * 0.6
                            + np.linspace(0, 80, images.shape[2])[None, None, :, None]), 0, 255).astype(np.uint8)
    plain = make("padim", input_norm="per_image").fit(train[:12], progress=False)
    rel = lambda m: np.abs(m.features(ramp) - m.features(images)).mean() / np.abs(m.features(images)).mean()
    assert rel(model) < 0.6 * rel(plain)  # measured 0.30 vs 0.76
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.input_norm == "per_image_highpass" and again.highpass_window == w
    np.testing.assert_array_equal(again.predict(images).scores, model.predict(images).scores)
    with pytest.raises(ValueError, match="highpass_window"):
        make("padim", input_norm="per_image_highpass", highpass_window=30)


def test_custom_backbone_model_round_trip(synth, tmp_path):
    sys.path.insert(0, REPO)
    from tests.test_models_parts import TinyNet

    train, test = synth
    bb = CustomBackbone(TinyNet(), ["layer1", "layer2"], module_factory="tests.test_models_parts:tiny_net")
    model = PatchCore(backbone=bb, input_size=64, coreset_ratio=0.5).fit(train[:6], progress=False)
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "backbone.safetensors").is_file()
    again = load_model(tmp_path / "m")
    images = np.stack([s.image for s in test[:3]])
    np.testing.assert_array_equal(again.predict(images).scores, model.predict(images).scores)


def test_errors_name_the_problem(trained, synth, tmp_path):
    train, test = synth
    with pytest.raises(RuntimeError, match="not trained"):
        make("padim").predict(test[0].image[None])
    with pytest.raises(TypeError, match=r"images\[0\]: expected uint8"):
        trained["padim"].predict([test[0].image.astype(np.float32)])
    bad = [s for s in test if s.label == 1][:1]
    with pytest.raises(ValueError, match="good images only"):
        make("patchcore").fit(train[:4] + bad, progress=False)
    with pytest.raises(ValueError, match="d must be in 1..152"):
        PaDiM(d=500)
    with pytest.raises(ValueError, match="image_score"):
        PatchCore(image_score="mean")
    trained["mhbc"].save(tmp_path / "m")
    with pytest.raises(ModelFormatError, match="holds a 'mhbc' model"):
        PaDiM.load(tmp_path / "m")
    raw = bytearray((tmp_path / "m" / "arrays.safetensors").read_bytes())
    raw[-1] ^= 0x55
    (tmp_path / "m" / "arrays.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ModelFormatError, match="checksum mismatch"):
        load_model(tmp_path / "m")


def test_a_pickled_tensor_file_is_named_by_load_export_and_eval(trained, tmp_path, mvtec_root, capsys):
    import hashlib
    import json
    import pickle

    from edge_sdk.cli import main

    model = tmp_path / "m"
    trained["padim"].save(model)
    tensors = model / "arrays.safetensors"
    tensors.write_bytes(pickle.dumps({"mean": np.zeros(3)}))
    cfg = json.loads((model / "config.json").read_text())
    cfg["files"]["arrays.safetensors"] = hashlib.sha256(tensors.read_bytes()).hexdigest()  # checksum passes
    (model / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFormatError, match=f"{tensors}: not a safetensors file"):
        load_model(model)
    rc = main(["export", str(model), "--out", str(tmp_path / "b")])
    assert rc == 2 and f"{tensors}: not a safetensors file" in capsys.readouterr().err
    rc = main(["eval", str(model), "--data", str(mvtec_root), "--layout", "mvtec", "--json", str(tmp_path / "e.json")])
    assert rc == 2 and f"{tensors}: not a safetensors file" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


# -- command line --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mvtec_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    make_dataset(root, kind="tile", n_train=12, n_test=8, size=64, seed=1)
    return root


def test_cli_train_and_eval(mvtec_root, tmp_path, capsys):
    from edge_sdk.cli import main

    out = tmp_path / "model"
    rc = main(["train", "--model", "patchcore", "--data", str(mvtec_root), "--layout", "mvtec", "--category",
               "tile", "--out", str(out), "--input-size", "64", "--threads", "1", "--no-progress"])
    assert rc == 0 and (out / "config.json").is_file()
    js = tmp_path / "metrics.json"
    rc = main(["eval", str(out), "--data", str(mvtec_root), "--layout", "mvtec", "--json", str(js),
               "--heatmaps", str(tmp_path / "heat"), "--num-heatmaps", "3", "--no-progress"])
    assert rc == 0
    res = json.loads(js.read_text())
    for key in ("image_auroc", "pixel_auroc", "pro", "f1", "auprc", "accuracy", "tpr", "tnr"):
        assert isinstance(res[key], float) and 0.0 <= res[key] <= 1.0, key
    assert res["image_auroc"] >= 0.8 and res["images"] == 8
    from PIL import Image

    pngs = sorted(os.listdir(tmp_path / "heat"))
    assert len(pngs) == 3
    from edge_sdk.heatmap_png import MIN_PANEL

    with Image.open(tmp_path / "heat" / pngs[0]) as im:  # three labelled panels (enlarged) and a colour bar
        assert im.size[0] > 3 * MIN_PANEL and im.size[1] > MIN_PANEL


def test_antialiased_resize_is_the_default_saved_and_absent_from_older_models(synth, tmp_path):
    train, test = synth
    model = make("padim").fit(train[:12], progress=False)
    assert model.antialias is True
    big = np.repeat(np.repeat(test[0].image, 3, axis=0), 3, axis=1)[None]  # 3x the input size: shrunk
    x = torch.from_numpy(big.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    x = torch.nn.functional.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=True)
    x = (x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    with torch.no_grad():
        expected = model.network(x.float()).numpy()
    np.testing.assert_allclose(model.features(big), expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert model.export_parts().preprocess["antialias"] is True
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.antialias is True
    np.testing.assert_array_equal(again.predict(big).scores, model.predict(big).scores)
    # a model directory written before the option existed was trained on plain bilinear resizing
    cfg_path = tmp_path / "m" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg["settings"]["antialias"]
    cfg_path.write_text(json.dumps(cfg))
    old = load_model(tmp_path / "m")
    assert old.antialias is False
    assert not np.allclose(old.features(big), model.features(big))
    with pytest.raises(TypeError, match="antialias"):
        make("padim", antialias="no")


def test_cli_train_input_norm(mvtec_root, tmp_path):
    import argparse

    from edge_sdk.cli import main
    from edge_sdk.models import load_model
    from edge_sdk.commands import train
    from edge_sdk.models.base import INPUT_NORM_MODES

    out = tmp_path / "model"
    rc = main(["train", "--model", "padim", "--data", str(mvtec_root), "--layout", "mvtec", "--category", "tile",
               "--out", str(out), "--input-size", "64", "--threads", "1", "--no-progress", "--d", "20",
               "--input-norm", "per_image_highpass", "--highpass-window", "31"])
    assert rc == 0
    model = load_model(out)
    assert model.input_norm == "per_image_highpass" and model.highpass_window == 31
    assert model.antialias is True
    parser = argparse.ArgumentParser()
    train.register(parser.add_subparsers())
    train_parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    choices = next(a.choices for a in train_parser._actions if a.dest == "input_norm")
    assert tuple(choices) == INPUT_NORM_MODES  # the CLI offers exactly the models' modes
    rc = main(["train", "--model", "padim", "--data", str(mvtec_root), "--layout", "mvtec", "--category", "tile",
               "--out", str(tmp_path / "plain"), "--input-size", "64", "--threads", "1", "--no-progress", "--d", "20",
               "--no-antialias"])
    assert rc == 0 and load_model(tmp_path / "plain").antialias is False


def test_cli_reports_user_errors(tmp_path, mvtec_root, capsys):
    from edge_sdk.cli import main

    rc = main(["train", "--model", "padim", "--data", str(tmp_path / "nope"), "--layout", "mvtec",
               "--out", str(tmp_path / "m")])
    assert rc == 2 and "not found" in capsys.readouterr().err
    empty = tmp_path / "empty" / "tile" / "train" / "good"
    empty.mkdir(parents=True)
    rc = main(["train", "--model", "padim", "--data", str(tmp_path / "empty"), "--layout", "mvtec",
               "--out", str(tmp_path / "m")])
    assert rc == 2 and "error" in capsys.readouterr().err
    rc = main(["eval", str(tmp_path / "no_model"), "--data", str(mvtec_root), "--layout", "mvtec",
               "--json", str(tmp_path / "x.json")])
    assert rc == 2 and "not a model directory" in capsys.readouterr().err
    rc = main(["train", "--model", "padim", "--data", str(mvtec_root), "--layout", "mvtec", "--d", "9999",
               "--out", str(tmp_path / "m")])
    assert rc == 2 and "d must be in" in capsys.readouterr().err


def test_patchcore_reweighting_with_float16_bank(trained, synth):
    # A float16 bank must serve as the reweighting query source too (the support-set query is
    # a bank row, widened to float32 for the kernel).
    base = trained["patchcore"]
    model = make("patchcore", reweight=True, num_neighbors=5, bank_dtype="float16")
    model._ensure_network()
    model.bank, model.calibration = base.bank.astype(np.float16), base.calibration
    images = np.stack([s.image for s in synth[1][:3]])
    ref = make("patchcore", reweight=True, num_neighbors=5)
    ref._ensure_network()
    ref.bank, ref.calibration = base.bank.astype(np.float16).astype(np.float32), base.calibration
    np.testing.assert_allclose(model.predict(images).scores, ref.predict(images).scores, rtol=1e-5)


def test_train_and_export_never_replace_a_directory_that_is_not_theirs(trained, tmp_path, mvtec_root, capsys):
    from edge_sdk.cli import main

    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "config.json").write_text('{"name": "my-app"}')
    (app / "precious.txt").write_text("keep")
    rc = main(["train", "--model", "padim", "--data", str(mvtec_root), "--layout", "mvtec", "--d", "16",
               "--input-size", "64", "--threads", "1", "--no-progress", "--out", str(app)])
    assert rc == 2 and f"{app}: exists and is not an edge-sdk-model model directory" in capsys.readouterr().err
    model = tmp_path / "m"
    trained["padim"].save(model)
    rc = main(["export", str(model), "--out", str(app), "--overwrite"])
    assert rc == 2 and f"{app}: exists and is not an edge-sdk bundle" in capsys.readouterr().err
    assert sorted(os.listdir(app)) == ["config.json", "precious.txt", "src"] and (app / "precious.txt").read_text() == "keep"
