"""TensorRT engine builder: type-checked against TensorRT's API stubs (TensorRT cannot be installed
here), the parts that need no TensorRT (profiles, trtexec line, ONNX I/O), and the clear error of
`edge-sdk build-engine` without TensorRT. Building real engines: benchmarks/gpu_check."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sdk.converters import trt_builder as tb

ROOT = Path(__file__).resolve().parents[1]
# edge_sdk.cli imported as a module (python -m would run it as __main__, a second UserError class).
CLI = [sys.executable, "-c", "import sys; from edge_sdk.cli import main; sys.exit(main())"]


def _has_tensorrt():
    try:
        tb.require_tensorrt()
        return True
    except tb.TensorRTUnavailable:
        return False


def test_builder_type_checks_against_tensorrt_stubs(tmp_path):
    pytest.importorskip("mypy", reason="mypy is installed by scripts/setup.sh")
    stubs = subprocess.run([sys.executable, str(ROOT / "scripts" / "stage_tensorrt_stubs.py"), str(tmp_path / "stubs")],
                           capture_output=True, text=True)
    if stubs.returncode == 3:
        pytest.skip("tensorrt-stubs not installed (scripts/setup.sh installs it)")
    assert stubs.returncode == 0, stubs.stderr
    env = dict(os.environ, MYPYPATH=str(tmp_path / "stubs"))
    # --follow-imports=silent: strict on these modules only, not on the rest of edge_sdk they import.
    r = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
                        "--cache-dir", str(tmp_path / "cache"), "converters/trt_builder.py", "converters/engine_manifest.py", "converters/engine_bundle.py"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_stub_check_catches_api_misuse(tmp_path):
    """The check above is only worth something if it fails on misuse of TensorRT's API."""
    pytest.importorskip("mypy", reason="mypy is installed by scripts/setup.sh")
    stubs = subprocess.run([sys.executable, str(ROOT / "scripts" / "stage_tensorrt_stubs.py"), str(tmp_path / "stubs")],
                           capture_output=True, text=True)
    if stubs.returncode == 3:
        pytest.skip("tensorrt-stubs not installed (scripts/setup.sh installs it)")
    bad = tmp_path / "bad_use.py"
    bad.write_text("import tensorrt as trt\n"
                   "def f(p: trt.IOptimizationProfile, b: trt.Builder) -> None:\n"
                   "    p.set_shape('x', 3, trt.Dims([1]), trt.Dims([1]))\n"
                   "    b.create_netwrk(0)\n")
    env = dict(os.environ, MYPYPATH=str(tmp_path / "stubs"))
    r = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
                        "--config-file", str(ROOT / "pyproject.toml"), str(bad)], env=env, capture_output=True, text=True)
    assert r.returncode == 1
    assert "set_shape" in r.stdout and "create_netwrk" in r.stdout


def test_parse_profile():
    assert tb.parse_profile("1,60,64") == (1, 60, 64)
    assert tb.parse_profile([4, 4, 4]) == (4, 4, 4)
    for bad in ("1,60", "0,1,2", "8,4,16", "a,b,c"):
        with pytest.raises(ValueError, match="--profile"):
            tb.parse_profile(bad)


def test_profile_shapes_and_trtexec_line():
    inputs = [tb.TensorSpec("input", [-1, 3, 256, 256], "float32")]
    shapes = tb.profile_shapes(inputs, (1, 60, 64))
    assert shapes == {"input": {"min": [1, 3, 256, 256], "opt": [60, 3, 256, 256], "max": [64, 3, 256, 256]}}
    opts = tb.BuildOptions(precision="int8", profile=(1, 60, 64), workspace_mib=2048, timing_cache=Path("c/t.cache"))
    line = tb.trtexec_command("b/backbone.int8.onnx", "b/engines/x.engine", shapes, opts)
    for part in ("trtexec", "--onnx=b/backbone.int8.onnx", "--saveEngine=b/engines/x.engine", "--stronglyTyped",
                 "--minShapes=input:1x3x256x256", "--optShapes=input:60x3x256x256", "--maxShapes=input:64x3x256x256",
                 "--memPoolSize=workspace:2048M", "--timingCacheFile=c/t.cache", "--builderOptimizationLevel=3", "--noTF32"):
        assert part in line.split(), part
    with pytest.raises(tb.EngineBuildError, match="'input'.*dynamic dimensions"):
        tb.profile_shapes([tb.TensorSpec("input", [-1, 3, -1, 256], "float32")], (1, 1, 1))
    with pytest.raises(tb.EngineBuildError, match="fixed batch of 2"):
        tb.profile_shapes([tb.TensorSpec("input", [2, 3, 8, 8], "float32")], (1, 60, 64))


def test_onnx_io_reads_dynamic_batch(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Relu", ["input"], ["features"])], "g",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 8, 8])],
                          [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 3, 8, 8])])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g), str(path))
    ins, outs = tb.onnx_io(path)
    assert [t.to_dict() for t in ins] == [{"name": "input", "shape": [-1, 3, 8, 8], "dtype": "float32"}]
    assert outs[0].name == "features"


@pytest.mark.skipif(_has_tensorrt(), reason="TensorRT is installed: benchmarks/gpu_check builds real engines")
def test_build_engine_command_without_tensorrt_is_a_clear_error(tmp_path):
    onnx_file = tmp_path / "backbone.onnx"
    onnx_file.write_bytes(b"")  # never parsed: the TensorRT check comes first
    r = subprocess.run(CLI + ["build-engine", str(onnx_file), "--precision", "fp16"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert "build-engine: error:" in r.stderr and "TensorRT" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(CLI + ["build-engine", str(onnx_file), "--profile", "8,4,2"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "--profile" in r.stderr
    r = subprocess.run(CLI + ["build-engine", str(tmp_path / "nope")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "nope" in r.stderr


def test_trtexec_is_not_needed():
    # The builder uses TensorRT's Python API; trtexec is only printed. Guard against a refactor
    # that shells out to it.
    assert "subprocess" not in (ROOT / "converters" / "trt_builder.py").read_text()
    assert shutil.which is not None
