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
from edge_sdk.converters import export_bundle

from tests.bundle_helpers import embedding_parts, ssim_parts

pytestmark = pytest.mark.onnxruntime


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
    # two labelled panels (the 60x50 image enlarged to the minimum panel width) and a colour bar
    from edge_sdk.heatmap_png import MIN_PANEL

    w, h = Image.open(heat / pngs[-1]).size
    assert w > 2 * MIN_PANEL and h > MIN_PANEL * 50 // 60
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


def test_predict_opens_only_regular_files_and_says_which_it_skipped(padim_like, tmp_path, rng):
    import os
    import subprocess
    import sys

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(folder / "a.png")
    os.mkfifo(folder / "pipe.png")  # nobody ever writes to it: opening it to read would wait forever
    out_csv = tmp_path / "v.csv"
    # a subprocess with a timeout: a regression hangs, and must fail the test rather than the run
    code = "import sys; from edge_sdk.cli import main; sys.exit(main(sys.argv[1:]))"
    r = subprocess.run([sys.executable, "-c", code, "predict", str(padim_like[0]), str(folder), "--out", str(out_csv),
                        "--threads", "1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"skipped 1 path(s) that are not regular files: {folder / 'pipe.png'}" in r.stderr
    assert [row["path"] for row in csv.DictReader(out_csv.open())] == [str(folder / "a.png")]
    # named directly: skipped too; alone, nothing is left to judge
    r = subprocess.run([sys.executable, "-c", code, "predict", str(padim_like[0]), str(folder / "pipe.png"),
                        "--out", str(out_csv)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "not regular files" in r.stderr and "no image files to judge" in r.stderr


def test_reading_a_fifo_as_an_image_is_refused_at_once(tmp_path):
    import os

    from edge_sdk.data import DataError
    from edge_sdk.data.imageio import image_size, read_image

    os.mkfifo(tmp_path / "pipe.png")
    for read in (read_image, image_size):
        with pytest.raises(DataError, match=f"{tmp_path / 'pipe.png'}: not a regular file"):
            read(str(tmp_path / "pipe.png"))


@pytest.mark.parametrize("argv, message", [
    (["predict", "B", "x.png", "--threads", "100000"], "--threads: expected an integer from 1 to"),
    (["predict", "B", "x.png", "--threads", "0"], "--threads: expected an integer from 1 to"),
    (["predict", "B", "x.png", "--batch", "0"], "--batch: expected an integer from 1 to 4096, got '0'"),
    (["predict", "B", "x.png", "--batch", "99999999"], "--batch: expected an integer from 1 to 4096"),
    (["predict", "B", "x.png", "--batch", "two"], "--batch: expected an integer, got 'two'"),
    (["train", "--model", "padim", "--data", "D", "--layout", "folder", "--out", "M", "--quantile", "nan"],
     "--quantile: expected a number from 0.0 to 1.0, got 'nan'"),
    (["train", "--model", "padim", "--data", "D", "--layout", "folder", "--out", "M", "--batch-size", "-1"],
     "--batch: expected an integer from 1 to 4096"),
    (["eval", "M", "--data", "D", "--layout", "folder", "--json", "j", "--threads", "999999"], "--threads"),
    (["export", "M", "--out", "B", "--review-band", "0.7"], "--review-band: expected a number from 0.0 to 0.5"),
    (["bench", "B", "--iterations", "10000000000"], "--iterations: expected an integer from 1 to 1000000"),
    (["synth", "vial-strip", "--out", "O", "--region-size", "100000"], "--region-size: expected an integer from 16"),
])
def test_numeric_options_are_bounded_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_every_numeric_option_has_a_bounded_type():
    # no option of any subcommand may take a bare int / float: each has bounds
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    bare = []
    for name, p in sub.choices.items():
        stack = [p]
        while stack:
            q = stack.pop()
            for a in q._actions:
                if a.type in (int, float) and a.choices is None:  # choices bound it too
                    bare.append(f"{name} {a.option_strings}")
                if hasattr(a, "choices") and isinstance(a.choices, dict):
                    stack += a.choices.values()
    assert bare == []
