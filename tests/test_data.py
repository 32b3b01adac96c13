"""Data layer: layouts, lazy loading, masks, splits and errors, on small image trees written here."""

import os

import numpy as np
import pytest
from PIL import Image

from edge_sdk.data import DataError, Sample, iter_batches, load_dataset, stack_images


def _img(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path)


def _rand_rgb(rng, h=20, w=24):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _rand_mask(rng, h=20, w=24):
    m = np.zeros((h, w), np.uint8)
    y, x = rng.integers(0, h - 5), rng.integers(0, w - 5)
    m[y:y + 5, x:x + 5] = 255
    return m


@pytest.fixture
def mvtec(tmp_path, rng):
    root = tmp_path / "mvtec"
    cat = root / "widget"
    truth = {}
    for i in range(5):
        _img(str(cat / "train" / "good" / f"{i:03d}.png"), _rand_rgb(rng))
    for i in range(2):
        _img(str(cat / "test" / "good" / f"{i:03d}.png"), _rand_rgb(rng))
    for t in ("crack", "spot"):
        for i in range(3):
            img, m = _rand_rgb(rng), _rand_mask(rng)
            _img(str(cat / "test" / t / f"{i:03d}.png"), img)
            _img(str(cat / "ground_truth" / t / f"{i:03d}_mask.png"), m)
            truth[(t, i)] = (img, m)
    return root, truth


def test_mvtec_train_and_test(mvtec):
    root, truth = mvtec
    train = load_dataset(root, "mvtec", "train", category="widget")
    assert len(train) == 5 and set(train.labels) == {0}
    s = train[0]
    assert isinstance(s, Sample) and s.image.shape == (20, 24, 3) and s.image.dtype == np.uint8
    assert s.mask is None and s.defect_type == "good" and s.label == 0
    test = load_dataset(root, "mvtec", "test", category="widget")
    assert len(test) == 8
    assert sorted(set(test.defect_types)) == ["crack", "good", "spot"]
    assert list(test.labels).count(1) == 6
    for s in test:
        if s.label == 1:
            img, m = truth[(s.defect_type, int(os.path.basename(s.path)[:3]))]
            np.testing.assert_array_equal(s.image, img)
            np.testing.assert_array_equal(s.mask, (m > 127).astype(np.uint8))
            assert s.mask.dtype == np.uint8 and set(np.unique(s.mask)) <= {0, 1}
        else:
            assert s.mask is None
            assert s.mask_or_zeros().shape == s.image.shape[:2] and not s.mask_or_zeros().any()
    # root pointing at the category folder itself, or a root with a single category
    assert len(load_dataset(root / "widget", "mvtec", "test")) == 8
    assert len(load_dataset(root, "mvtec", "test")) == 8


def test_mvtec_errors(mvtec, tmp_path):
    root, _ = mvtec
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "nope", "mvtec", "train")
    with pytest.raises(DataError, match="category folder not found"):
        load_dataset(root, "mvtec", "train", category="other")
    with pytest.raises(DataError, match="unknown layout"):
        load_dataset(root, "imagenet", "train")
    with pytest.raises(DataError, match="unknown split"):
        load_dataset(root, "mvtec", "val")
    assert issubclass(DataError, ValueError)
    # mask without image
    orphan = root / "widget" / "ground_truth" / "crack" / "009_mask.png"
    _img(str(orphan), np.zeros((20, 24), np.uint8))
    with pytest.raises(DataError, match="mask without image.*009_mask.png"):
        load_dataset(root, "mvtec", "test")
    os.remove(orphan)
    # image without its mask
    os.remove(root / "widget" / "ground_truth" / "spot" / "001_mask.png")
    with pytest.raises(DataError, match="001_mask.png.*missing"):
        load_dataset(root, "mvtec", "test")
    # size mismatch is found when the sample is read, and names both files
    _img(str(root / "widget" / "ground_truth" / "spot" / "001_mask.png"), np.zeros((10, 24), np.uint8))
    ds = load_dataset(root, "mvtec", "test")
    i = [k for k, p in enumerate(ds.paths) if p.endswith(os.path.join("spot", "001.png"))][0]
    with pytest.raises(DataError, match="001_mask.png.*24x10.*001.png"):
        ds[i]
    # corrupt image
    bad = root / "widget" / "train" / "good" / "002.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    ds = load_dataset(root, "mvtec", "train")
    with pytest.raises(DataError, match="cannot read image.*002.png"):
        ds[2]
    # empty folder
    for f in os.listdir(root / "widget" / "train" / "good"):
        os.remove(root / "widget" / "train" / "good" / f)
    with pytest.raises(DataError, match="no images.*good"):
        load_dataset(root, "mvtec", "train")


def test_grayscale_replication_and_gray_mode(tmp_path, rng):
    g = rng.integers(0, 256, (16, 12), dtype=np.uint8)
    _img(str(tmp_path / "c" / "train" / "good" / "a.png"), g)
    ds = load_dataset(tmp_path, "mvtec", "train")
    im = ds[0].image
    assert im.shape == (16, 12, 3)
    for c in range(3):
        np.testing.assert_array_equal(im[:, :, c], g)
    gray = load_dataset(tmp_path, "mvtec", "train", gray=True)[0].image
    assert gray.shape == (16, 12)
    np.testing.assert_array_equal(gray, g)
    # 16-bit grayscale scales the full range to 8 bits
    g16 = rng.integers(0, 65536, (8, 8), dtype=np.uint16)
    Image.fromarray(g16).save(tmp_path / "c" / "train" / "good" / "b.png")
    im16 = load_dataset(tmp_path, "mvtec", "train", gray=True)[1].image
    np.testing.assert_array_equal(im16, np.rint(g16 / 257.0).astype(np.uint8))


def test_mask_binarization_variants(tmp_path, rng):
    from edge_sdk.data.imageio import read_mask

    raw = rng.integers(0, 256, (9, 7), dtype=np.uint8)
    Image.fromarray(raw).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(str(tmp_path / "m.png")), (raw > 127).astype(np.uint8))
    zero_one = (raw > 100).astype(np.uint8)
    zero_one[0, 0] = 1
    Image.fromarray(zero_one).save(tmp_path / "z.png")
    np.testing.assert_array_equal(read_mask(str(tmp_path / "z.png")), zero_one)
    rgb = np.zeros((9, 7, 3), np.uint8)
    rgb[2:4, 3:5, 0] = 255  # a pure red annotation is a defect
    Image.fromarray(rgb).save(tmp_path / "c.png")
    assert read_mask(str(tmp_path / "c.png")).sum() == 4
    Image.fromarray(raw > 127).save(tmp_path / "b.png")  # mode "1"
    np.testing.assert_array_equal(read_mask(str(tmp_path / "b.png")), (raw > 127).astype(np.uint8))


@pytest.fixture
def folder(tmp_path, rng):
    root = tmp_path / "line3"
    for i in range(10):
        _img(str(root / "ok" / f"n{i:02d}.png"), _rand_rgb(rng))
    for i in range(4):
        _img(str(root / "ng" / f"a{i}.jpg"), _rand_rgb(rng))
    for i in (0, 2):
        _img(str(root / "masks" / f"a{i}_mask.png"), _rand_mask(rng))
    _img(str(root / "masks" / "a3.png"), _rand_mask(rng))
    return root


def test_folder_layout_split(folder):
    opts = dict(normal_dir="ok", abnormal_dir="ng", mask_dir="masks", test_fraction=0.3)
    # as in mvtec, a mask folder must hold every anomalous image's mask (a1.jpg has none)
    with pytest.raises(DataError, match=r"mask of image .*a1\.jpg is missing in .*masks .*1 of 4"):
        load_dataset(folder, "folder", "test", seed=5, **opts)
    # without a mask folder the anomalous images have no masks
    nomask = load_dataset(folder, "folder", "test", seed=5, normal_dir="ok", abnormal_dir="ng", test_fraction=0.3)
    assert all(s.mask is None for s in nomask)
    _img(str(folder / "masks" / "a1_mask.png"), np.zeros((20, 24), np.uint8))
    train = load_dataset(folder, "folder", "train", seed=5, **opts)
    test = load_dataset(folder, "folder", "test", seed=5, **opts)
    assert len(train) == 7 and len(test) == 3 + 4
    good_test = [p for p, l in zip(test.paths, test.labels) if l == 0]
    assert not set(train.paths) & set(good_test)
    assert sorted(train.paths + good_test) == sorted(str(folder / "ok" / f"n{i:02d}.png") for i in range(10))
    # deterministic from the seed, different for another seed (10 choose 3 = 120 splits)
    assert load_dataset(folder, "folder", "train", seed=5, **opts).paths == train.paths
    others = {tuple(load_dataset(folder, "folder", "train", seed=s, **opts).paths) for s in range(6)}
    assert len(others) > 1
    masks = {os.path.basename(s.path): s.mask for s in test if s.label == 1}
    assert all(masks[f"a{i}.jpg"] is not None for i in range(4))
    assert set(test.defect_types) == {"good", "ng"}
    # absolute folders work too, and test_fraction=0 keeps every good image for training
    t0 = load_dataset("/", "folder", "train", normal_dir=str(folder / "ok"), test_fraction=0.0)
    assert len(t0) == 10


def test_folder_layout_errors(folder):
    with pytest.raises(DataError, match="normal image folder not found"):
        load_dataset(folder, "folder", "train", normal_dir="missing")
    with pytest.raises(DataError, match="no option"):
        load_dataset(folder, "folder", "train", normal_dir="ok", abnormal="ng")
    with pytest.raises(DataError, match="test_fraction"):
        load_dataset(folder, "folder", "train", normal_dir="ok", test_fraction=1.0)
    _img(str(folder / "masks" / "zz.png"), np.zeros((20, 24), np.uint8))
    with pytest.raises(DataError, match="mask without image.*zz.png"):
        load_dataset(folder, "folder", "test", normal_dir="ok", abnormal_dir="ng", mask_dir="masks")
    os.makedirs(folder / "empty")
    with pytest.raises(DataError, match="no images.*empty"):
        load_dataset(folder, "folder", "train", normal_dir="empty")


def _fake_mtd(root, rng, n_free=20, defects=(("Crack", 3), ("Blowhole", 2))):
    for d, n in (("Free", n_free),) + tuple(defects):
        for i in range(n):
            h, w = int(rng.integers(15, 30)), int(rng.integers(15, 30))
            stem = root / f"MT_{d}" / "Imgs" / f"exp{i}_num_{i * 7}"
            _img(str(stem) + ".jpg", rng.integers(0, 256, (h, w), dtype=np.uint8))
            m = np.zeros((h, w), np.uint8) if d == "Free" else _rand_mask(rng, h, w)
            _img(str(stem) + ".png", m)


def test_mtd_layout_small(tmp_path, rng):
    _fake_mtd(tmp_path, rng)
    train = load_dataset(tmp_path, "mtd", "train")
    test = load_dataset(tmp_path, "mtd", "test")
    assert len(train) == 16 and len(test) == 4 + 3 + 2
    assert sorted(set(test.defect_types)) == ["blowhole", "crack", "good"]
    for s in test:
        assert s.image.ndim == 3 and s.image.shape[2] == 3
        if s.label:
            assert s.mask.shape == s.image.shape[:2] and s.mask.any()
        else:
            assert s.mask is None
    # a good image whose mask marks defects is refused
    p = train.entries[0].mask_path
    Image.fromarray(np.full(train[0].image.shape[:2], 255, np.uint8)).save(p)
    with pytest.raises(DataError, match="good image"):
        train[0]
    os.remove(tmp_path / "MT_Crack" / "Imgs" / "exp1_num_7.jpg")
    with pytest.raises(DataError, match="mask without image.*exp1_num_7.png"):
        load_dataset(tmp_path, "mtd", "test")


def test_iter_batches(tmp_path, rng):
    _fake_mtd(tmp_path, rng, n_free=12, defects=())
    (tmp_path / "MT_Crack" / "Imgs").mkdir(parents=True)
    ds = load_dataset(tmp_path, "mtd", "train", test_fraction=0.25)
    batches = list(iter_batches(ds, 4))
    assert [len(b) for b in batches] == [4, 4, 1]
    assert [s.path for b in batches for s in b] == ds.paths
    grouped = list(iter_batches(ds, 2, same_size=True))
    assert sorted(s.index for b in grouped for s in b) == list(range(len(ds)))
    for b in grouped:
        assert len(b) <= 2
        arr = stack_images(b)
        assert arr.shape[0] == len(b) and arr.dtype == np.uint8
        for s in b:
            assert s.path == ds.paths[s.index]
    with pytest.raises(ValueError, match="batch_size"):
        next(iter_batches(ds, 0))
    sizes = {s.image.shape for s in ds}
    if len(sizes) > 1:
        with pytest.raises(DataError, match="different shapes"):
            stack_images(list(ds))
