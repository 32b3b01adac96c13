"""Recipes: `edge-sdk train --config FILE` takes every training option from a YAML or JSON file
(command-line options win), stores the options used in the model directory, and `eval`, `report`
and `export` on that directory take its data options from there. Real CLI in subprocesses."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def run(*args):
    p = subprocess.run([sys.executable, "-m", "edge_sdk.cli", *map(str, args)], cwd=REPO, capture_output=True,
                       text=True, timeout=600)
    assert "Traceback" not in p.stderr, p.stderr
    return p


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(3)
    root = tmp_path_factory.mktemp("recipe") / "d"
    (root / "good").mkdir(parents=True)
    (root / "crack").mkdir()
    for i in range(16):
        Image.fromarray(np.clip(rng.normal(128, 10, (48, 48, 3)), 0, 255).astype(np.uint8)).save(root / "good" / f"g{i}.png")
    for i in range(4):
        x = np.clip(rng.normal(128, 10, (48, 48, 3)), 0, 255)
        x[10:20, 5:40] = 20
        Image.fromarray(x.astype(np.uint8)).save(root / "crack" / f"c{i}.png")
    return root


def test_yaml_recipe_trains_and_the_model_remembers_its_data(data, tmp_path):
    pytest.importorskip("yaml")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"model: padim\ndata: {data}\nlayout: folder\nabnormal-dir: crack\ntest_fraction: 0.25\n"
                      "input-size: 48\nd: 20\nlabelled-val: 0\nlayers: [stride8, stride16]\nno-antialias: true\n")
    # a command-line option wins over the recipe
    p = run("train", "--config", recipe, "--out", tmp_path / "m", "--d", "12", "--no-progress", "--threads", "1")
    assert p.returncode == 0, p.stderr
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    stored = config["training"]["recipe"]
    assert stored["d"] == 12 and stored["input-size"] == 48 and stored["no-antialias"] is True
    assert stored["layers"] == "stride8,stride16" and stored["abnormal-dir"] == "crack"
    assert "out" not in stored and "config" not in stored and "threads" not in stored
    # eval, report and export find the data from the model directory alone
    e = run("eval", tmp_path / "m", "--no-progress", "--json", tmp_path / "e.json")
    assert e.returncode == 0, e.stderr
    assert json.loads((tmp_path / "e.json").read_text())["anomalous"] == 4
    r = run("report", tmp_path / "m", "--out", tmp_path / "r.html", "--no-progress")
    assert r.returncode == 0 and (tmp_path / "r.html").exists(), r.stderr
    x = run("export", tmp_path / "m", "--out", tmp_path / "b")
    assert x.returncode == 0 and "real inputs: none" not in x.stdout + x.stderr, x.stdout + x.stderr
    # ... and an option given on the command line still wins: another test fraction, other images
    e2 = run("eval", tmp_path / "m", "--test-fraction", "0.5", "--no-progress", "--json", tmp_path / "e2.json")
    assert e2.returncode == 0
    assert json.loads((tmp_path / "e2.json").read_text())["images"] > json.loads((tmp_path / "e.json").read_text())["images"]
    # the stored recipe trains the same model again
    (tmp_path / "again.json").write_text(json.dumps(stored))
    p2 = run("train", "--config", tmp_path / "again.json", "--out", tmp_path / "m2", "--no-progress", "--threads", "1")
    assert p2.returncode == 0, p2.stderr
    assert json.loads((tmp_path / "m2" / "config.json").read_text())["training"]["recipe"] == stored


@pytest.mark.parametrize("name,text,message", [
    ("r.json", '{"model": "padim", "bogus": 1}', "'bogus' is not an option of `edge-sdk train`"),
    ("r.json", '{"model": "padim", "no-antialias": "yes"}', "'no-antialias' expects true or false"),
    ("r.json", '{"model": "padim", "d": 0}', "--d: expected an integer from 1 to 100000"),
    ("r.json", '[1, 2]', "expected a mapping of option names to values"),
    ("r.json", '{"model": ', "not valid JSON"),
    ("r.yaml", "model: [padim\n", "not valid YAML"),
    ("r.txt", "model: padim\n", "expected a .yaml, .yml or .json file"),
])
def test_bad_recipes_are_refused_with_the_file_and_the_name(tmp_path, name, text, message):
    if name.endswith(".yaml"):
        pytest.importorskip("yaml")
    (tmp_path / name).write_text(text)
    p = run("train", "--config", tmp_path / name, "--data", tmp_path, "--layout", "folder", "--out", tmp_path / "m")
    assert p.returncode == 2 and message in p.stderr, p.stderr
    assert not (tmp_path / "m").exists()
    missing = run("train", "--config", tmp_path / "none.json", "--out", tmp_path / "m")
    assert missing.returncode == 2 and "none.json: cannot read it" in missing.stderr
