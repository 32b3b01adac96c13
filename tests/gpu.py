"""Marks for tests that need a CUDA device.

``requires_cuda`` is the ``gpu`` marker: use it as a decorator (``@requires_cuda``), in
``pytestmark = requires_cuda`` or in ``pytest.param(..., marks=requires_cuda)``. Every test carrying
it is selected by ``pytest -m gpu`` (benchmarks/gpu_check runs exactly those on a GPU machine) and,
on a machine without a CUDA device, is skipped with the reason below (tests/conftest.py).
"""

import pytest

import edge_sdk


def has_cuda_device() -> bool:
    return any(d["kind"] == "cuda" for d in edge_sdk.devices())


NO_CUDA_REASON = "needs a CUDA device (none on this machine); benchmarks/gpu_check runs these on a GPU"

requires_cuda = pytest.mark.gpu
