"""The TensorRT backend of the runtime (edge_sdk.Runtime(..., backend="tensorrt")).

Here (no GPU, no TensorRT library): asking for it is a clear error, backend "auto" falls back to
a CPU backend (ONNX Runtime, or OpenVINO where timed faster), the option checks, and ONNX Runtime's TensorRT execution provider refused with the
providers it has. On a machine with a GPU, TensorRT and a build with the backend
(benchmarks/gpu_check runs `pytest -m tensorrt`): for every post-processing kind, engines built
from the bundle, the runtime pipeline on the GPU (the CPU's pipeline on device buffers) consistent
across chunk compositions and image sizes and equal to ONNX Runtime on the CPU, CUDA graphs, engine
selection refusing a stale engine, and reduced-precision engines against their ONNX variant."""

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

import edge_sdk
from edge_sdk.converters import export_bundle
from edge_sdk.converters import trt_builder as tb
from edge_sdk._native import core

from tests.bundle_helpers import embedding_parts, mask_parts, ssim_parts

pytestmark = pytest.mark.onnxruntime


def _has_tensorrt_python():
    try:
        tb.require_tensorrt()
        return True
    except tb.TensorRTUnavailable:
        return False


def _has_cuda():
    return any(d["kind"] == "cuda" for d in edge_sdk.devices())


TRT_BUILD = "tensorrt" in core.available_backends()
_NEEDS_TRT = [
    pytest.mark.tensorrt,
    pytest.mark.skipif(not TRT_BUILD, reason="this build has no TensorRT backend (needs TensorRT's headers and "
                                             "libnvinfer and the CUDA toolkit at build time); benchmarks/gpu_check runs these"),
    pytest.mark.skipif(not _has_cuda(), reason="needs a CUDA device (none on this machine); benchmarks/gpu_check runs these"),
    pytest.mark.skipif(not _has_tensorrt_python(), reason="needs TensorRT's Python package to build engines"),
]


def needs_trt(f):
    """Marks a test `tensorrt` (selected by `pytest -m tensorrt`) and skips it, with the reason,
    where the build, the device or TensorRT is missing."""
    for m in _NEEDS_TRT:
        f = m(f)
    return f


def _ssim_bundle(tmp_path):
    torch.set_num_threads(1)
    return export_bundle(ssim_parts(size=32), tmp_path / "b", model_type="resganad").bundle


# ---- without TensorRT (runs everywhere) -------------------------------------------------------------

@pytest.mark.skipif(TRT_BUILD, reason="this build has the TensorRT backend")
def test_tensorrt_backend_missing_is_a_clear_error(tmp_path):
    b = _ssim_bundle(tmp_path)
    with pytest.raises(RuntimeError, match=r"(?s)no TensorRT backend.*TENSORRT_ROOT.*provider=\"tensorrt\""):
        edge_sdk.Runtime(b, device="cuda:0", backend="tensorrt")
    assert "tensorrt" not in edge_sdk.runtime.available_backends()


def test_unknown_backend_names_the_option(tmp_path):
    b = _ssim_bundle(tmp_path)
    with pytest.raises(ValueError, match=r"backend.*\"onnxruntime\", \"openvino\", \"tensorrt\" or \"auto\".*\"trt\""):
        edge_sdk.Runtime(b, backend="trt")


def test_auto_backend_without_engine_is_a_cpu_backend(tmp_path, rng):
    # No engine: ONNX Runtime, or OpenVINO where it is installed and timed faster at load
    # (tests/test_openvino_backend.py tests that choice).
    b = _ssim_bundle(tmp_path)
    imgs = rng.integers(0, 256, (3, 32, 32), dtype=np.uint8)
    ref = edge_sdk.Runtime(b, threads=1).predict(imgs)
    rt = edge_sdk.Runtime(b, threads=1, backend="auto")
    assert rt.backend.startswith(("onnxruntime", "openvino")) and "auto: picked" in rt.backend
    res = rt.predict(imgs)
    if rt.backend.startswith("onnxruntime"):
        np.testing.assert_array_equal(res.scores, ref.scores)
    else:
        np.testing.assert_allclose(res.scores, ref.scores, rtol=1e-4)
    assert list(res.verdicts) == list(ref.verdicts)


def test_ensure_engines_options(tmp_path):
    b = _ssim_bundle(tmp_path)
    from edge_sdk.converters.engine_bundle import ensure_engines

    with pytest.raises(ValueError, match="device.*cuda:N.*'cpu'"):
        ensure_engines(b, "fp32", device="cpu")
    if not _has_tensorrt_python():
        with pytest.raises(tb.TensorRTUnavailable, match="TensorRT"):
            ensure_engines(b, "fp32", device="cuda:0")


def test_onnxruntime_tensorrt_provider_missing_names_the_providers(tmp_path):
    info = core.onnxruntime_info(edge_sdk.runtime.find_onnxruntime_library())
    if "TensorrtExecutionProvider" in info["providers"]:
        pytest.skip("this onnxruntime has the TensorRT execution provider")
    b = _ssim_bundle(tmp_path)
    with pytest.raises(RuntimeError, match=r"provider tensorrt.*no TensorrtExecutionProvider.*CPUExecutionProvider"):
        edge_sdk.Runtime(b, provider="tensorrt", trt_cache_dir=tmp_path / "cache")


# ---- with a GPU, TensorRT and a build with the backend ----------------------------------------------

def _calibrated(parts, scores):
    s = np.sort(scores.astype(np.float64))
    mid = len(s) // 2
    parts.calibration = {"threshold": float((s[mid - 1] + s[mid]) / 2), "min": float(s[0]), "max": float(s[-1]) + 1e-3}


KINDS = {
    "mahalanobis": lambda: embedding_parts("mahalanobis", image_score="max_blurred"),
    "knn": lambda: embedding_parts("knn"),
    "knn_reweight_f16": lambda: embedding_parts("knn", reweight=True, bank_dtype=np.float16),
    "mhbc": lambda: embedding_parts("mhbc"),
    "ssim": lambda: ssim_parts(size=32, channels=3),
    "mask": lambda: mask_parts(),
}


def _size(parts):
    return parts.preprocess["height"], parts.preprocess["width"], parts.preprocess["channels"]


def _images(rng, parts, n):
    h, w, c = _size(parts)
    shape = (n, h, w, 3) if c == 3 else (n, h, w)
    return rng.integers(0, 256, shape, dtype=np.uint8)


MODEL_TYPES = {"mahalanobis": "padim", "knn": "patchcore", "knn_reweight_f16": "patchcore", "mhbc": "mhbc",
               "ssim": "resganad", "mask": "grdnet"}


def _bundle_with_engines(tmp_path, kind, rng, precisions=("fp32",)):
    parts = KINDS[kind]()
    b0 = export_bundle(parts, tmp_path / "b0", model_type=MODEL_TYPES[kind]).bundle
    probe = edge_sdk.Runtime(b0, threads=1).predict(_images(rng, parts, 8))
    _calibrated(parts, probe.scores)  # both verdicts occur
    b = export_bundle(parts, tmp_path / "b", model_type=MODEL_TYPES[kind]).bundle
    from edge_sdk.converters.engine_bundle import ensure_engines

    for p in precisions:
        ensure_engines(b, p, device="cuda:0", max_batch=8,
                       build_options=tb.BuildOptions(precision=p, profile=(1, 4, 8), workspace_mib=1024))
    return parts, b


@needs_trt
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_tensorrt_pipeline_on_the_device_equals_onnxruntime(tmp_path, rng, kind):
    parts, b = _bundle_with_engines(tmp_path, kind, rng)
    imgs = list(_images(rng, parts, 6))
    rt = edge_sdk.Runtime(b, device="cuda:0", backend="tensorrt", max_batch=8)
    assert "TensorRT" in rt.backend and "whole cycle on cuda:0" in rt.backend, rt.backend
    dev = rt.predict(imgs)  # one chunk of same-size uint8 images
    odd = rng.integers(0, 256, (parts.preprocess["height"] + 7, parts.preprocess["width"] + 3, 3), dtype=np.uint8)
    if parts.preprocess["channels"] == 1:
        odd = odd[..., 0]
    host = rt.predict(imgs + [odd])  # sizes differ, a batch of 7: the same pipeline, another chunk
    assert dev.times["preprocess"] >= 0 and dev.times["network"] > 0
    np.testing.assert_allclose(dev.scores, host.scores[:6], rtol=2e-5, atol=1e-6)
    assert list(dev.verdicts) == list(host.verdicts[:6])
    np.testing.assert_allclose(np.stack(dev.heatmaps), np.stack(host.heatmaps[:6]), rtol=1e-4, atol=2e-5)
    # Against ONNX Runtime on the CPU (fp32 engine without TF32: network differences are rounding).
    ref = edge_sdk.Runtime(b, threads=1, max_batch=8).predict(imgs + [odd])
    np.testing.assert_allclose(host.scores, ref.scores, rtol=1e-3, atol=1e-5)
    thr = parts.calibration["threshold"]
    clear = np.abs(ref.scores - thr) > 1e-3 * max(abs(thr), 1e-3)
    assert list(host.verdicts[clear]) == list(ref.verdicts[clear])
    for a, r in zip(host.heatmaps, ref.heatmaps):
        np.testing.assert_allclose(a, r, rtol=1e-3, atol=1e-4)
    # Heatmaps off: same scores (the maps still feed "max_blurred" scores on the device).
    quiet = edge_sdk.Runtime(b, device="cuda:0", backend="tensorrt", max_batch=8, heatmaps=False).predict(imgs)
    np.testing.assert_allclose(quiet.scores, dev.scores, rtol=1e-5, atol=1e-7)


@needs_trt
def test_tensorrt_cuda_graph_and_batches(tmp_path, rng):
    parts, b = _bundle_with_engines(tmp_path, "knn_reweight_f16", rng)
    imgs = list(_images(rng, parts, 11))
    plain = edge_sdk.Runtime(b, device="cuda:0", backend="tensorrt", max_batch=4).predict(imgs)  # chunks 4, 4, 3
    rt = edge_sdk.Runtime(b, device="cuda:0", backend="tensorrt", max_batch=4, cuda_graph=True)
    for _ in range(3):  # capture, then replays (batch sizes 4 and 3 alternate)
        res = rt.predict(imgs)
        # Separate engines from one plan: equal up to kernels that accumulate in a varying order.
        np.testing.assert_allclose(res.scores, plain.scores, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(np.stack(res.heatmaps), np.stack(plain.heatmaps), rtol=1e-5, atol=1e-6)


@needs_trt
def test_tensorrt_refuses_a_stale_engine_with_reasons(tmp_path, rng):
    parts, b = _bundle_with_engines(tmp_path, "ssim", rng)
    engines = sorted((b / "engines").glob("*.engine"))
    assert engines
    meta = engines[0].with_name(engines[0].name + ".json")
    doc = json.loads(meta.read_text())
    doc["tensorrt_version"] = "9.0.0.1"
    meta.write_text(json.dumps(doc))
    with pytest.raises(RuntimeError, match=r"(?s)no fp32 engine.*matches.*tensorrt_version.*9\.0\.0\.1.*build-engine"):
        edge_sdk.Runtime(b, device="cuda:0", backend="tensorrt", max_batch=8)
    # auto falls back to ONNX Runtime (its CPU provider here: the onnxruntime wheel may lack CUDA);
    # ensure_engines (converter side) builds a matching engine, which the runtime then loads.
    auto = edge_sdk.Runtime(b, device="cuda:0", backend="auto", provider="cpu", max_batch=8)
    assert auto.backend.startswith("onnxruntime"), auto.backend
    from edge_sdk.converters.engine_bundle import ensure_engines

    ensure_engines(b, "fp32", device="cuda:0", max_batch=8)
    rt = edge_sdk.Runtime(b, device="cuda:0", backend="tensorrt", max_batch=8)
    assert "TensorRT" in rt.backend
    # An archived bundle needs the engines folder.
    shutil.copytree(b / "engines", tmp_path / "engines")
    rt2 = edge_sdk.Runtime(b, device="cuda:0", backend="tensorrt", max_batch=8, engines_dir=tmp_path / "engines")
    imgs = _images(rng, parts, 3)
    np.testing.assert_allclose(rt2.predict(imgs).scores, rt.predict(imgs).scores, rtol=1e-5, atol=1e-7)


@needs_trt
def test_tensorrt_reduced_precision_engines_follow_their_onnx_variant(tmp_path, rng):
    """fp16 / int8 engines are built from the gated ONNX variants: TensorRT's result stays near
    onnxruntime's result for the same variant (both reduced precision)."""
    from edge_sdk.converters.precision_bundle import add_precision_variants

    parts = KINDS["mahalanobis"]()
    train = _images(rng, parts, 16)
    val = _images(rng, parts, 40)
    labels = np.r_[np.zeros(20), np.ones(20)].astype(int)
    val[20:, 8:20, 8:20] = 255  # bright squares: anomalous
    b0 = export_bundle(parts, tmp_path / "b0", model_type="padim").bundle
    _calibrated(parts, edge_sdk.Runtime(b0, threads=1).predict(val).scores)  # threshold between two scores
    b = export_bundle(parts, tmp_path / "b", model_type="padim").bundle
    reports = add_precision_variants(b, ["fp16"], calibration_images=list(train), validation_images=list(val),
                                     validation_labels=labels, threads=1, log=lambda _: None)
    if not reports["fp16"].accepted:
        pytest.fail(f"the fp16 variant of this small model failed the gate: {reports['fp16']}")
    from edge_sdk.converters.engine_bundle import ensure_engines

    ensure_engines(b, "fp16", device="cuda:0", max_batch=8,
                   build_options=tb.BuildOptions(precision="fp16", profile=(1, 4, 8), workspace_mib=1024))
    trt_res = edge_sdk.Runtime(b, device="cuda:0", backend="tensorrt", precision="fp16", max_batch=8).predict(val)
    ort_res = edge_sdk.Runtime(b, threads=1, precision="fp16", max_batch=8).predict(val)
    np.testing.assert_allclose(trt_res.scores, ort_res.scores, rtol=2e-2, atol=1e-3)
