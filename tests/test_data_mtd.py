"""The published Magnetic Tile Defect set through load_dataset(layout="mtd"); skips when it is absent."""

import os
from pathlib import Path

import numpy as np
import pytest

from edge_sdk.data import iter_batches, load_dataset

REPO = Path(__file__).resolve().parents[1]


def mtd_root():
    env = os.environ.get("EDGE_SDK_MTD")
    for cand in ([env] if env else []) + [str(REPO / ".." / "shared" / "datasets" / "magnetic_tile"),
                                          str(REPO / ".." / ".." / "shared" / "datasets" / "magnetic_tile")]:
        if cand and os.path.isdir(os.path.join(cand, "MT_Free")):
            return cand
    return None


ROOT = mtd_root()
pytestmark = pytest.mark.skipif(ROOT is None, reason="Magnetic Tile Defect data not found "
                                "(../shared/datasets/magnetic_tile or env EDGE_SDK_MTD)")

# Files in the published set (counted from its folders).
COUNTS = {"free": 952, "blowhole": 115, "break": 85, "crack": 57, "fray": 32, "uneven": 103}


def test_mtd_split_counts_and_determinism():
    train = load_dataset(ROOT, "mtd", "train")
    test = load_dataset(ROOT, "mtd", "test")
    n_test_good = round(0.2 * COUNTS["free"])
    assert len(train) == COUNTS["free"] - n_test_good
    assert set(train.labels) == {0}
    types = test.defect_types
    assert types.count("good") == n_test_good
    for t in ("blowhole", "break", "crack", "fray", "uneven"):
        assert types.count(t) == COUNTS[t]
    assert not set(train.paths) & set(test.paths)
    assert load_dataset(ROOT, "mtd", "train", seed=0).paths == train.paths
    assert load_dataset(ROOT, "mtd", "train", seed=1).paths != train.paths


def test_mtd_samples_binary_masks_right_size(rng):
    test = load_dataset(ROOT, "mtd", "test")
    bad = np.flatnonzero(test.labels == 1)
    good = np.flatnonzero(test.labels == 0)
    for i in list(rng.choice(bad, 25, replace=False)) + list(rng.choice(good, 5, replace=False)):
        s = test[int(i)]
        assert s.image.dtype == np.uint8 and s.image.ndim == 3 and s.image.shape[2] == 3
        assert (s.image[:, :, 0] == s.image[:, :, 2]).all()  # grayscale replicated
        if s.label:
            assert s.mask.shape == s.image.shape[:2] and s.mask.dtype == np.uint8
            assert set(np.unique(s.mask)) <= {0, 1}
            # 4 published MT_Uneven masks are all zero (checked in test_mtd_empty_defect_masks)
            assert s.mask.any() or s.defect_type == "uneven"
        else:
            assert s.mask is None
    g = load_dataset(ROOT, "mtd", "test", gray=True)[int(bad[0])]
    assert g.image.ndim == 2


def test_mtd_batches_by_size():
    test = load_dataset(ROOT, "mtd", "test")
    sub = test[:60]
    seen = []
    for b in iter_batches(sub, 8, same_size=True):
        assert len({s.image.shape for s in b}) == 1
        seen += [s.index for s in b]
    assert sorted(seen) == list(range(60))


def test_mtd_empty_defect_masks():
    """The published set has 4 MT_Uneven images whose masks mark nothing; the loader keeps them (label 1,
    all-zero mask) rather than guessing. Every other defect mask marks pixels."""
    from edge_sdk.data.imageio import read_mask

    test = load_dataset(ROOT, "mtd", "test")
    empty = [e for e in test.entries if e.label == 1 and not read_mask(e.mask_path).any()]
    assert len(empty) == 4 and {e.defect_type for e in empty} == {"uneven"}
