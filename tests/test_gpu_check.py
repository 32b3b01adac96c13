"""benchmarks/gpu_check's harness on the CPU: its dry run makes the same runtime comparisons on the
fixture bundles of tests/data/gpu_fixtures/ with device="cpu", so the script a GPU machine runs
once, unattended, is exercised on every CI run; and a step cut short by its timeout or by a signal
still leaves a summary and the JSON of what was done."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge_sdk._native import core

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check"

pytestmark = pytest.mark.skipif("onnxruntime" not in core.available_backends(),
                                reason="built without the ONNX Runtime headers (scripts/fetch_onnxruntime_headers.sh)")


def _run(tmp_path, *args, timeout=600):
    proc = subprocess.run(["bash", str(SCRIPT), "--out", str(tmp_path), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    doc = json.loads((tmp_path / "gpu_check.json").read_text())
    return proc, doc


def test_fixtures_are_small_and_cover_every_kind():
    fx = ROOT / "tests" / "data" / "gpu_fixtures"
    index = json.loads((fx / "index.json").read_text())
    assert {e["kind"] for e in index.values()} == {"mahalanobis", "knn", "mhbc", "ssim", "mask"}
    assert all(e["verdicts"] == ["accept", "reject"] for e in index.values())
    assert sum(p.stat().st_size for p in fx.rglob("*") if p.is_file()) < 1 << 20


def test_dry_run_passes_and_reports_every_skip(tmp_path):
    proc, doc = _run(tmp_path, "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "gpu_check summary" in proc.stdout and "gpu_check: passed" in proc.stdout
    checks = doc["checks"]
    assert {c["step"] for c in checks} == {1, 2, 3, 4}
    runtime = [c for c in checks if c["name"].startswith("runtime on cpu")]
    assert len(runtime) == 1 and runtime[0]["status"] == "pass", runtime
    # every fixture bundle compared against the stored outputs
    assert set(runtime[0]["detail"]) == set(json.loads((ROOT / "tests/data/gpu_fixtures/index.json").read_text()))
    skips = [c for c in checks if c["status"] == "skip"]
    assert skips and all(c["reason"] for c in skips)
    assert doc["summary"]["skip"] == len(skips) and doc["summary"]["ok"]
    timings = next(c for c in checks if c["step"] == 4)
    assert timings["status"] == "pass" and "cpu" in timings["detail"]["kernels"]
    # --strict: the same skips fail the run
    proc, doc = _run(tmp_path, "--dry-run", "--strict", "--step", "3")
    assert proc.returncode == 1 and not doc["summary"]["ok"]


def test_resume_keeps_passed_steps(tmp_path):
    _run(tmp_path, "--dry-run", "--step", "1")
    proc, doc = _run(tmp_path, "--dry-run", "--resume", "--step", "3")
    assert proc.returncode == 0
    assert {c["step"] for c in doc["checks"]} == {1, 3}
    proc, doc = _run(tmp_path, "--dry-run", "--resume")
    assert "step 1 (build): kept" in proc.stdout
    assert {c["step"] for c in doc["checks"]} == {1, 2, 3, 4}


def test_a_step_out_of_budget_is_recorded_not_lost(tmp_path):
    # A budget too small for any check: each is recorded as skipped for lack of time, summary printed.
    proc, doc = _run(tmp_path, "--dry-run", "--budget", "12")
    assert "gpu_check summary" in proc.stdout
    assert any("out of time" in c["reason"] for c in doc["checks"])


def test_killed_run_prints_the_summary(tmp_path):
    # The driver's own check runner with a check that outlasts the caller's patience, stopped as a
    # command limit stops it (SIGTERM): the running check is recorded as killed, the summary printed.
    code = (
        "import sys, types; sys.path.insert(0, sys.argv[1]); import gpu_check as g\n"
        "d = g.Driver(types.SimpleNamespace(out=sys.argv[2], resume=False, budget=300.0, dry_run=True, strict=False,"
        " step=None))\n"
        "import signal; signal.signal(signal.SIGTERM, d.on_signal)\n"
        "d.run(2, 'a check that sleeps', ['sleep', '120'], 200)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(ROOT / "benchmarks"), str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    seen = ""
    for line in proc.stdout:
        seen += line
        if "== [2] a check that sleeps" in line:
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    seen += out
    assert proc.returncode == 124, seen
    assert "gpu_check summary" in seen and "KILLED" in seen
    doc = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [c["status"] for c in doc["checks"]] == ["killed"], doc


def test_a_check_past_its_timeout_is_recorded(tmp_path):
    code = (
        "import sys, types; sys.path.insert(0, sys.argv[1]); import gpu_check as g\n"
        "d = g.Driver(types.SimpleNamespace(out=sys.argv[2], resume=False, budget=300.0, dry_run=True, strict=False,"
        " step=None))\n"
        "print(d.run(2, 'a check that sleeps', ['sleep', '120'], 11)); sys.exit(d.summary())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT / "benchmarks"), str(tmp_path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1 and "TIMEOUT" in proc.stdout, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "gpu_check.json").read_text())
    assert doc["checks"][0]["status"] == "timeout" and doc["summary"]["timeout"] == 1
