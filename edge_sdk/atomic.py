"""Atomic file writes: the new content goes to a temporary file beside the target, renamed onto it
only once complete, so a crash or an error never leaves a half-written file where a good one was."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[str]:
    """Yields a temporary path in the target's folder (created if missing); renames it onto
    ``path`` when the block succeeds, removes it when the block raises. The file gets the
    permissions a plain ``open(path, "w")`` would give (mkstemp's are owner-only)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=suffix + ".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str | os.PathLike, text: str, newline: str | None = None) -> str:
    """Writes ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline=newline) as f:
            f.write(text)
    return os.fspath(path)


def write_json(path: str | os.PathLike, obj, indent: int = 2) -> str:
    """Writes ``obj`` as JSON (with a final newline) to ``path`` atomically; returns the path."""
    return write_text(path, json.dumps(obj, indent=indent) + "\n")
