import os
import re

import numpy as np
import pytest

# EDGE_SDK_TEST_SEED=N replays a run: every test's rng then starts from N (else a fresh seed per
# test, printed with the test's output).
_SEED = os.environ.get("EDGE_SDK_TEST_SEED")

# With EDGE_SDK_REQUIRE_FULL=1 (.ci/run) a skip whose reason matches one of these is a failure:
# CI installs these packages and builds these backends, so their absence there is a broken setup,
# not a machine that lacks hardware. GPU, TensorRT and data set skips stay skips.
REQUIRED_IN_FULL = [
    r"could not import '(torch|onnx|onnxruntime|onnxconverter_common|scipy(\.\w+)*|skimage(\.\w+)*|matplotlib"
    r"|pytorch_msssim|mypy|edge_sdk\.models|cv2)'",
    r"mypy is installed by scripts/setup\.sh",
    r"tensorrt-stubs not installed",
    r"without the ONNX Runtime (headers|backend)",
    r"no ONNX Runtime backend",
    r"openvino wheel not installed",
    r"no OpenVINO backend in this build",
    r"not in this tree yet",
    r"does not implement postprocess kind",
    r"no headless chromium",
    r"Triton serving environment not installed",
]
_REQUIRED_RE = re.compile("|".join(f"(?:{p})" for p in REQUIRED_IN_FULL))


def pytest_report_header(config):
    from edge_sdk.kernels.mahalanobis import cpu_isa

    seed = f"EDGE_SDK_TEST_SEED={_SEED} (every test)" if _SEED else "fresh per test (set EDGE_SDK_TEST_SEED to replay)"
    full = os.environ.get("EDGE_SDK_REQUIRE_FULL") == "1"
    return [f"edge_sdk: rng seed {seed}; CPU kernel path {cpu_isa()}; require full: {'yes' if full else 'no'}"]


@pytest.fixture
def rng():
    # Fresh random inputs each run; the seed is printed so a failure can be replayed.
    seed = int(_SEED) if _SEED else int(np.random.SeedSequence().entropy % (2**32))
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


def _skip_reason(longrepr) -> str:
    return longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


def _fail_required_skip(report) -> None:
    if os.environ.get("EDGE_SDK_REQUIRE_FULL") != "1" or not report.skipped:
        return
    reason = _skip_reason(report.longrepr)
    if _REQUIRED_RE.search(reason):
        report.outcome = "failed"
        report.longrepr = f"EDGE_SDK_REQUIRE_FULL=1: skipped for something CI must have: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_required_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_required_skip(outcome.get_result())


def pytest_collection_modifyitems(config, items):
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
