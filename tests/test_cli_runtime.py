"""edge-sdk inspect / predict (and export / verify with the trained models in
tests/test_runtime_parity.py)."""

import csv
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
from PIL import Image

from edge_sdk import cli
from edge_sdk._native import core
from edge_sdk.converters import export_bundle

from tests.bundle_helpers import embedding_parts, ssim_parts

pytestmark = pytest.mark.skipif("onnxruntime" not in core.available_backends(),
                                reason="built without the ONNX Runtime headers (scripts/fetch_onnxruntime_headers.sh)")


@pytest.fixture(scope="module")
def padim_like(tmp_path_factory):
    torch.set_num_threads(1)
    parts = embedding_parts("mahalanobis", image_score="max_blurred")
    out = export_bundle(parts, tmp_path_factory.mktemp("p") / "bundle", model_type="padim").bundle
    return out, parts


def test_inspect_prints_manifest(padim_like, capsys):
    assert cli.main(["inspect", str(padim_like[0])]) == 0
    text = capsys.readouterr().out
    assert "model: padim" in text and "input: 32 x 40 x 3 RGB" in text
    assert "features [fp32] features.onnx" in text and "out features (N, 80, 6) float32" in text
    assert "onnx: opset 17" in text and "post-processing: mahalanobis" in text
    assert "reject when score >= 1" in text and "chol float32 (80, 6, 6)" in text
    assert cli.main(["inspect", str(padim_like[0]), "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["schema_version"] == 1


def test_inspect_bad_bundle_is_an_error_naming_it(tmp_path, capsys):
    assert cli.main(["inspect", str(tmp_path / "nope")]) == 2
    assert "no such bundle" in capsys.readouterr().err


def test_predict_writes_verdicts_and_heatmaps(padim_like, tmp_path, rng, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(folder / f"a{i}.png")
    Image.fromarray(rng.integers(0, 256, (50, 60), dtype=np.uint8)).save(folder / "gray.png")
    (folder / "broken.png").write_bytes(b"not a png")
    out_csv, heat = tmp_path / "v.csv", tmp_path / "heat"
    assert cli.main(["predict", str(padim_like[0]), str(folder), "--out", str(out_csv), "--heatmaps", str(heat),
                     "--threads", "1"]) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["path"].split("/")[-1] for r in rows] == ["a0.png", "a1.png", "a2.png", "broken.png", "gray.png"]
    broken = rows[3]
    assert broken["verdict"] == "review" and "cannot read" in broken["error"]
    assert all(r["verdict"] in ("accept", "reject") and r["error"] == "" for r in rows[:3] + rows[4:])
    pngs = sorted(p.name for p in heat.iterdir())
    assert len(pngs) == 4 and all(p.endswith(".png") for p in pngs)
    assert Image.open(heat / pngs[-1]).size == (2 * 60, 50 + 14)
    # the same through the Python API
    import edge_sdk
    from edge_sdk.data.imageio import read_image

    res = edge_sdk.Runtime(padim_like[0], threads=1).predict(read_image(str(folder / "a1.png")))
    assert float(rows[1]["score"]) == pytest.approx(float(res.scores[0]), rel=1e-6)
    out_json = tmp_path / "v.json"
    assert cli.main(["predict", str(padim_like[0]), str(folder / "a0.png"), str(folder / "broken.png"),
                     "--out", str(out_json)]) == 0
    data = json.loads(out_json.read_text())
    assert data["results"][1]["score"] is None and data["results"][1]["verdict"] == "review"
    assert "CPUExecutionProvider" in data["backend"]
    assert "2 image(s):" in capsys.readouterr().out.splitlines()[-1]


def test_predict_regions_columns(tmp_path, rng):
    frame = {"width": 64, "height": 40}
    regions = [dict(name="left", x=0, y=0, width=30, height=40, threshold=0.3),
               dict(name="right", x=34, y=0, width=30, height=40, threshold=0.3)]
    out = export_bundle(ssim_parts(regions=regions, frame=frame), tmp_path / "b", model_type="resganad").bundle
    Image.fromarray(rng.integers(0, 256, (40, 64), dtype=np.uint8)).save(tmp_path / "f.png")
    assert cli.main(["predict", str(out), str(tmp_path / "f.png"), "--out", str(tmp_path / "r.csv")]) == 0
    row = next(csv.DictReader((tmp_path / "r.csv").open()))
    assert {"left.score", "left.verdict", "right.score", "right.verdict"} <= set(row)


def test_predict_missing_input_is_an_error(padim_like, tmp_path, capsys):
    assert cli.main(["predict", str(padim_like[0]), str(tmp_path / "none.png")]) == 2
    assert "no such image file" in capsys.readouterr().err
