"""Calibration on the labelled images a user gives: a seeded stratified validation split of the
folder layout's test split, used by train (F1 threshold on good and anomalous images) and left out
by eval; warnings when a calibration set is too small for its method."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_sdk.data import load_dataset
from edge_sdk.data.split import split_labelled

REPO = Path(__file__).resolve().parents[1]


def _folder(root: Path, rng, good=24, bad=8):
    (root / "good").mkdir(parents=True)
    (root / "crack").mkdir()
    for i in range(good):
        Image.fromarray(np.clip(rng.normal(128, 10, (64, 64, 3)), 0, 255).astype(np.uint8)).save(root / "good" / f"g{i:02d}.png")
    for i in range(bad):
        x = np.clip(rng.normal(128, 10, (64, 64, 3)), 0, 255)
        x[20:30, 10:50] = 30
        Image.fromarray(x.astype(np.uint8)).save(root / "crack" / f"c{i}.png")
    return root


def test_split_is_stratified_disjoint_and_seeded(tmp_path, rng):
    root = _folder(tmp_path / "d", rng, good=30, bad=10)
    test = load_dataset(root, "folder", "test", abnormal_dir="crack", test_fraction=0.5)
    val, rest = split_labelled(test, 0.4, seed=3)
    assert not set(val.paths) & set(rest.paths) and len(val) + len(rest) == len(test)
    assert int((val.labels == 1).sum()) == round(0.4 * 10) and int((val.labels == 0).sum()) == round(0.4 * 15)
    assert split_labelled(test, 0.4, seed=3)[0].paths == val.paths
    assert {tuple(split_labelled(test, 0.4, seed=s)[0].paths) for s in range(5)} != {tuple(val.paths)}


def run(*args):
    p = subprocess.run([sys.executable, "-m", "edge_sdk.cli", *map(str, args)], cwd=REPO, capture_output=True,
                       text=True, timeout=600)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def test_train_calibrates_on_labelled_images_and_eval_leaves_them_out(tmp_path, rng):
    pytest.importorskip("torch")
    root = _folder(tmp_path / "d", rng)
    data = ["--data", root, "--layout", "folder", "--abnormal-dir", "crack", "--test-fraction", "0.4"]
    p = run("train", "--model", "padim", *data, "--out", tmp_path / "m", "--input-size", "64", "--no-progress",
            "--threads", "1")
    assert p.returncode == 0, p.stderr
    assert "labelled validation split: 5 good + 4 anomalous" in p.stderr
    cal = json.loads(p.stdout)["calibration"]
    assert cal["method"] == "f1" and cal["images"] == 9
    held = json.loads((tmp_path / "m" / "config.json").read_text())["training"]["labelled_validation"]["files"]
    assert len(held) == 9
    p = run("eval", tmp_path / "m", *data, "--no-progress", "--json", tmp_path / "e.json")
    assert p.returncode == 0 and "leaving out 9 image(s)" in p.stderr, p.stderr
    assert json.loads((tmp_path / "e.json").read_text())["images"] == 9  # 18 test images less the 9 held out
    # --labelled-val 0: the earlier behaviour (quantile of held-out good training images), with a warning
    p = run("train", "--model", "padim", *data, "--out", tmp_path / "q", "--input-size", "64", "--no-progress",
            "--threads", "1", "--labelled-val", "0")
    assert p.returncode == 0 and json.loads(p.stdout)["calibration"]["method"] == "quantile"
    assert "quantile threshold comes from" in p.stderr and "about their maximum" in p.stderr
