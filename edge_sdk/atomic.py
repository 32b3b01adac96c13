"""Atomic writes: the new content goes to a temporary file or directory beside the target and
takes the target's place only once complete, so a crash or an error never leaves a half-written
file or directory where a good one was.

Directories (`atomic_directory`): on Linux the finished temporary directory and the target are
swapped in one ``renameat2(RENAME_EXCHANGE)``, so the target path always holds the old or the
new complete content, even if the process is killed at any instant. Where that call is missing
(other systems, old kernels, file systems without it) the fallback is two renames (target ->
``.NAME.old-PID-*``, temporary -> target): a kill between them leaves the target absent with the
old content intact in ``.NAME.old-PID-*``; the next write to the same target (or
`recover_directory`) puts it back. Temporaries of dead processes (``.NAME.tmp-PID-*``) are
removed then too.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "", *, keep_extension: bool = False) -> Iterator[str]:
    """Yields a temporary path in the target's folder (created if missing); renames it onto
    ``path`` when the block succeeds, removes it when the block raises. The file gets the
    permissions a plain ``open(path, "w")`` would give (mkstemp's are owner-only).
    keep_extension: the temporary ends in ``.tmp`` + the target's extension (``.tmp.avi``), for
    writers that choose the file format from the name (video encoders)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tail = ".tmp" + os.path.splitext(path)[1] if keep_extension else suffix + ".tmp"
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=tail, dir=folder)
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


def write_bytes(path: str | os.PathLike, data: bytes | memoryview) -> str:
    """Writes ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return os.fspath(path)


def write_json(path: str | os.PathLike, obj: object, indent: int = 2) -> str:
    """Writes ``obj`` as JSON (with a final newline) to ``path`` atomically; returns the path."""
    return write_text(path, json.dumps(obj, indent=indent) + "\n")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync_tree(path: str | os.PathLike) -> None:
    """Flushes every file and folder under ``path`` (and ``path`` itself) to disk, so the swap
    that follows never publishes a directory whose contents are still only in the page cache."""
    for folder, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(folder)


def _fsync_dir(path: str | os.PathLike) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # Windows: directories cannot be opened for fsync
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _libc_renameat2():
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError, TypeError):  # not glibc >= 2.28 / not Linux (Windows: no CDLL(None))
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_renameat2 = _libc_renameat2()


def exchange(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Atomically swaps two existing paths (renameat2 RENAME_EXCHANGE). False when this system or
    file system cannot (the caller falls back to two renames); OSError for any other failure."""
    if _renameat2 is None or os.environ.get("EDGE_SDK_NO_RENAME_EXCHANGE") == "1":
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, f"renameat2(RENAME_EXCHANGE) {os.fspath(a)} <-> {os.fspath(b)}: {os.strerror(err)}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _leftovers(target: Path, kind: str) -> list[tuple[Path, int | None]]:
    """(path, pid or None) of ``.NAME.<kind>-PID-*`` entries beside ``target``."""
    prefix = f".{target.name}.{kind}-"
    out = []
    if not target.parent.is_dir():
        return out
    for entry in target.parent.iterdir():
        if entry.name.startswith(prefix):
            pid = entry.name[len(prefix):].split("-", 1)[0]
            out.append((entry, int(pid) if pid.isdigit() else None))
    return sorted(out)


def recover_directory(target: str | os.PathLike) -> list[str]:
    """Cleans up after a writer of ``target`` that was killed: when ``target`` is missing, the
    newest complete old copy (``.NAME.old-PID-*`` of a dead process) is renamed back; other old
    copies and temporaries of dead processes are removed. Entries of live processes (a concurrent
    writer) are left alone. Returns one line per action taken, for the caller to report."""
    target = Path(target).absolute()
    done = []
    olds = [(p, pid) for p, pid in _leftovers(target, "old") if pid is None or not _pid_alive(pid)]
    if olds and not os.path.lexists(target):
        newest = max(olds, key=lambda e: e[0].stat().st_mtime)
        inner = newest[0] / "m"
        if os.listdir(newest[0]) == ["m"] and inner.is_dir():
            # left by SDK versions before this module, which moved the old model to .NAME.old-*/m
            os.rename(inner, target)
        else:
            os.rename(newest[0], target)
            olds.remove(newest)
        done.append(f"{target}: restored from {newest[0].name} (a writer was killed between its two renames)")
    for path, pid in olds + [e for e in _leftovers(target, "tmp") if e[1] is None or not _pid_alive(e[1])]:
        shutil.rmtree(path, ignore_errors=True)
        done.append(f"{path}: removed (left by an interrupted write of {target.name})")
    return done


def replaceable(target: str | os.PathLike, is_ours: Callable[[Path], bool]) -> bool:
    """Whether a directory writer may replace what is at ``target``: nothing, an empty directory,
    or a directory ``is_ours`` recognizes (never a file or a symlink)."""
    target = Path(target)
    if not os.path.lexists(target):
        return True
    if target.is_symlink() or not target.is_dir():
        return False
    return not any(target.iterdir()) or is_ours(target)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike, *, is_ours: Callable[[Path], bool], what: str,
                     overwrite: bool = True) -> Iterator[Path]:
    """Yields a new empty directory beside ``target``; when the block succeeds its contents are
    flushed and it takes ``target``'s place (see the module doc), and the old content is removed.
    When the block raises, the temporary is removed and ``target`` is untouched.

    An existing ``target`` is replaced only when ``overwrite`` and ``is_ours(target)`` (e.g. a
    directory whose config.json carries this SDK's format marker) or it is an empty directory;
    otherwise FileExistsError naming the path and ``what`` it is not. Leftovers of an earlier
    killed write are recovered first (`recover_directory`); what was done is printed to stderr."""
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    for line in recover_directory(target):
        print(f"edge_sdk: {line}", file=sys.stderr)
    if os.path.lexists(target) and not overwrite:
        raise FileExistsError(f"{target}: exists (pass overwrite=True to replace it)")
    if not replaceable(target, is_ours):
        raise FileExistsError(f"{target}: exists and is not {what}; refusing to replace it")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0700 would make the result owner-only
        fsync_tree(tmp)
        if not os.path.lexists(target):
            os.rename(tmp, target)
        elif exchange(tmp, target):
            pass  # tmp now holds the old content, removed below
        else:
            old = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(target, old)  # a kill from here to the next rename: recover_directory restores old
            try:
                os.rename(tmp, target)
            except BaseException:
                os.rename(old, target)
                raise
            tmp = old
        _fsync_dir(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
