"""Marks for tests that need a CUDA device. They skip here (no GPU) with that reason; on a GPU
machine benchmarks/gpu_check runs them together."""

import pytest

import edge_sdk


def has_cuda_device() -> bool:
    return any(d["kind"] == "cuda" for d in edge_sdk.devices())


requires_cuda = pytest.mark.skipif(
    not has_cuda_device(),
    reason="needs a CUDA device (none on this machine); benchmarks/gpu_check runs these on a GPU",
)
