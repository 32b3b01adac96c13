"""`edge-sdk synth vial-strip` -> `train --model resganad/grdnet` -> `eval` -> `export` -> `verify`, on a
tiny synthetic strip set with its region layout (tiny network, one epoch, one thread)."""

import json

import pytest

pytest.importorskip("torch")

from edge_sdk.cli import main  # noqa: E402

TINY = ["--input-size", "32", "--filters", "2", "--epochs", "1", "--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def strips(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    assert main(["synth", "vial-strip", "--out", str(out), "--count", "3", "--products", "4", "--acquisitions", "1",
                 "--region-size", "32", "--seed", "2"]) == 0
    return out / "vial_strip"


def test_train_eval_export_verify_resganad(strips, tmp_path, capsys):
    from edge_sdk._native import core

    model = tmp_path / "m"
    assert main(["train", "--model", "resganad", "--data", str(strips), "--layout", "mvtec", "--out", str(model),
                 *TINY]) == 0
    cfg = json.loads((model / "config.json").read_text())
    assert cfg["model"] == "resganad" and cfg["settings"]["size"] == 32 and cfg["settings"]["filters"] == 2
    assert len(cfg["regions"]["regions"]) == 20 and all("threshold" in r for r in cfg["regions"]["regions"])
    assert cfg["training"]["train_images"] == 60 - 6  # 3 strips x 20 regions, 10 % held out
    out = tmp_path / "eval.json"
    assert main(["eval", str(model), "--data", str(strips), "--layout", "mvtec", "--json", str(out),
                 "--heatmaps", str(tmp_path / "h"), "--num-heatmaps", "2", "--threads", "1", "--no-progress"]) == 0
    res = json.loads(out.read_text())
    assert res["images"] == 4 * 20 and res["anomalous"] >= 2
    assert res["regions"]["thresholds"] == "per_region"
    assert res["regions"]["strip"]["n"] == 4 and set(res["regions"]["patch"]["regions"]) == {
        r["name"] for r in cfg["regions"]["regions"]}
    assert len(list((tmp_path / "h").glob("*.png"))) == 2
    if "onnxruntime" not in core.available_backends():
        pytest.skip("runtime built without the ONNX Runtime backend: export/verify not run")
    bundle = tmp_path / "b"
    assert main(["export", str(model), "--out", str(bundle), "--data", str(strips), "--layout", "mvtec",
                 "--real", "2"]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["postprocess"]["kind"] == "ssim" and len(manifest["regions"]) == 20
    assert manifest["frame"] == {"width": 160, "height": 128}
    capsys.readouterr()
    assert main(["verify", str(bundle), "--against", str(model), "--data", str(strips), "--layout", "mvtec",
                 "--limit", "2", "--threads", "1"]) == 0
    assert "passed: True" in capsys.readouterr().out


def test_train_grdnet_and_errors(strips, tmp_path, capsys):
    model = tmp_path / "g"
    assert main(["train", "--model", "grdnet", "--data", str(strips), "--layout", "mvtec", "--out", str(model),
                 "--no-regions", *TINY]) == 0
    cfg = json.loads((model / "config.json").read_text())
    assert cfg["model"] == "grdnet" and cfg["regions"] is None and cfg["training"]["train_images"] == 3
    capsys.readouterr()
    assert main(["train", "--model", "resganad", "--data", str(strips), "--layout", "mvtec", "--out",
                 str(tmp_path / "x"), "--roi", "nothing.png", *TINY]) == 2
    assert "--roi applies to grdnet only" in capsys.readouterr().err
    assert main(["train", "--model", "grdnet", "--data", str(strips), "--layout", "mvtec", "--out",
                 str(tmp_path / "y"), "--roi", str(tmp_path / "missing.png"), *TINY]) == 2
    assert "--roi" in capsys.readouterr().err
    assert main(["train", "--model", "resganad", "--data", str(strips), "--layout", "mvtec", "--out",
                 str(tmp_path / "z"), "--input-size", "40", "--epochs", "1", "--no-progress"]) == 2
    assert "size: 40 must be a positive multiple of 16" in capsys.readouterr().err
