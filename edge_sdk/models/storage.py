"""Model directories: ``config.json`` plus safetensors files, written atomically, checksummed.

Layout:
    MODEL_DIR/config.json          format, version, model kind, settings, calibration, metrics,
                                   sha256 of every other file
    MODEL_DIR/arrays.safetensors   the model's arrays (means, Cholesky factors, memory bank...)
    MODEL_DIR/<name>.safetensors   optional further tensor files (e.g. a custom backbone's weights)

Nothing is pickled. The directory is built under a temporary name next to the target and swapped
into place (edge_sdk.atomic.atomic_directory), so a reader never sees a half-written model and a
kill at any instant leaves the old or the new model. Only a directory that is a model (config.json
with this format marker) or an empty one is ever replaced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from edge_sdk.atomic import atomic_directory, replaceable, sha256_file

FORMAT = "edge-sdk-model"
VERSION = 1


class ModelFormatError(ValueError):
    """A model directory that is missing, incomplete, corrupted or of an unknown format."""


def is_model_dir(path: Path) -> bool:
    """A directory this SDK wrote as a model: config.json names FORMAT and an integer version.
    Merely having a config.json is not enough (another application's folder may have one)."""
    try:
        with open(Path(path) / "config.json") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT and type(config.get("version")) is int


def check_model_target(path: str | os.PathLike) -> None:
    """ModelFormatError naming ``path`` unless a model may be written there: nothing, an empty
    directory or a model directory (`is_model_dir`). For callers that want to refuse before
    training; `write_model_dir` checks again when it writes."""
    if not replaceable(path, is_model_dir):
        raise ModelFormatError(f"{Path(path).absolute()}: exists and is not an {FORMAT} model directory; "
                               "refusing to replace it")


def write_model_dir(path: str | os.PathLike, config: dict, tensors: dict[str, dict[str, np.ndarray]]) -> Path:
    """Writes config + tensor files (file stem -> {name: array}) to ``path`` atomically.

    An existing model directory at ``path`` (see `is_model_dir`) or an empty directory is
    replaced; anything else there is refused with ModelFormatError naming the path.
    """
    from safetensors.numpy import save_file

    target = Path(path).absolute()
    try:
        with atomic_directory(target, is_ours=is_model_dir, what=f"an {FORMAT} model directory") as tmp:
            files = {}
            for stem, arrays in tensors.items():
                fname = f"{stem}.safetensors"
                # np.require keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d)
                save_file({k: np.require(v, requirements="C") for k, v in arrays.items()}, str(tmp / fname))
                files[fname] = sha256_file(tmp / fname)
            full = {"format": FORMAT, "version": VERSION, **config, "files": files}
            with open(tmp / "config.json", "w") as f:
                json.dump(full, f, indent=2, sort_keys=False)
    except FileExistsError as exc:
        raise ModelFormatError(str(exc)) from exc
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
    actual = sha256_file(fpath)
    if actual != expected:
        raise ModelFormatError(f"{fpath}: checksum mismatch (file corrupted or modified)")
    try:
        return load_file(str(fpath))
    except Exception as exc:  # SafetensorError (not a ValueError): a pickle or other non-safetensors file
        raise ModelFormatError(f"{fpath}: not a safetensors file ({type(exc).__name__}: {exc})") from exc
