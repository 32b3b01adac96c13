"""`edge-sdk synth cut` / `synth paste` (edge_sdk.synthesis.defect_folder): defects cut from a labelled
data set into a folder and read back unchanged, defective images pasted from them that differ from
their good image only around the returned mask, the output read as a classes data set, and the
refusals (a defect without mask, a folder not written by the command)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from edge_sdk.data import DataError, load_dataset
from edge_sdk.data.synthetic import make_dataset
from edge_sdk.synthesis.defect_folder import paste_folder, read_defect_folder, write_defect_folder
from edge_sdk.synthesis.paste import DefectLibrary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tile_root(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("tile"), "tile", 6, 12, 64, 5, defects=["spot", "scratch"],
                        anomaly_fraction=0.8)


def test_defect_folder_round_trip(tile_root, tmp_path):
    ds = load_dataset(tile_root, "mvtec", "test", category="tile")
    library = DefectLibrary.from_dataset(ds)
    assert len(library) > 0
    write_defect_folder(library, tmp_path / "cut")
    back = read_defect_folder(tmp_path / "cut")
    assert sorted(back) == sorted({d.kind for d in library.defects})
    for kind, lib in back.items():
        want = [d for d in library.defects if d.kind == kind]
        assert len(lib) == len(want)
        for got, exp in zip(lib.defects, want):
            # the written crop holds the defect and its margin: read back, the same footprint
            assert got.mask.sum() == exp.mask.sum()
    with pytest.raises(FileExistsError):
        write_defect_folder(library, tmp_path / "cut")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("not ours")
    with pytest.raises(FileExistsError, match="not a defect folder"):
        write_defect_folder(library, tmp_path / "other", overwrite=True)


def test_pasted_images_differ_from_the_good_image_only_at_the_defect(tile_root, tmp_path, rng):
    good_dir = tmp_path / "good"
    good_dir.mkdir()
    src = os.path.join(tile_root, "tile", "train", "good", sorted(os.listdir(os.path.join(tile_root, "tile", "train", "good")))[0])
    shutil.copy(src, good_dir / "only.png")
    good = np.asarray(Image.open(src).convert("RGB"))
    ds = load_dataset(tile_root, "mvtec", "test", category="tile")
    write_defect_folder(DefectLibrary.from_dataset(ds), tmp_path / "cut")
    made = paste_folder(good_dir, read_defect_folder(tmp_path / "cut"), tmp_path / "out", count=4,
                        seed=int(rng.integers(1000)), progress=False)
    assert made == {"scratch": 4, "spot": 4}
    for cls in ("scratch", "spot"):
        for k in range(4):
            img = np.asarray(Image.open(tmp_path / "out" / cls / f"{k:05d}.png"))
            mask = np.asarray(Image.open(tmp_path / "out" / cls / f"{k:05d}_mask.png")) > 0
            assert mask.any() and img.shape == good.shape
            near = ndimage.binary_dilation(mask, iterations=3)
            assert np.array_equal(img[~near], good[~near])  # untouched away from the defect
    meta = json.loads((tmp_path / "out" / "synth.json").read_text())
    assert meta["made"] == made
    # with the good images beside them, a data set of the classes layout
    shutil.copytree(good_dir, tmp_path / "out" / "good")
    for _ in range(3):
        shutil.copy(src, tmp_path / "out" / "good" / f"copy{_}.png")
    both = load_dataset(tmp_path / "out", "classes", "train", classes=True)
    assert {"good", "scratch", "spot"} == set(both.defect_types)
    assert all(s.mask is not None and s.mask.any() for s in both if s.label == 1)


def test_a_cut_defect_needs_its_mask(tmp_path, rng):
    (tmp_path / "dent").mkdir()
    Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(tmp_path / "dent" / "a.png")
    with pytest.raises(DataError, match="a.png has no mask"):
        read_defect_folder(tmp_path)


def test_cli_cut_and_paste(tile_root, tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "edge_sdk.cli", "synth", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    r = cli("cut", "--data", str(tile_root), "--layout", "mvtec", "--category", "tile", "--out", "cut")
    assert r.returncode == 0, r.stderr
    # only the training part of the labelled split was cut: its defect images, no more
    train = load_dataset(tile_root, "mvtec", "train", category="tile", classes=True)
    n_train_defects = len(DefectLibrary.from_dataset(train))
    assert sum(len(v) for v in read_defect_folder(tmp_path / "cut").values()) == n_train_defects
    good = os.path.join(tile_root, "tile", "train", "good")
    r = cli("paste", "--good", good, "--defects", "cut", "--out", "made", "--count", "2", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "wrote 4 image(s)" in r.stdout
    r = cli("paste", "--good", good, "--defects", "cut", "--out", "made", "--count", "2", "--no-progress")
    assert r.returncode == 2 and "made" in r.stderr  # exists: refused without --overwrite
    r = cli("paste", "--good", good, "--defects", "missing", "--out", "x", "--count", "2")
    assert r.returncode == 2 and "missing" in r.stderr


def test_masks_beside_the_good_images_are_not_drawn_as_good_images(tile_root, tmp_path):
    from edge_sdk.data.imageio import list_images, without_masks

    # Magnetic Tile Defect keeps an all-black <stem>.png mask beside each <stem>.jpg good image;
    # the classes naming keeps <stem>_mask.png beside <stem>.png
    good = tmp_path / "good"
    good.mkdir()
    src = sorted((Path(tile_root) / "tile" / "train" / "good").iterdir())
    for i, p in enumerate(src):
        img = Image.open(p)
        img.save(good / f"exp{i}.jpg", quality=95)
        Image.fromarray(np.zeros(img.size[::-1], np.uint8)).save(good / f"exp{i}.png")
    shutil.copy(src[0], good / "plain.png")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(good / "plain_mask.png")
    names = [os.path.basename(p) for p in without_masks(list_images(str(good)))]
    assert names == sorted([f"exp{i}.jpg" for i in range(len(src))] + ["plain.png"])
    ds = load_dataset(tile_root, "mvtec", "test", category="tile")
    library = DefectLibrary.from_dataset(ds)
    made = paste_folder(good, {"spot": library}, tmp_path / "made", count=12, seed=0, progress=False)
    assert made == {"spot": 12}
    for k in range(12):
        img = np.asarray(Image.open(tmp_path / "made" / "spot" / f"{k:05d}.png"), np.float64)
        mask = np.asarray(Image.open(tmp_path / "made" / "spot" / f"{k:05d}_mask.png")) > 0
        assert img[~mask].mean() > 20, k  # a tile, not a black mask with a defect pasted in
