"""The GPU side of the project, staged so that one command on a lent GPU machine can pass the first
time and a cut-short run still says what it found. benchmarks/gpu_check is the entry point.

Steps (each check runs in its own process with its own timeout; the results are appended to one
JSON file as they come; a summary is printed at the end, also when the run is cut short):

  1  build       the core with the CUDA kernels for this GPU's architecture (nvidia-smi
                 --query-gpu=compute_cap, or CUDA_ARCH) from the carried tree, ONNX Runtime headers
                 from the carried third_party/ (nothing is fetched), then: the module sees the GPU.
                 Expected on a 16-core H200 machine: 3-5 min (timeout 480 s).
  2  parity      ctest of the CUDA build; the CUDA kernels against their CPU twins (pytest -m gpu
                 on tests/test_kernels_gpu.py, test_knn.py, test_color_order.py, test_mahalanobis.py; a skip
                 there is a failure); the runtime on cuda:0 against the CPU runtime and the stored
                 CPU outputs on the fixture bundles of tests/data/gpu_fixtures/ (every
                 post-processing kind; network on ONNX Runtime's CPU provider, so onnxruntime-gpu
                 is not needed; with it, also its CUDA provider). Expected 1-2 min (timeout 300 s).
  3  tensorrt    when TensorRT's Python package is importable and the build has the TensorRT
                 backend: engines for the fixture bundles, outputs against the stored ONNX Runtime
                 CPU outputs. Expected 1-3 min (timeout 300 s); skipped with the reason otherwise.
  4  timings     kernel and runtime timings CPU vs GPU, into the JSON (no pass mark: speed is
                 reported, not asserted). Expected under 1 min (timeout 120 s).

Whole run, all steps: about 6-10 min, inside one 10-minute command with --budget (default 570 s:
every check's timeout is cut to what is left, and a step that no longer fits is recorded as
skipped for lack of time, so the summary is always printed before the caller's limit).

Usage (repository root):
  benchmarks/gpu_check [--out DIR] [--step N[,N]] [--resume] [--budget S] [--dry-run] [--strict]
  --out DIR    where gpu_check.json goes (default $EDGE_SDK_GPU_CHECK_OUT, else $OUT, else
               benchmarks/results/gpu_check)
  --step N     only these steps; --resume: steps already passed in DIR/gpu_check.json are kept
  --dry-run    the CPU stand-in (what CI runs, tests/test_gpu_check.py): every runtime pipeline
               comparison with device="cpu" (threads 2 against the stored threads-1 outputs), the
               CPU timings; the CUDA checks are skipped with that reason
  --strict     a skipped check fails the run too (default: skips are counted and listed)
Env: PYTHON, EDGE_SDK_GPU_BUILD (build folder, default build-gpu), CUDA_ARCH, TENSORRT_ROOT.

On the lent device (no network; the tree arrives without git-ignored paths unless carried):
  command: benchmarks/gpu_check --out "$OUT"
  carry:   ["third_party"]   (the ONNX Runtime and TensorRT headers), and ".whl" where the image
           lacks a package: wheels for the device's Python (pybind11 and cmake to build, numpy and
           pytest, onnxruntime for the runtime checks), installed with pip --no-index by step 1
  --wheels DIR  that folder (default .whl, git-ignored; env EDGE_SDK_GPU_CHECK_WHEELS)
Exit status: 0 when no check failed or timed out, 1 otherwise, 124 when killed (SIGTERM/SIGINT).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "data" / "gpu_fixtures"
PY = os.environ.get("PYTHON", sys.executable)
BUILD = os.environ.get("EDGE_SDK_GPU_BUILD", "build-gpu")
STEP_NAMES = {1: "build", 2: "parity", 3: "tensorrt", 4: "timings"}
STEP_TIMEOUT = {1: 480, 2: 300, 3: 300, 4: 120}

# ---------------------------------------------------------------------------------------------
# Checks that run inside a child process (python gpu_check.py --_check NAME ...). Each returns
# (status, reason, detail) or raises (a failure with the exception as the reason).


class Skip(Exception):
    pass


def _fixture_sets():
    index = json.loads((FIXTURES / "index.json").read_text())
    import numpy as np

    for name, entry in index.items():
        data = np.load(FIXTURES / entry["data"])
        images = [data[f"image_{i}"] for i in range(entry["images"])]
        yield name, FIXTURES / entry["bundle"], images, data


def _compare(res, data, n, rtol, atol_score, atol_map):
    import numpy as np

    np.testing.assert_allclose(res.scores, data["scores"], rtol=rtol, atol=atol_score)
    np.testing.assert_allclose(res.normalized, data["normalized"], rtol=rtol, atol=atol_score)
    np.testing.assert_array_equal(res.verdict_codes, data["verdict_codes"])
    worst = 0.0
    for i in range(n):
        got, want = np.asarray(res.heatmaps[i]), data[f"heatmap_{i}"]
        assert got.shape == want.shape, f"heatmap {i}: {got.shape} != {want.shape}"
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol_map, err_msg=f"heatmap {i}")
        worst = max(worst, float(np.abs(got - want).max()) if got.size else 0.0)
    return {"max_abs_score": float(np.abs(res.scores - data["scores"]).max()), "max_abs_heatmap": worst}


def _need_onnxruntime():
    import edge_sdk

    if "onnxruntime" not in edge_sdk.runtime.available_backends():
        raise AssertionError("the build has no ONNX Runtime backend (third_party/onnxruntime not carried?)")
    if not edge_sdk.runtime.find_onnxruntime_library():
        raise Skip("no ONNX Runtime library on this machine (pip install onnxruntime, e.g. from a carried "
                   "wheel folder)")


def check_runtime(device: str):
    """The unified runtime on `device` against the stored CPU outputs, every fixture bundle."""
    import edge_sdk

    _need_onnxruntime()
    detail = {}
    for name, bundle, images, data in _fixture_sets():
        # Network on the CPU provider: the post-processing kernels run on `device`.
        threads = 2 if device == "cpu" else 1
        rt = edge_sdk.Runtime(bundle, device=device, threads=threads, provider="cpu", max_batch=4)
        res = rt.predict(images)
        detail[name] = _compare(res, data, len(images), rtol=1e-4, atol_score=1e-6, atol_map=1e-5)
        print(f"  {name}: {rt.backend} on {device}: {detail[name]}", flush=True)
    return "pass", "", detail


def check_runtime_ort_cuda():
    """The network on ONNX Runtime's CUDA provider too (onnxruntime-gpu), every fixture bundle."""
    import edge_sdk

    _need_onnxruntime()
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise Skip(f"onnxruntime not importable ({e})")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise Skip(f"the installed onnxruntime has no CUDA provider ({ort.get_available_providers()}); "
                   "onnxruntime-gpu is not on this machine")
    detail = {}
    for name, bundle, images, data in _fixture_sets():
        res = edge_sdk.Runtime(bundle, device="cuda:0", threads=1, max_batch=4).predict(images)
        # cuDNN convolutions sum in another order than the CPU provider: looser than the kernels.
        detail[name] = _compare(res, data, len(images), rtol=1e-3, atol_score=1e-5, atol_map=1e-4)
    return "pass", "", detail


def check_tensorrt():
    import edge_sdk

    try:
        import tensorrt  # noqa: F401
    except ImportError as e:
        raise Skip(f"TensorRT's Python package is not on this machine ({e})")
    if "tensorrt" not in edge_sdk.runtime.available_backends():
        raise AssertionError("tensorrt is importable but the build has no TensorRT backend (step 1 did not find "
                             "libnvinfer or the headers of third_party/tensorrt)")
    _need_onnxruntime()
    try:
        import onnx  # noqa: F401  (the engine builder reads the networks' inputs with it)
    except ImportError as e:
        raise Skip(f"the onnx package is not on this machine ({e}); carry its wheel in .whl")
    detail = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, bundle, images, data in _fixture_sets():
            # A copy: engines are written beside nothing in the tree.
            engines = Path(tmp) / name
            t0 = time.perf_counter()
            rt = edge_sdk.Runtime(bundle, device="cuda:0", backend="tensorrt", rebuild_engines=True,
                                  engines_dir=engines, max_batch=4, threads=1)
            build_s = time.perf_counter() - t0
            res = rt.predict(images)
            # TensorRT picks its own kernels (fp32, TF32 off by default in the builder): 1e-3.
            detail[name] = _compare(res, data, len(images), rtol=1e-3, atol_score=1e-5, atol_map=1e-4)
            detail[name]["engine_build_s"] = round(build_s, 2)
            print(f"  {name}: {rt.backend}: {detail[name]}", flush=True)
    return "pass", "", detail


def _median_ms(fn, rounds):
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return round(times[len(times) // 2], 3)


def check_timings(devices: list[str], small: bool):
    import numpy as np

    import edge_sdk
    from edge_sdk import kernels as k

    rng = np.random.default_rng(0)
    n = 4 if small else 60
    a = rng.random((n, 256, 256), dtype=np.float32)
    b = np.clip(a + 0.05 * rng.standard_normal(a.shape, dtype=np.float32), 0, 1)
    maps = rng.random((n, 64, 64), dtype=np.float32)
    feats = rng.standard_normal((n if small else 16, 64 * 64, 32), dtype=np.float32)
    mean = rng.standard_normal((64 * 64, 32)).astype(np.float32)
    chol = np.tile(np.eye(32, dtype=np.float32), (64 * 64, 1, 1))
    q = rng.standard_normal((4096, 64), dtype=np.float32)
    bank = rng.standard_normal((8192 if small else 65536, 64), dtype=np.float32)
    rounds = 3 if small else 10
    out: dict = {"kernels": {}, "runtime": {}}
    for dev in devices:
        out["kernels"][dev] = {
            f"ssim {n}x256x256": _median_ms(lambda: k.ssim(a, b, device=dev), rounds),
            f"resize_blur {n}x64x64->256x256 s4": _median_ms(lambda: k.resize_blur(maps, (256, 256), sigma=4.0,
                                                                                    device=dev), rounds),
            f"mahalanobis {feats.shape[0]}x4096x32": _median_ms(lambda: k.mahalanobis(feats, mean, chol, device=dev),
                                                                  rounds),
            f"knn 4096 x {bank.shape[0]}x64": _median_ms(lambda: k.knn(q, bank, k=1, device=dev), rounds),
        }
    if "onnxruntime" in edge_sdk.runtime.available_backends() and edge_sdk.runtime.find_onnxruntime_library():
        for name, bundle, images, _ in _fixture_sets():
            batch = [images[i % (len(images) - 1)] for i in range(16)]  # same-size images
            out["runtime"][name] = {}
            for dev in devices:
                rt = edge_sdk.Runtime(bundle, device=dev, provider="cpu", max_batch=16)
                out["runtime"][name][dev] = {"batch16_ms": _median_ms(lambda: rt.predict(batch), rounds)}
    print(json.dumps(out, indent=1), flush=True)
    return "pass", "", out


def run_child_check(name: str, dry: bool) -> int:
    result_path = os.environ["GPU_CHECK_RESULT"]
    dev = "cpu" if dry else "cuda:0"
    try:
        if name == "runtime":
            r = check_runtime(dev)
        elif name == "runtime_ort_cuda":
            r = check_runtime_ort_cuda()
        elif name == "tensorrt":
            r = check_tensorrt()
        elif name == "timings":
            r = check_timings(["cpu"] if dry else ["cpu", "cuda:0"], small=dry)
        elif name == "module":
            r = check_module(dry)
        else:
            raise ValueError(f"unknown check {name!r}")
    except Skip as e:
        r = ("skip", str(e), None)
    except Exception as e:  # the check failed: the reason goes into the JSON, the trace to the log
        import traceback

        traceback.print_exc()
        r = ("fail", f"{type(e).__name__}: {str(e)[:2000]}", None)
    Path(result_path).write_text(json.dumps({"status": r[0], "reason": r[1], "detail": r[2]}))
    return 0


def check_module(dry: bool):
    import edge_sdk

    backends = edge_sdk.runtime.available_backends()
    cuda = [d for d in edge_sdk.devices() if d["kind"] == "cuda"]
    detail = {"built_with_cuda": edge_sdk.built_with_cuda(), "devices": edge_sdk.devices(), "backends": backends}
    print(detail, flush=True)
    if "onnxruntime" not in backends:
        raise AssertionError("no ONNX Runtime backend in the build: third_party/onnxruntime/include was not there "
                             "(carry third_party)")
    if not dry and not (edge_sdk.built_with_cuda() and cuda):
        raise AssertionError(f"the module lists no CUDA device: {detail}")
    return "pass", "", detail


# ---------------------------------------------------------------------------------------------
# The driver.


def _cuda_arch() -> str:
    if os.environ.get("CUDA_ARCH"):
        return os.environ["CUDA_ARCH"]
    out = subprocess.run(["nvidia-smi", "--query-gpu=compute_cap", "--format=csv,noheader"], capture_output=True,
                         text=True, timeout=30)
    caps = sorted({c.strip().replace(".", "") for c in out.stdout.split() if c.strip()})
    if out.returncode != 0 or not caps:
        raise RuntimeError(f"nvidia-smi --query-gpu=compute_cap failed: {out.stderr.strip()}")
    return ";".join(caps)


def _importable(module: str) -> bool:
    return subprocess.run([PY, "-c", f"import {module}"], capture_output=True).returncode == 0


def _nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    for d in sorted(Path("/usr/local").glob("cuda*/bin"), reverse=True):
        if (d / "nvcc").exists():
            return str(d / "nvcc")
    return None


class Driver:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.json_path = self.out / "gpu_check.json"
        self.t_start = time.monotonic()
        self.child: subprocess.Popen | None = None
        self.current: tuple[int, str] | None = None
        old = {}
        if args.resume and self.json_path.exists():
            old = json.loads(self.json_path.read_text())
        self.doc = {"dry_run": args.dry_run, "host": platform.node(), "python": sys.version.split()[0],
                    "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "budget_s": args.budget,
                    "checks": [c for c in old.get("checks", []) if self._kept(old, c["step"])]}
        self.kept_steps = sorted({c["step"] for c in self.doc["checks"]})

    @staticmethod
    def _kept(old, step) -> bool:
        # A step is kept on --resume when all its checks passed or skipped (a skip is re-tried only
        # when asked for with --step).
        cs = [c for c in old.get("checks", []) if c["step"] == step]
        return bool(cs) and all(c["status"] in ("pass", "skip") for c in cs)

    def save(self):
        tmp = self.json_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.doc, indent=1) + "\n")
        tmp.replace(self.json_path)

    def left(self) -> float:
        return self.args.budget - (time.monotonic() - self.t_start)

    def record(self, step, name, status, seconds, reason="", detail=None):
        entry = {"step": step, "step_name": STEP_NAMES[step], "name": name, "status": status,
                 "seconds": round(seconds, 1), "reason": reason}
        if detail is not None:
            entry["detail"] = detail
        self.doc["checks"].append(entry)
        self.save()
        mark = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP", "timeout": "TIMEOUT", "killed": "KILLED"}[status]
        print(f"-- {mark} [{step}] {name} ({seconds:.1f} s){': ' + reason if reason else ''}", flush=True)

    def run(self, step, name, cmd, timeout, env=None, python_check=None):
        """Runs one check in its own process group; records pass/fail/timeout."""
        timeout = min(timeout, self.left() - 5)
        if timeout < 10:
            self.record(step, name, "skip", 0.0, f"out of time: {self.left():.0f} s left of --budget {self.args.budget}")
            return "skip"
        result = None
        e = dict(os.environ, **(env or {}))
        # The in-place module of this tree, whatever the caller's path (the script's own folder is
        # what python puts first).
        e["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([e["PYTHONPATH"]] if e.get("PYTHONPATH") else []))
        if python_check:
            fd, result = tempfile.mkstemp(prefix="gpu_check_", suffix=".json")
            os.close(fd)
            e["GPU_CHECK_RESULT"] = result
            cmd = [PY, str(Path(__file__).resolve()), "--_check", python_check] + (["--dry-run"] if self.args.dry_run
                                                                                 else [])
        t0 = time.monotonic()
        # SIGTERM / SIGINT held back until the child is known, so the handler can always kill it
        # (a signal inside Popen() would leave it running); the child itself starts unblocked.
        stop = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)
        try:
            self.current = (step, name)
            print(f"\n== [{step}] {name} (timeout {timeout:.0f} s)", flush=True)
            self.child = subprocess.Popen(cmd, cwd=ROOT, env=e, start_new_session=True,
                                          preexec_fn=lambda: signal.pthread_sigmask(signal.SIG_UNBLOCK, stop))
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stop)
        try:
            rc = self.child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill_child()
            self.current = None
            if result:
                os.unlink(result)
            self.record(step, name, "timeout", time.monotonic() - t0, f"still running after {timeout:.0f} s")
            return "timeout"
        self.child, self.current = None, None
        dt = time.monotonic() - t0
        if result:
            try:
                r = json.loads(Path(result).read_text() or "{}")
            finally:
                os.unlink(result)
            if not r:
                r = {"status": "fail", "reason": f"the check process ended with status {rc} before reporting"}
            self.record(step, name, r["status"], dt, r.get("reason", ""), r.get("detail"))
            return r["status"]
        self.record(step, name, "pass" if rc == 0 else "fail", dt, "" if rc == 0 else f"exit status {rc}")
        return "pass" if rc == 0 else "fail"

    def _kill_child(self, reap=True):
        if self.child and self.child.returncode is None:
            try:
                os.killpg(self.child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            # Not from the signal handler: it may interrupt Popen.wait, which holds the lock a
            # second wait would block on; the process is about to exit anyway.
            if reap:
                self.child.wait()

    def on_signal(self, signum, _frame):
        t = time.monotonic() - self.t_start
        self._kill_child(reap=False)
        if self.current:
            self.record(*self.current, "killed", 0.0, f"signal {signum} after {t:.0f} s")
        self.summary()
        os._exit(124)

    def skip(self, step, name, reason):
        self.record(step, name, "skip", 0.0, reason)

    # ---- steps -----------------------------------------------------------------------------
    def step1(self):
        if self.args.dry_run:
            self.skip(1, "CUDA build", "dry run: uses the in-place CPU build")
            self.run(1, "module imports, ONNX Runtime backend present", None, 60, python_check="module")
            return
        if shutil.which("nvidia-smi") is None or subprocess.run(["nvidia-smi", "-L"]).returncode != 0:
            self.record(1, "NVIDIA GPU present (nvidia-smi -L)", "fail", 0.0, "no NVIDIA GPU or driver on this machine")
            return
        nvcc = _nvcc()
        if nvcc is None:
            self.record(1, "nvcc present", "fail", 0.0, "nvcc not found (CUDA toolkit missing or not on PATH)")
            return
        wheels = Path(self.args.wheels)
        if wheels.is_dir() and list(wheels.glob("*.whl")):
            # Carried wheels (the device reaches no registry): what the image lacks, e.g. onnxruntime.
            self.run(1, f"install the carried wheels of {wheels}", [PY, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                                                                   "--find-links", str(wheels),
                                                                   *map(str, sorted(wheels.glob("*.whl")))], 180)
        missing = [m for m in ("numpy", "pytest", "pybind11") if not _importable(m)]
        missing += [t for t in ("cmake",) if shutil.which(t) is None]
        if missing:
            self.record(1, "build tools and packages present", "fail", 0.0,
                        f"missing on this machine: {', '.join(missing)} (carry wheels in {wheels}, see the header)")
            return
        arch = _cuda_arch()
        if not (ROOT / "third_party" / "onnxruntime" / "include").is_dir():
            self.record(1, "ONNX Runtime headers present", "fail", 0.0,
                        "third_party/onnxruntime/include missing: carry third_party (the device cannot fetch it)")
            return
        self.doc["cuda_arch"] = arch
        flags = ["-DEDGE_SDK_CUDA=ON", f"-DCMAKE_CUDA_ARCHITECTURES={arch}", f"-DPython_EXECUTABLE={PY}",
                 "-DEDGE_SDK_FETCH_ORT_HEADERS=OFF", f"-DCMAKE_CUDA_COMPILER={nvcc}"]
        trt_lib = subprocess.run([PY, "-c", "import glob, os, tensorrt_libs as t; c = sorted(glob.glob(os.path.join("
                                  "os.path.dirname(t.__file__), 'libnvinfer.so*'))); print(c[0] if c else '')"],
                                 capture_output=True, text=True).stdout.strip()
        if not os.environ.get("TENSORRT_ROOT") and trt_lib and (ROOT / "third_party/tensorrt/include/NvInfer.h").exists():
            flags.append(f"-DEDGE_TRT_LIBRARY={trt_lib}")
        gen = ["-G", "Ninja"] if shutil.which("ninja") else []
        jobs = str(os.cpu_count() or 4)
        cmd = ["bash", "-c", 'cmake -S . -B "$0" "${@:1}" && cmake --build "$0" -j ' + jobs, BUILD, *gen, *flags]
        if self.run(1, f"CUDA build for sm_{arch} ({BUILD})", cmd, STEP_TIMEOUT[1]) != "pass":
            return
        self.run(1, "module lists the CUDA device, ONNX Runtime backend present", None, 60, python_check="module")

    def step2(self):
        if self.args.dry_run:
            self.skip(2, "ctest of the CUDA build", "dry run: no CUDA build (scripts/test.sh runs the CPU ctest)")
            self.skip(2, "CUDA kernels vs CPU twins (pytest -m gpu)", "dry run: no CUDA device")
            self.run(2, "runtime on cpu (threads 2) vs stored CPU outputs, every kind", None, STEP_TIMEOUT[2],
                     python_check="runtime")
            self.skip(2, "runtime with ONNX Runtime's CUDA provider", "dry run: no CUDA device")
            return
        self.run(2, "ctest of the CUDA build", ["ctest", "--test-dir", BUILD, "--output-on-failure", "-j",
                                                str(os.cpu_count() or 4), "--timeout", "120"], 200)
        files = ["tests/test_kernels_gpu.py", "tests/test_knn.py", "tests/test_color_order.py"]
        if _importable("torch"):
            files.append("tests/test_classifier.py")  # its GPU test trains a tiny classifier first
            files.append("tests/test_tiling.py")  # its bundles export a tiny torch network
        if _importable("scipy"):
            files.append("tests/test_mahalanobis.py")  # its float64 references use scipy
        else:
            self.skip(2, "Mahalanobis CUDA kernels vs CPU (tests/test_mahalanobis.py)",
                      "scipy is not on this machine (the file's references import it); carry its wheel in .whl")
        xml = self.out / "pytest_gpu.xml"
        code = (f"import subprocess, sys, xml.etree.ElementTree as ET\n"
                f"rc = subprocess.call([{PY!r}, '-m', 'pytest', '-m', 'gpu', '-q', '-ra', '-p', 'no:cacheprovider',"
                f" '--junitxml={xml}', *{files!r}])\n"
                "r = ET.parse(sys.argv[1]).getroot(); s = r if r.tag == 'testsuite' else r.find('testsuite')\n"
                "n, sk = int(s.get('tests')), int(s.get('skipped')); f = int(s.get('failures')) + int(s.get('errors'))\n"
                "print(f'GPU kernel tests: {n} collected, {n - sk - f} passed, {f} failed, {sk} skipped')\n"
                "sys.exit(0 if rc == 0 and n > 0 and sk == 0 and f == 0 else 1)\n")
        self.run(2, "CUDA kernels vs CPU twins (pytest -m gpu; a skip fails)", [PY, "-c", code, str(xml)], 180,
                 env={"EDGE_SDK_REQUIRE_GPU": "1"})
        self.run(2, "runtime on cuda:0 vs stored CPU outputs, every kind", None, 120, python_check="runtime")
        self.run(2, "runtime with ONNX Runtime's CUDA provider", None, 120, python_check="runtime_ort_cuda")

    def step3(self):
        if self.args.dry_run:
            self.skip(3, "TensorRT engines vs ONNX Runtime CPU", "dry run: no CUDA device")
            return
        self.run(3, "TensorRT engines vs ONNX Runtime CPU, every kind", None, STEP_TIMEOUT[3], python_check="tensorrt")

    def step4(self):
        name = "timings CPU" + ("" if self.args.dry_run else " vs cuda:0") + " (kernels, runtime)"
        self.run(4, name, None, STEP_TIMEOUT[4], python_check="timings")

    def summary(self):
        cs = self.doc["checks"]
        count = {s: sum(c["status"] == s for c in cs) for s in ("pass", "fail", "timeout", "killed", "skip")}
        print("\n================ gpu_check summary ================")
        for c in cs:
            print(f"{c['status'].upper():8s} [{c['step']}] {c['seconds']:6.1f} s  {c['name']}"
                  + (f"\n{'':19s}{c['reason'][:300]}" if c["reason"] else ""))
        print(" ".join(f"{k}={v}" for k, v in count.items()) + f"   ({time.monotonic() - self.t_start:.0f} s, "
              f"results: {self.json_path})")
        if count["skip"]:
            print(f"{count['skip']} skipped (what this machine lacks, or dry run): see the reasons above")
        bad = count["fail"] + count["timeout"] + count["killed"] + (count["skip"] if self.args.strict else 0)
        self.doc["summary"] = dict(count, ok=bad == 0, seconds=round(time.monotonic() - self.t_start, 1))
        self.save()
        print("gpu_check: " + ("FAILED" if bad else "passed"))
        return 1 if bad else 0

    def main(self):
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        steps = self.args.step or [1, 2, 3, 4]
        for s in steps:
            if self.args.resume and s in self.kept_steps and not self.args.step:
                print(f"== step {s} ({STEP_NAMES[s]}): kept from {self.json_path}")
                continue
            self.doc["checks"] = [c for c in self.doc["checks"] if c["step"] != s]
            getattr(self, f"step{s}")()
            if s == 1 and any(c["step"] == 1 and c["status"] not in ("pass", "skip") for c in self.doc["checks"]):
                for later in steps[steps.index(1) + 1:]:
                    self.skip(later, STEP_NAMES[later], "step 1 (build) did not pass")
                break
        return self.summary()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="the staged GPU check (see the module doc)")
    ap.add_argument("--out", default=os.environ.get("EDGE_SDK_GPU_CHECK_OUT") or os.environ.get("OUT")
                    or str(ROOT / "benchmarks" / "results" / "gpu_check"))
    ap.add_argument("--step", type=lambda s: [int(x) for x in s.split(",")], default=None)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--budget", type=float, default=float(os.environ.get("EDGE_SDK_GPU_CHECK_BUDGET", 570)))
    ap.add_argument("--wheels", default=os.environ.get("EDGE_SDK_GPU_CHECK_WHEELS", str(ROOT / ".whl")))
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--_check", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._check:
        return run_child_check(args._check, args.dry_run)
    if args.step and any(s not in STEP_NAMES for s in args.step):
        ap.error(f"--step: steps are {sorted(STEP_NAMES)}")
    return Driver(args).main()


if __name__ == "__main__":
    sys.exit(main())
