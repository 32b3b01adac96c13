"""`edge-sdk train --auto` (edge_sdk.tune): settings chosen on held-out good images with synthetic
anomalies, never on the test split; the choice, the search's table and record, the budget, and the
synthesis it relies on (CutPaste, scratches)."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edge_sdk.synthesis import cutpaste, scratch

REPO = Path(__file__).resolve().parents[1]


def run(*args, timeout=600):
    p = subprocess.run([sys.executable, "-m", "edge_sdk.cli", *map(str, args)], cwd=REPO, capture_output=True,
                       text=True, timeout=timeout)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def _poison_test_split(root: Path) -> int:
    """Every file of the test split replaced by bytes no image reader accepts, then the folders made
    unreadable (the bytes are what stops a root user, for whom chmod 000 is no barrier)."""
    n = 0
    for folder in ("test", "ground_truth"):
        for path in sorted((root / folder).rglob("*.png")):
            path.write_bytes(b"not an image: the automatic choice must never read the test split")
            n += 1
    for folder in ("test", "ground_truth"):
        for d in sorted((root / folder).rglob("*"), reverse=True):
            if d.is_dir():
                d.chmod(0)
        (root / folder).chmod(0)
    return n


def _restore(root: Path) -> None:
    for folder in ("test", "ground_truth"):
        top = root / folder
        top.chmod(stat.S_IRWXU)
        for d in top.rglob("*"):
            if d.is_dir():
                d.chmod(stat.S_IRWXU)


@pytest.fixture
def tiles(tmp_path):
    pytest.importorskip("torch")
    from edge_sdk.data.synthetic import make_dataset

    make_dataset(tmp_path / "data", "tile", n_train=24, n_test=8, size=64, seed=3)
    return tmp_path / "data" / "tile"


def test_auto_never_reads_the_test_split_and_records_its_choice(tiles, tmp_path):
    assert _poison_test_split(tiles) >= 8
    try:
        p = run("train", "--auto", "--model", "mhbc", "--data", tiles, "--layout", "mvtec", "--out",
                tmp_path / "m", "--input-size", "64", "--threads", "2", "--seed", "5")
    finally:
        _restore(tiles)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    # the table: one row per (candidate, image score), the chosen one marked, the closing line
    table = [ln for ln in p.stderr.splitlines() if ln.startswith(("* mhbc", "  mhbc"))]
    assert len(table) == 36 and sum(ln.startswith("*") for ln in table) == 1
    assert "all 18 candidates scored" in p.stderr and "chosen (*): mhbc" in p.stderr
    auto = json.loads((tmp_path / "m" / "config.json").read_text())["training"]["auto"]
    assert auto["seed"] == 5 and auto["scored"] == auto["total"] == 18 and not auto["stopped_by_budget"]
    assert len(auto["candidates"]) == 36 and auto["space"]["models"] == ["mhbc"]
    assert set(auto["space"]) >= {"input_norm", "antialias", "layers", "image_score"}
    val = auto["validation"]
    assert val["kinds"] == ["perlin", "cutpaste", "scratch"] and val["held_out_good"] == 5
    assert sum(val["synthetic_anomalous"].values()) == 5
    chosen = auto["chosen"]
    assert chosen["validation_auroc"] >= max(c["validation_auroc"] for c in auto["candidates"]) - 0.001
    assert set(chosen["sources"]) == set(val["synthetic_anomalous"])
    # the model trained is the choice, on every good image (24), and calibrated as train does
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    s = cfg["settings"]
    assert cfg["model"] == "mhbc" and cfg["backbone"]["layers"] == chosen["layers"]
    assert (s["input_norm"], s["antialias"], s["image_score"]) == \
        (chosen["input_norm"], chosen["antialias"], chosen["image_score"])
    assert cfg["training"]["train_images"] + cfg["calibration"]["images"] == 24
    assert out["auto"]["chosen"]["model"] == "mhbc" and out["auto"]["scored"] == 18
    # the stored recipe is the chosen configuration without a search
    recipe = cfg["training"]["recipe"]
    assert "auto" not in recipe and recipe["layers"] == ",".join(chosen["layers"]) and recipe["model"] == "mhbc"

    # the bundle carries the training record, the search included
    e = run("export", tmp_path / "m", "--out", tmp_path / "b")
    assert e.returncode == 0, e.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["model"]["info"]["training"]["auto"]["chosen"] == chosen


def test_a_tiny_budget_stops_the_search_with_what_was_scored(tiles, tmp_path):
    p = run("train", "--auto", "--data", tiles, "--layout", "mvtec", "--out", tmp_path / "m", "--input-size", "64",
            "--threads", "2", "--budget-minutes", "0.001", "--no-progress")
    assert p.returncode == 0, p.stderr
    assert "the budget of 0.001 minutes stopped the search after 1 of 60 candidates" in p.stderr
    auto = json.loads((tmp_path / "m" / "config.json").read_text())["training"]["auto"]
    assert auto["stopped_by_budget"] and auto["scored"] == 1 and auto["total"] == 60
    assert len(auto["candidates"]) == 2 and auto["budget_minutes"] == 0.001
    # the first candidate is the first model's default configuration
    first = auto["candidates"][0]
    assert (first["model"], first["layers"], first["input_norm"], first["antialias"], first["d"]) == \
        ("padim", ["stride8", "stride16"], "fixed", True, 100)


def _folder(root: Path, rng, good=30, bad=12):
    for d in ("good", "crack", "defects/masks"):
        (root / d).mkdir(parents=True)

    def tile():
        x = np.clip(rng.normal(128, 6, (64, 64, 3)), 0, 255)
        return x

    for i in range(good):
        Image.fromarray(tile().astype(np.uint8)).save(root / "good" / f"g{i:02d}.png")
    for i in range(bad):
        x = tile()
        x[20:26, 8:56] = 40
        Image.fromarray(x.astype(np.uint8)).save(root / "crack" / f"c{i:02d}.png")
    for i in range(3):
        x, m = tile(), np.zeros((64, 64), np.uint8)
        x[30:38, 20 + i:40 + i] = 220
        m[30:38, 20 + i:40 + i] = 255
        Image.fromarray(x.astype(np.uint8)).save(root / "defects" / f"d{i}.png")
        Image.fromarray(m).save(root / "defects" / "masks" / f"d{i}_mask.png")
    return root


def test_labelled_images_and_pasted_defects_join_the_synthetic_ones(tmp_path, rng):
    pytest.importorskip("torch")
    from edge_sdk.data import load_dataset
    from edge_sdk.data.split import split_labelled

    root = _folder(tmp_path / "d", rng)
    data = ["--data", root, "--layout", "folder", "--abnormal-dir", "crack", "--test-fraction", "0.3"]
    # the labelled images train holds out are read; the rest of the test split is left for eval and never read
    test = load_dataset(root, "folder", "test", abnormal_dir="crack", test_fraction=0.3)
    _, rest = split_labelled(test, 0.5, 0)
    for path in rest.paths:
        Path(path).write_bytes(b"left for eval: never read by train")
    p = run("train", "--auto", "--model", "patchcore", *data, "--defect-dir", root / "defects", "--out", tmp_path / "m",
            "--input-size", "64", "--threads", "2", "--no-progress")
    assert p.returncode == 0, p.stderr
    auto = json.loads((tmp_path / "m" / "config.json").read_text())["training"]["auto"]
    val = auto["validation"]
    assert val["kinds"] == ["perlin", "cutpaste", "scratch", "paste"] and val["defect_library"] == 3
    assert val["labelled"] == {"good": 4, "anomalous": 6}
    assert set(auto["chosen"]["sources"]) >= {"labelled", "paste"}
    assert auto["chosen"]["sources"]["labelled"] > 0.9  # the crack is plain to see


@pytest.mark.parametrize("words, message", [
    (["--model", "classifier"], "--model classifier with --auto: classifier (supervised) cannot be searched"),
    (["--model", "resganad", "--bottleneck", "conv"], "--bottleneck: chosen by --auto"),
    (["--model", "padim", "--layers", "stride8"], "--layers: chosen by --auto"),
    (["--model", "padim", "--input-norm", "per_image"], "--input-norm: chosen by --auto"),
])
def test_auto_refuses_what_it_cannot_search_or_would_override(tmp_path, words, message):
    p = run("train", "--auto", *words, "--data", tmp_path, "--layout", "mvtec", "--out", tmp_path / "m")
    assert p.returncode == 2 and message in p.stderr, p.stderr


def test_auto_options_need_auto(tmp_path):
    p = run("train", "--model", "padim", "--budget-minutes", "5", "--data", tmp_path, "--layout", "mvtec",
            "--out", tmp_path / "m")
    assert p.returncode == 2 and "--budget-minutes: applies with --auto only" in p.stderr
    p = run("train", "--data", tmp_path, "--layout", "mvtec", "--out", tmp_path / "m")
    assert p.returncode == 2 and "--model: required (or --auto" in p.stderr


def test_validation_figure_is_the_mean_over_sources_against_their_own_good_images():
    from edge_sdk.tune.validation import ValidationSet

    labels = np.array([0, 1, 0, 1, 0, 1])
    v = ValidationSet([np.zeros((8, 8, 3), np.uint8)] * 6, labels,
                      ["good", "perlin", "good", "scratch", "good", "labelled"],
                      ["synthetic", "synthetic", "synthetic", "synthetic", "labelled", "labelled"])
    # perlin beats both synthetic goods, scratch beats one of two; the labelled anomaly is ranked
    # only against the labelled good image (which scores higher than every synthetic one)
    figs = v.aurocs(np.array([0.1, 0.9, 0.5, 0.3, 5.0, 4.0]))
    assert figs["sources"] == {"perlin": 1.0, "scratch": 0.5, "labelled": 0.0}
    assert figs["auroc"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="scores: expected shape"):
        v.aurocs(np.zeros(3))


def test_ties_go_to_the_smaller_model():
    from edge_sdk.tune import select

    recs = [{"index": 0, "validation_auroc": 0.95, "model_bytes": 10},
            {"index": 1, "validation_auroc": 0.9605, "model_bytes": 300},
            {"index": 2, "validation_auroc": 0.9600, "model_bytes": 50},
            {"index": 3, "validation_auroc": 0.9601, "model_bytes": 50}]
    assert select(recs)["index"] == 2  # within 0.001 of the best: the smallest, then the earliest
    recs[1]["validation_auroc"] = 0.97
    assert select(recs)["index"] == 1
    with pytest.raises(ValueError, match="records: no candidate"):
        select([])


def test_hold_out_is_seeded_bounded_and_refuses_too_few_images():
    from edge_sdk.tune.validation import MAX_HELD_OUT, hold_out

    fit, held = hold_out(50, 0.2, 1)
    assert len(held) == 10 and not set(fit) & set(held) and sorted(fit + held) == list(range(50))
    assert hold_out(50, 0.2, 1) == (fit, held) and hold_out(50, 0.2, 2) != (fit, held)
    assert len(hold_out(10, 0.05, 0)[1]) == 4 and len(hold_out(5000, 0.5, 0)[1]) == MAX_HELD_OUT
    with pytest.raises(ValueError, match="at least 10"):
        hold_out(9, 0.2, 0)
    with pytest.raises(ValueError, match="holdout"):
        hold_out(50, 0.9, 0)


def test_space_refuses_reconstruction_models_and_starts_with_the_defaults():
    from edge_sdk.tune import recon, space

    with pytest.raises(ValueError, match="grdnet \\(reconstruction\\) cannot be searched with the embedding"):
        space.candidates(["grdnet", "padim"])
    cands = recon.candidates(["grdnet", "resganad"], {"resganad": 4, "grdnet": 8})
    assert cands[0] == {"model": "resganad", "bottleneck": "dense", "filters": 4} and len(cands) == 8
    assert {c["filters"] for c in cands if c["model"] == "grdnet"} == {8, 16}
    with pytest.raises(ValueError, match="nope \\(unknown\\)"):
        space.check_models(["nope"])
    cands = space.candidates()
    assert len(cands) == 60 and len(set(cands)) == 60
    assert cands[0] == space.Candidate("padim", ("stride8", "stride16"), "fixed", True, 100)
    assert space.declared()["candidates"] == 120


@pytest.mark.parametrize("shape", [(60, 80, 3), (60, 80)])
def test_cutpaste_moves_a_patch_of_the_image_itself(rng, shape):
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    out, mask = cutpaste(img, 7, jitter=0.0)
    assert out.shape == img.shape and out.dtype == np.uint8 and mask.shape == shape[:2]
    ys, xs = np.nonzero(mask)
    assert 0.02 * 60 * 80 * 0.8 <= mask.sum() <= 0.15 * 60 * 80 * 1.2
    assert (out[mask == 0] == img[mask == 0]).all()
    patch = out[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    h, w = patch.shape[:2]
    # without jitter the patch is a crop of the same image, found somewhere else
    found = any((img[y:y + h, x:x + w] == patch).all() and (y, x) != (ys.min(), xs.min())
                for y in range(shape[0] - h + 1) for x in range(shape[1] - w + 1))
    assert found
    again, mask2 = cutpaste(img, 7, jitter=0.0)
    assert (again == out).all() and (mask2 == mask).all()
    with pytest.raises(ValueError, match="area_range"):
        cutpaste(img, 0, area_range=(0.5, 0.2))


def test_scratch_is_a_thin_line_of_one_direction(rng):
    img = np.full((128, 160, 3), 128, np.uint8)
    out, mask = scratch(img, 11)
    assert out.shape == img.shape and mask.dtype == np.uint8
    diff = out.astype(int) - img
    assert mask.sum() > 20 and diff[mask == 1].any()
    assert (diff >= 0).all() or (diff <= 0).all()  # darker or brighter, never both
    # thin: at most a few pixels wide (the width range tops at 1.2 % of 128 px = 2 px, + the fade)
    assert mask.sum() < 0.05 * mask.size
    f, m = scratch(img.astype(np.float32) / 255.0, 11)
    assert f.dtype == np.float32 and f.max() <= 1.0 and (m == mask).all()
    with pytest.raises(ValueError, match="image: expected"):
        scratch(np.zeros((4, 4), np.uint8), 0)


def test_defect_folder_errors_name_the_folder(tmp_path, rng):
    from edge_sdk.tune import load_defect_folder

    root = _folder(tmp_path / "d", rng, good=1, bad=1)
    assert len(load_defect_folder(root / "defects")) == 3
    (root / "defects" / "masks" / "d1_mask.png").unlink()
    with pytest.raises(ValueError, match="d1.png has no mask"):
        load_defect_folder(root / "defects")
    with pytest.raises(ValueError, match="defect folder not found"):
        load_defect_folder(tmp_path / "nowhere")


@pytest.mark.parametrize("model_name, d", [("padim", 100), ("mhbc", None), ("patchcore", None)])
def test_a_candidate_fitted_on_cached_taps_scores_as_the_model_trained_on_images(model_name, d):
    # the search's shortcut (taps computed once, heads applied to the cache) must give the model
    # that `fit` on the same images gives, or the ranking would describe other models
    pytest.importorskip("torch")
    from edge_sdk.data.synthetic import make_samples
    from edge_sdk.models import model_class
    from edge_sdk.models.contract import split_training
    from edge_sdk.tune import space
    from edge_sdk.tune.search import _head, _score, _TapCache

    train, test = make_samples("tile", n_train=12, n_test=6, size=72, seed=2)
    cand = space.Candidate(model_name, ("stride8", "blocks.7", "stride16"), "per_image_highpass", False, d)
    kw = dict(input_size=64, highpass_window=31, **({"coreset_ratio": 0.5} if model_name == "patchcore" else {}))
    common = dict(layers=list(cand.layers), input_norm=cand.input_norm, highpass_window=31, antialias=False,
                  input_size=(64, 64), device="cpu", progress=False, desc="")
    order = split_training(len(train), 0, 0.0, 0, hold_out=False)[0]  # the order fit trains in, as the search
    fit_cache = _TapCache.compute(lambda i: train[order[i]].image, len(train), **common)
    val_cache = _TapCache.compute(lambda i: test[i].image, len(test), **common)
    searched = model_class(model_name)(**kw, **cand.settings())
    head = _head(searched)
    searched._fit_passes(lambda desc: fit_cache.embeddings(head, cand.layers), len(fit_cache))
    scores = _score(searched, val_cache, cand.layers)
    for mode in space.IMAGE_SCORES:
        trained = model_class(model_name)(**kw, **cand.settings(), image_score=mode)
        trained.fit(train, calibrate=False, progress=False)
        want = trained.predict([s.image for s in test]).scores
        np.testing.assert_allclose(scores[mode], want, rtol=1e-4)


def test_python_api_trains_the_choice_and_records_the_search():
    pytest.importorskip("torch")
    from edge_sdk.data.synthetic import make_samples
    from edge_sdk.tune import auto_train

    train, test = make_samples("tile", n_train=20, n_test=6, size=64, seed=4)
    model = auto_train(train, models=("padim",), common={"input_size": 64}, seed=1, budget_minutes=0.001,
                       progress=False)
    auto = model.training_info["auto"]
    assert auto["scored"] == 1 and auto["stopped_by_budget"] and auto["space"]["models"] == ["padim"]
    assert model.name == "padim" and model.image_score == auto["chosen"]["image_score"]
    assert model.training_info["train_images"] + model.calibration["images"] == 20
    assert model.predict([s.image for s in test]).scores.shape == (6,)
    with pytest.raises(ValueError, match="chosen by the search"):
        auto_train(train, models=("padim",), common={"input_size": 64, "layers": ["stride8"]})


def test_reconstruction_models_are_searched_over_their_trainings(tmp_path):
    """--auto --model resganad on gray vial strips (region patches): each candidate (bottleneck x
    filters) trained on the fit patches and scored on the same synthetic validation, the test split
    never read, the choice trained and recorded, its recipe the choice without a search."""
    pytest.importorskip("torch")
    from edge_sdk.cli import main

    assert main(["synth", "vial-strip", "--out", str(tmp_path / "d"), "--count", "3", "--products", "2",
                 "--acquisitions", "1", "--region-size", "32", "--seed", "2"]) == 0
    root = tmp_path / "d" / "vial_strip"
    assert _poison_test_split(root) >= 2
    try:
        p = run("train", "--auto", "--model", "resganad", "--data", root, "--layout", "mvtec", "--out", tmp_path / "m",
                "--input-size", "32", "--epochs", "1", "--threads", "2", "--no-progress")
    finally:
        _restore(root)
    assert p.returncode == 0, p.stderr
    assert "all 4 candidates scored" in p.stderr and "chosen (*): resganad bottleneck=" in p.stderr
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    auto = cfg["training"]["auto"]
    assert auto["space"]["bottleneck"] == ["dense", "conv"] and auto["scored"] == auto["total"] == 4
    filters = auto["space"]["filters"]["resganad"]
    assert [(c["bottleneck"], c["filters"]) for c in auto["candidates"]] == \
        [(b, f) for b in ("dense", "conv") for f in filters]
    assert set(auto["validation"]["synthetic_anomalous"]) == {"perlin", "cutpaste", "scratch"}
    chosen = auto["chosen"]
    assert chosen["validation_auroc"] >= max(c["validation_auroc"] for c in auto["candidates"]) - 0.001
    assert (cfg["settings"]["bottleneck"], cfg["settings"]["filters"]) == (chosen["bottleneck"], chosen["filters"])
    recipe = cfg["training"]["recipe"]
    assert "auto" not in recipe and recipe["bottleneck"] == chosen["bottleneck"] and recipe["filters"] == chosen["filters"]
