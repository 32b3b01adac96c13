"""edge_sdk.atomic: a failed write leaves the previous file untouched and no temporary behind."""

import json
import os
import stat

import pytest

from edge_sdk import atomic


def test_write_json_replaces_and_has_normal_permissions(tmp_path):
    path = tmp_path / "sub" / "out.json"
    atomic.write_json(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    atomic.write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert sorted(os.listdir(path.parent)) == ["out.json"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    atomic.write_text(path, "good")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("boom")
    assert path.read_text() == "good"
    assert os.listdir(tmp_path) == ["out.txt"]
    with pytest.raises(TypeError):
        atomic.write_json(path, {"x": object()})  # not serializable: raised before anything is written
    assert path.read_text() == "good"


# ---- directories: atomic_directory swaps a finished temporary with the target ----

import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _mark():
    return lambda p: (p / "ours").is_file()


def test_directory_swap_replaces_ours_and_refuses_foreign_directories(tmp_path):
    target = tmp_path / "out"
    for content in ("one", "two"):
        with atomic.atomic_directory(target, is_ours=_mark(), what="ours") as tmp:
            (tmp / "ours").write_text(content)
        assert (target / "ours").read_text() == content
    assert sorted(os.listdir(tmp_path)) == ["out"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep")
    with pytest.raises(FileExistsError, match=f"{foreign}: exists and is not ours; refusing"):
        with atomic.atomic_directory(foreign, is_ours=_mark(), what="ours") as tmp:
            (tmp / "ours").write_text("x")
    assert (foreign / "precious.txt").read_text() == "keep" and sorted(os.listdir(tmp_path)) == ["foreign", "out"]
    # a failing block leaves the old content and no temporary
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.atomic_directory(target, is_ours=_mark(), what="ours") as tmp:
            (tmp / "ours").write_text("three")
            raise RuntimeError("boom")
    assert (target / "ours").read_text() == "two" and sorted(os.listdir(tmp_path)) == ["foreign", "out"]


def test_two_rename_fallback_and_recovery_of_a_killed_writer(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "exchange", lambda a, b: False)  # as on a system without RENAME_EXCHANGE
    target = tmp_path / "out"
    with atomic.atomic_directory(target, is_ours=_mark(), what="ours") as tmp:
        (tmp / "ours").write_text("old")
    with atomic.atomic_directory(target, is_ours=_mark(), what="ours") as tmp:
        (tmp / "ours").write_text("new")
    assert (target / "ours").read_text() == "new" and os.listdir(tmp_path) == ["out"]
    # what a kill between the two renames leaves: the target moved aside by a dead process, and
    # that process's half-written temporary
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    os.rename(target, tmp_path / f".out.old-{dead}-abcd1234")
    (tmp_path / f".out.tmp-{dead}-xyz").mkdir()
    live = tmp_path / f".out.tmp-{os.getpid()}-live"  # a concurrent writer's: left alone
    live.mkdir()
    done = atomic.recover_directory(target)
    assert (target / "ours").read_text() == "new"
    assert len(done) == 2 and "restored from .out.old-" in done[0] and f".out.tmp-{dead}-xyz: removed" in done[1]
    assert sorted(os.listdir(tmp_path)) == [live.name, "out"]


def test_recovery_of_the_old_layout_left_by_earlier_versions(tmp_path):
    # earlier model saving moved the old model to .NAME.old-<random>/m before renaming the new one
    legacy = tmp_path / ".model.old-k3j_9x2a"
    (legacy / "m").mkdir(parents=True)
    (legacy / "m" / "config.json").write_text("{}")
    (tmp_path / ".model.tmp-q8w7e6r5").mkdir()  # its half-written temporary
    done = atomic.recover_directory(tmp_path / "model")
    assert (tmp_path / "model" / "config.json").read_text() == "{}" and len(done) == 3  # restored, 2 removed
    assert os.listdir(tmp_path) == ["model"]


def test_exchange_swaps_two_directories(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    if not atomic.exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available here (the two-rename fallback is tested above)")
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"


_CHILD = r'''
import sys
from pathlib import Path
import numpy as np
kind, target, source = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
if kind == "model":
    from edge_sdk.models.storage import write_model_dir
    write_model_dir(target, {"model": "probe", "tag": source}, {"arrays": {"a": np.full(1000, 2.0, np.float32)}})
else:
    from edge_sdk.bundle import read_bundle, write_bundle
    b = read_bundle(source)
    manifest = {k: v for k, v in b.manifest.items() if k != "files"}
    write_bundle(target, manifest, {n: p.read_bytes() for n, p in ((n, Path(source) / n) for n in b.networks)},
                 b.arrays, overwrite=True)
'''


def _strace():
    path = shutil.which("strace")
    if path is None:
        pytest.skip("strace is not installed (apt-get install -y strace): the kill injection needs it")
    probe = subprocess.run([path, "-f", "-qq", "-o", os.devnull, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here (ptrace not permitted?): {probe.stderr.strip()}")
    return path


def _model_state(target):
    from edge_sdk.models.storage import read_config, read_tensors

    cfg = read_config(target)
    arrays = read_tensors(target, cfg, "arrays")  # checksum verified: the content is complete
    return cfg["tag"], float(arrays["a"][0])


def _bundle_state(target, sources):
    from edge_sdk.bundle.validator import validate_bundle

    from edge_sdk.bundle.schema import ARRAYS_FILE

    # validated: every file present with its checksum; the arrays (written unchanged) say whose
    arrays = validate_bundle(target)["files"][ARRAYS_FILE]
    return next(name for name, src in sources.items() if validate_bundle(src)["files"][ARRAYS_FILE] == arrays)


def _run_child(strace, kind, target, source, inject, env):
    code = _CHILD
    cmd = [strace, "-f", "-qq", "-o", os.devnull] + (["-e", f"inject={inject}"] if inject else [])
    return subprocess.run(cmd + [sys.executable, "-c", code, kind, str(target), str(source)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _rename_calls(strace, kind, target, source, env, tmp_path):
    """How many calls of each rename syscall writing ``target`` makes (traced, not killed)."""
    log = tmp_path / "trace.log"
    cmd = [strace, "-f", "-qq", "-o", str(log), "-e", "trace=rename,renameat,renameat2",
           sys.executable, "-c", _CHILD, kind, str(target), str(source)]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    counts: dict[str, int] = {}
    for line in log.read_text().splitlines():
        name = line.split("(", 1)[0].split()[-1]
        counts[name] = counts.get(name, 0) + 1
    return counts


@pytest.mark.parametrize("fallback", [False, True], ids=["rename_exchange", "two_renames"])
@pytest.mark.parametrize("kind", ["model", "bundle"])
def test_a_kill_at_any_rename_leaves_the_old_or_the_new_content(tmp_path, kind, fallback):
    strace = _strace()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(ROOT))
    if fallback:
        env["EDGE_SDK_NO_RENAME_EXCHANGE"] = "1"
    target = tmp_path / "target"
    if kind == "model":
        from edge_sdk.models.storage import write_model_dir

        sources = {"old": "old", "new": "new"}
        state = _model_state

        def reset():
            shutil.rmtree(target, ignore_errors=True)
            write_model_dir(target, {"model": "probe", "tag": "old"}, {"arrays": {"a": np.ones(1000, np.float32)}})
    else:
        pytest.importorskip("torch")
        pytest.importorskip("onnx")
        from edge_sdk.converters import export_bundle
        from tests.bundle_helpers import tiny_parts

        sources = {}
        for name, seed in (("old", 0), ("new", 1)):
            sources[name] = tmp_path / name
            export_bundle(tiny_parts(seed=seed), sources[name], model_type="tiny")

        def state(t):
            return _bundle_state(t, sources)

        def reset():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(sources["old"], target)
    reset()
    counts = _rename_calls(strace, kind, target, sources["new"], env, tmp_path)
    new, accepted = (("new", 2.0), (("old", 1.0), ("new", 2.0))) if kind == "model" else ("new", ("old", "new"))
    assert state(target) == new
    # the swap itself: one exchange, or the fallback's two renames (safetensors adds a renameat of
    # its own inside the temporary directory: one more kill point)
    if fallback:
        assert "renameat2" not in counts and counts.get("rename", 0) >= 2, counts
    else:
        assert counts.get("renameat2") == 1, counts
    kills = 0
    for syscall, n in counts.items():
        for when in range(1, n + 1):
            reset()
            r = _run_child(strace, kind, target, sources["new"], f"{syscall}:signal=SIGKILL:when={when}", env)
            assert r.returncode != 0, f"{syscall} #{when}: the child was not killed"
            kills += 1
            if not fallback:
                assert target.is_dir(), f"{syscall} #{when}: the target is missing right after the kill"
            # the next writer (here: recover_directory, which every write runs first) repairs the rest
            atomic.recover_directory(target)
            got = state(target)
            assert got in accepted, got
            leftovers = [p for p in os.listdir(tmp_path) if p.startswith(".target.")]
            assert leftovers == [], leftovers
    assert kills == sum(counts.values())
