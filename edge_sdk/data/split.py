"""Deterministic seeded train/test split of a list of good images."""

from __future__ import annotations

import numpy as np

from edge_sdk.data.sample import DataError


def split_good(paths: list[str], test_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, test) from sorted ``paths``: ``round(test_fraction * n)`` images chosen by a permutation
    from ``numpy.random.default_rng(seed)`` go to test. Both lists keep sorted order. The result depends
    only on the sorted file names, the fraction and the seed."""
    if not 0.0 <= float(test_fraction) < 1.0:
        raise DataError(f"test_fraction must be in [0, 1), got {test_fraction}")
    paths = sorted(paths)
    n = len(paths)
    n_test = int(round(float(test_fraction) * n))
    perm = np.random.default_rng(int(seed)).permutation(n)
    test_idx = set(perm[:n_test].tolist())
    train = [p for i, p in enumerate(paths) if i not in test_idx]
    test = [p for i, p in enumerate(paths) if i in test_idx]
    return train, test
