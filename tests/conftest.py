import numpy as np
import pytest


@pytest.fixture
def rng():
    # Fresh random inputs each run; the seed is printed so a failure can be replayed.
    seed = int(np.random.SeedSequence().entropy % (2**32))
    print(f"rng seed {seed}")
    return np.random.default_rng(seed)


def pytest_collection_modifyitems(config, items):
    # Tests marked gpu (tests/gpu.py: requires_cuda) skip with a reason where no CUDA device is;
    # with EDGE_SDK_REQUIRE_GPU=1 (benchmarks/gpu_check) a missing device is an error instead.
    import os

    from tests.gpu import NO_CUDA_REASON, has_cuda_device

    if has_cuda_device():
        return
    if os.environ.get("EDGE_SDK_REQUIRE_GPU") == "1":
        raise pytest.UsageError("EDGE_SDK_REQUIRE_GPU=1 but edge_sdk.devices() lists no CUDA device")
    skip = pytest.mark.skip(reason=NO_CUDA_REASON)
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
