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


def split_labelled(dataset, fraction: float, seed: int):
    """(validation, rest) of a labelled data set, stratified by defect type ("good" included):
    ``round(fraction * n_type)`` samples of each type, chosen by a permutation from
    ``numpy.random.default_rng(seed)`` over the type's sorted paths, go to validation. Both parts are
    ImageDatasets in the original order and never share a sample."""
    from edge_sdk.data.dataset import ImageDataset

    if not 0.0 < float(fraction) < 1.0:
        raise DataError(f"validation fraction must be in (0, 1), got {fraction}")
    by_type: dict[str, list[int]] = {}
    for i, t in enumerate(dataset.defect_types):
        by_type.setdefault(t, []).append(i)
    rng = np.random.default_rng(int(seed))
    chosen: set[int] = set()
    for t in sorted(by_type):
        idx = sorted(by_type[t], key=lambda i: dataset.paths[i])
        k = int(round(float(fraction) * len(idx)))
        chosen.update(idx[j] for j in rng.permutation(len(idx))[:k].tolist())
    entries = dataset.entries
    kw = dict(gray=dataset.gray, name=dataset.name)
    val = ImageDataset([e for i, e in enumerate(entries) if i in chosen], split="validation", **kw)
    rest = ImageDataset([e for i, e in enumerate(entries) if i not in chosen], split=dataset.split, **kw)
    return val, rest
