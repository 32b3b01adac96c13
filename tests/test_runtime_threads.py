"""The whole runtime (preprocessing, network, every post-processing kind, decision) gives the same
bits with 1, 2 and 4 CPU threads and with two runtimes called at once, on the small bundles of
every kind in tests/data/gpu_fixtures/ (no torch needed). Images are larger than the networks'
inputs so the resize and the heatmaps at image size have enough rows to be split between threads."""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from edge_sdk._native import core

FIXTURES = Path(__file__).resolve().parent / "data" / "gpu_fixtures"
NAMES = sorted(json.loads((FIXTURES / "index.json").read_text()))

pytestmark = pytest.mark.skipif("onnxruntime" not in core.available_backends(),
                                reason="built without the ONNX Runtime headers (scripts/fetch_onnxruntime_headers.sh)")


def _images(rng, name):
    gray = json.loads((FIXTURES / "index.json").read_text())[name]["kind"] in ("ssim", "mask")
    shape = (240, 300) if gray else (240, 300, 3)
    imgs = [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(7)]
    imgs.append(rng.integers(0, 256, (97, 131), dtype=np.uint8))  # another size (and channel count for RGB)
    return imgs


def _run(name, threads, images):
    rt = edge_sdk.Runtime(FIXTURES / f"{name}.bundle", threads=threads, max_batch=4)
    return rt.predict(images)


def _assert_same(a, b, what):
    np.testing.assert_array_equal(a.scores, b.scores, err_msg=what)
    np.testing.assert_array_equal(a.normalized, b.normalized, err_msg=what)
    np.testing.assert_array_equal(a.verdict_codes, b.verdict_codes, err_msg=what)
    assert len(a.heatmaps) == len(b.heatmaps)
    for i, (x, y) in enumerate(zip(a.heatmaps, b.heatmaps)):
        np.testing.assert_array_equal(x, y, err_msg=f"{what}: heatmap {i}")


@pytest.mark.parametrize("name", NAMES)
def test_thread_counts_give_the_same_bits(rng, name):
    images = _images(rng, name)
    one = _run(name, 1, images)
    assert one.heatmaps[0].shape == images[0].shape[:2]
    for threads in (2, 4):
        _assert_same(_run(name, threads, images), one, f"{name}, {threads} threads vs 1")


@pytest.mark.parametrize("name", NAMES)
def test_two_runtimes_at_once_give_the_same_bits(rng, name):
    images = _images(rng, name)
    one = _run(name, 1, images)
    rts = [edge_sdk.Runtime(FIXTURES / f"{name}.bundle", threads=t, max_batch=4) for t in (2, 4)]
    # Each runtime called from two threads at once (GIL released inside predict), 3 rounds each.
    jobs = [rts[i % 2] for i in range(12)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda rt: rt.predict(images), jobs))
    for i, res in enumerate(results):
        _assert_same(res, one, f"{name}, concurrent call {i}")
