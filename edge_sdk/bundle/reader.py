"""Reading a validated bundle into Python: the manifest, the statistics arrays and the ONNX bytes."""

from __future__ import annotations

import hashlib
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_sdk.bundle.schema import MANIFEST_FILE, BundleError
from edge_sdk.bundle.validator import validate_bundle


@dataclass
class Bundle:
    path: Path
    manifest: dict
    arrays: dict[str, np.ndarray]
    networks: dict[str, bytes] = field(repr=False)  # file name -> ONNX bytes

    def network(self, name: str | None = None, precision: str = "fp32") -> dict:
        """The manifest entry of a network (default: the first) in a precision variant."""
        for n in self.manifest["networks"]:
            if (name is None or n["name"] == name) and n["precision"] == precision:
                return n
        have = [f"{n['name']}/{n['precision']}" for n in self.manifest["networks"]]
        raise BundleError(f"{self.path}: no network {name or '(first)'} in precision {precision!r} (has {have})")

    def network_bytes(self, name: str | None = None, precision: str = "fp32") -> bytes:
        return self.networks[self.network(name, precision)["file"]]


def _read_files(path: Path, names: list[str]) -> dict[str, bytes]:
    if path.is_dir():
        return {n: (path / n).read_bytes() for n in names}
    out = {}
    with tarfile.open(path, "r:") as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        for n in names:
            f = tar.extractfile(members[n])
            out[n] = f.read()
    return out


def read_bundle(path: str | os.PathLike) -> Bundle:
    """Validates (see :func:`validate_bundle`) and reads a bundle directory or archive."""
    from safetensors.numpy import load

    path = Path(path)
    manifest = validate_bundle(path)
    files = _read_files(path, sorted(manifest["files"]))
    # The files are read again after validation: check them again so nothing changed in between.
    for name, data in files.items():
        if hashlib.sha256(data).hexdigest() != manifest["files"][name]["sha256"]:
            raise BundleError(f"{path / name}: changed while being read (sha256 differs from {MANIFEST_FILE})")
    arrays = load(files[manifest["arrays"]["file"]])
    networks = {n["file"]: files[n["file"]] for n in manifest["networks"]}
    return Bundle(path=path, manifest=manifest, arrays=dict(arrays), networks=networks)
