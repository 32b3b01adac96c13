"""Model directories: ``config.json`` plus safetensors files, written atomically, checksummed.

Layout:
    MODEL_DIR/config.json          format, version, model kind, settings, calibration, metrics,
                                   sha256 of every other file
    MODEL_DIR/arrays.safetensors   the model's arrays (means, Cholesky factors, memory bank...)
    MODEL_DIR/<name>.safetensors   optional further tensor files (e.g. a custom backbone's weights)

Nothing is pickled. The directory is built under a temporary name next to the target and renamed
into place, so a reader never sees a half-written model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

FORMAT = "edge-sdk-model"
VERSION = 1


class ModelFormatError(ValueError):
    """A model directory that is missing, incomplete, corrupted or of an unknown format."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def write_model_dir(path: str | os.PathLike, config: dict, tensors: dict[str, dict[str, np.ndarray]]) -> Path:
    """Writes config + tensor files (file stem -> {name: array}) to ``path`` atomically.

    An existing model directory at ``path`` is replaced; anything else there is refused.
    """
    from safetensors.numpy import save_file

    target = Path(path).absolute()
    if target.exists() and not (target.is_dir() and ((target / "config.json").exists() or not any(target.iterdir()))):
        raise ModelFormatError(f"{target}: exists and is not a model directory; refusing to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        files = {}
        for stem, arrays in tensors.items():
            fname = f"{stem}.safetensors"
            # np.require keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d)
            save_file({k: np.require(v, requirements="C") for k, v in arrays.items()}, str(tmp / fname))
            _fsync_file(tmp / fname)
            files[fname] = _sha256(tmp / fname)
        full = {"format": FORMAT, "version": VERSION, **config, "files": files}
        with open(tmp / "config.json", "w") as f:
            json.dump(full, f, indent=2, sort_keys=False)
            f.flush()
            os.fsync(f.fileno())
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, old / "m")
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def read_config(path: str | os.PathLike) -> dict:
    target = Path(path)
    cfg_path = target / "config.json"
    if not target.is_dir():
        raise ModelFormatError(f"{target}: not a model directory")
    if not cfg_path.is_file():
        raise ModelFormatError(f"{cfg_path}: missing (not a model directory written by edge-sdk)")
    try:
        with open(cfg_path) as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{cfg_path}: unreadable ({exc})") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFormatError(f"{cfg_path}: not an {FORMAT} config")
    if config.get("version") != VERSION:
        raise ModelFormatError(f"{cfg_path}: version {config.get('version')!r}, this SDK reads {VERSION}")
    return config


def read_tensors(path: str | os.PathLike, config: dict, stem: str) -> dict[str, np.ndarray]:
    """Reads ``<stem>.safetensors`` after checking its sha256 against config.json."""
    from safetensors.numpy import load_file

    fname = f"{stem}.safetensors"
    fpath = Path(path) / fname
    expected = config.get("files", {}).get(fname)
    if expected is None:
        raise ModelFormatError(f"{Path(path) / 'config.json'}: does not list {fname}")
    if not fpath.is_file():
        raise ModelFormatError(f"{fpath}: missing")
    actual = _sha256(fpath)
    if actual != expected:
        raise ModelFormatError(f"{fpath}: checksum mismatch (file corrupted or modified)")
    return load_file(str(fpath))
