"""The acceptance test of the runtime: PaDiM, PatchCore and MhBC-PatchCore trained in PyTorch,
exported to bundles and run by the C++ runtime give the model's own scores to 1e-4 relative,
identical verdicts, and heatmaps within 1e-3 after the bundle's normalization.

On the built-in synthetic set (runs in CI) and on the Magnetic Tile Defect test split (skips
without the data; EDGE_SDK_MTD or ../shared/datasets/magnetic_tile)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import edge_sdk
from edge_sdk import cli
from edge_sdk.converters import export_bundle
from edge_sdk.converters.verify import HEATMAP_ABS_TOLERANCE, SCORE_REL_TOLERANCE, compare

from edge_sdk import models  # noqa: E402

pytestmark = pytest.mark.onnxruntime

SIZE = 96
REPO = Path(__file__).resolve().parents[1]


def make(name, size=SIZE, **kw):
    base = dict(input_size=size, batch_size=8)
    if name == "padim":
        return models.PaDiM(d=64, **base, **kw)
    if name == "patchcore":
        return models.PatchCore(coreset_ratio=0.1, coreset_chunk=4096, **base, **kw)
    return models.MhBC(k=3, **base, **kw)


@pytest.fixture(scope="module")
def synth():
    from edge_sdk.data.synthetic import make_samples

    torch.set_num_threads(1)
    return make_samples("tile", n_train=24, n_test=16, size=SIZE, seed=0)


@pytest.fixture(scope="module")
def trained(synth):
    train, _ = synth
    return {name: make(name).fit(train, progress=False) for name in ("padim", "patchcore", "mhbc")}


def check(fig):
    print(json.dumps({k: fig[k] for k in ("images", "max_score_rel_diff", "verdict_agreement", "max_heatmap_abs_diff",
                                          "max_heatmap_raw_rel_diff")}))
    assert fig["unjudged"] == 0, fig["errors"]
    assert fig["max_score_rel_diff"] <= SCORE_REL_TOLERANCE
    assert fig["verdict_agreement"] == 1.0
    assert fig["max_heatmap_abs_diff"] <= HEATMAP_ABS_TOLERANCE
    assert fig["passed"]


@pytest.mark.parametrize("name", ["padim", "patchcore", "mhbc"])
def test_synthetic_parity(trained, synth, name, tmp_path):
    model = trained[name]
    _, test = synth
    out = export_bundle(model.export_parts(), tmp_path / "bundle", model_type=model.name).bundle
    rt = edge_sdk.Runtime(out, threads=1)
    images = [s.image for s in test]
    images += [np.ascontiguousarray(test[0].image[:80, :70])]  # another size: resized, map at its own size
    # larger: shrunk by the antialiased resize both sides use (the models' default)
    assert model.antialias and rt.manifest["input"]["antialias"] is True
    images += [np.ascontiguousarray(np.repeat(np.repeat(test[1].image, 2, axis=0), 2, axis=1)[:170, :150])]
    fig = compare(rt, model, images)
    check(fig)
    labels = np.array([s.label for s in test])
    assert set(labels) == {0, 1}


def test_patchcore_reweighting_parity(trained, synth, tmp_path):
    model = trained["patchcore"]
    model.reweight = True
    try:
        out = export_bundle(model.export_parts(), tmp_path / "bundle", model_type=model.name).bundle
        fig = compare(edge_sdk.Runtime(out, threads=1), model, [s.image for s in synth[1]])
    finally:
        model.reweight = False
    check(fig)


def test_cli_export_and_verify(trained, synth, tmp_path, capsys):
    from edge_sdk.data.synthetic import make_dataset

    model_dir = tmp_path / "model"
    trained["padim"].save(model_dir)
    root = make_dataset(tmp_path / "data", kind="tile", n_train=4, n_test=6, size=SIZE, seed=1)
    bundle = tmp_path / "bundle"
    assert cli.main(["export", str(model_dir), "--out", str(bundle), "--data", str(root), "--layout", "mvtec",
                     "--real", "3", "--archive", str(tmp_path / "model.edgebundle")]) == 0
    text = capsys.readouterr().out
    assert "on 4 random input(s)" in text and "on 3 real input(s)" in text and "REFUSED" not in text
    out_json = tmp_path / "parity.json"
    code = cli.main(["verify", str(tmp_path / "model.edgebundle"), "--against", str(model_dir), "--data", str(root),
                     "--layout", "mvtec", "--threads", "1", "--json", str(out_json)])
    fig = json.loads(out_json.read_text())
    assert code == 0 and fig["passed"]
    assert fig["images"] == 6 and fig["verdict_agreement"] == 1.0
    assert {"max_score_rel_diff", "verdict_agreement", "max_heatmap_abs_diff"} <= set(fig)
    assert cli.main(["verify", str(bundle), "--against", str(tmp_path / "missing"), "--data", str(root),
                     "--layout", "mvtec"]) == 2


def _mtd_root():
    env = os.environ.get("EDGE_SDK_MTD")
    cands = [Path(env)] if env else [REPO.parent / "shared" / "datasets" / "magnetic_tile",
                                     REPO.parent.parent / "shared" / "datasets" / "magnetic_tile"]  # from a worktree
    return next((c for c in cands if (c / "MT_Free").is_dir()), None)


@pytest.mark.slow
@pytest.mark.skipif(_mtd_root() is None, reason="Magnetic Tile Defect data not found (EDGE_SDK_MTD or "
                                                "../shared/datasets/magnetic_tile)")
@pytest.mark.parametrize("name", ["padim", "patchcore", "mhbc"])
def test_mtd_parity(name, tmp_path):
    from edge_sdk.data import load_dataset

    torch.set_num_threads(1)
    root = _mtd_root()
    train = load_dataset(root, "mtd", "train")
    test = load_dataset(root, "mtd", "test")
    # 128 x 128 input and a 1 % coreset keep the run to minutes on a small CPU; parity does not
    # depend on the model's size.
    kw = {"coreset_ratio": 0.01} if name == "patchcore" else {}
    base = dict(input_size=128, batch_size=8)
    model = {"padim": lambda: models.PaDiM(d=64, **base), "mhbc": lambda: models.MhBC(k=3, **base),
             "patchcore": lambda: models.PatchCore(coreset_chunk=4096, **base, **kw)}[name]()
    model.fit(train, progress=False)
    out = export_bundle(model.export_parts(), tmp_path / "bundle", model_type=model.name,
                        real_images=[train[i].image for i in range(4)]).bundle
    rt = edge_sdk.Runtime(out, threads=int(os.environ.get("EDGE_SDK_NUM_THREADS", "0") or 0))
    fig = compare(rt, model, [test[i].image for i in range(len(test))], progress=True)
    (REPO / "out").mkdir(exist_ok=True)
    (REPO / "out" / f"mtd_parity_{name}.json").write_text(json.dumps(fig, indent=2))
    check(fig)
