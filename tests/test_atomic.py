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
