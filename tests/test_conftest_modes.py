"""tests/conftest.py's run modes, on throwaway test files run in a child pytest with the conftest
as a plugin: EDGE_SDK_REQUIRE_FULL=1 turns skips for what CI must have into failures (at collection
and in a test) and keeps the GPU ones skips; EDGE_SDK_TEST_SEED fixes the rng fixture's seed and the
pytest header says which seed and CPU path the run used."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "test_in_test.py": '''
import pytest

def test_missing_package():
    pytest.skip("could not import 'onnxruntime': No module named 'onnxruntime'")

def test_missing_gpu():
    pytest.skip("needs a CUDA device (none on this machine)")

def test_seeded(rng):
    print("value", rng.integers(0, 2**31))
''',
    "test_at_collection.py": '''
import pytest
pytest.skip("could not import 'torch': No module named 'torch'", allow_module_level=True)

def test_never():
    pass
''',
}


def _pytest(tmp_path, **env):
    for name, text in CASES.items():
        (tmp_path / name).write_text(text)
    e = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    for k in ("EDGE_SDK_REQUIRE_FULL", "EDGE_SDK_TEST_SEED"):
        if k not in env:
            e.pop(k, None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-rA",
                           "-s", "--continue-on-collection-errors", "--rootdir", str(tmp_path), str(tmp_path)], capture_output=True, text=True, env=e,
                          cwd=tmp_path, timeout=120)


def test_skips_stay_skips_by_default(tmp_path):
    r = _pytest(tmp_path)
    assert r.returncode == 0, r.stdout
    assert "1 passed, 3 skipped" in r.stdout
    assert "rng seed fresh per test" in r.stdout and "require full: no" in r.stdout


def test_require_full_fails_missing_packages_not_missing_gpus(tmp_path):
    r = _pytest(tmp_path, EDGE_SDK_REQUIRE_FULL="1")
    assert r.returncode == 1, r.stdout
    out = r.stdout
    assert "FAILED" in out and "test_missing_package" in out and "EDGE_SDK_REQUIRE_FULL=1" in out
    assert "ERROR" in out and "test_at_collection.py" in out  # a failed collection is reported as an error
    assert "SKIPPED" in out and "needs a CUDA device" in out
    assert "require full: yes" in out


def test_seed_override_replays(tmp_path):
    a = _pytest(tmp_path, EDGE_SDK_TEST_SEED="1234")
    b = _pytest(tmp_path, EDGE_SDK_TEST_SEED="1234")
    c = _pytest(tmp_path, EDGE_SDK_TEST_SEED="1235")

    def value(r):
        return next(line for line in r.stdout.splitlines() if line.lstrip(".").startswith("value"))

    assert "EDGE_SDK_TEST_SEED=1234" in a.stdout and "rng seed 1234" in a.stdout
    assert value(a) == value(b) != value(c)
