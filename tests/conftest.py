import numpy as np
import pytest


@pytest.fixture
def rng():
    # Fresh random inputs each run; the seed is printed so a failure can be replayed.
    seed = int(np.random.SeedSequence().entropy % (2**32))
    print(f"rng seed {seed}")
    return np.random.default_rng(seed)


@pytest.fixture
def torch_one_thread():
    # One torch thread in tests that train or export: results do not depend on the core count,
    # and the suite does not oversubscribe a small machine. Opt in with
    # pytestmark = pytest.mark.usefixtures("torch_one_thread").
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def recon_tiny():
    """ReconConfig settings of a ResGANAD / GRD-Net that trains in seconds on one core."""
    return dict(size=32, filters=2, stages=2, blocks=1, disc_filters=4, unet_filters=4, unet_depth=2, batch_size=8)


def pytest_collection_modifyitems(config, items):
    import os

    from edge_sdk._native import core
    from tests.gpu import NO_CUDA_REASON, has_cuda_device

    # Tests marked onnxruntime run bundles through the runtime's ONNX Runtime backend.
    if "onnxruntime" not in core.available_backends():
        skip = pytest.mark.skip(reason="built without the ONNX Runtime headers (scripts/fetch_onnxruntime_headers.sh)")
        for item in items:
            if item.get_closest_marker("onnxruntime") is not None:
                item.add_marker(skip)
    # Tests marked gpu (tests/gpu.py: requires_cuda) skip with a reason where no CUDA device is;
    # with EDGE_SDK_REQUIRE_GPU=1 (benchmarks/gpu_check) a missing device is an error instead.
    if has_cuda_device():
        return
    if os.environ.get("EDGE_SDK_REQUIRE_GPU") == "1":
        raise pytest.UsageError("EDGE_SDK_REQUIRE_GPU=1 but edge_sdk.devices() lists no CUDA device")
    skip = pytest.mark.skip(reason=NO_CUDA_REASON)
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
