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


ENGINES_DIR = "engines"


def archive_members(tar: tarfile.TarFile, source: str | os.PathLike) -> dict[str, tarfile.TarInfo]:
    """Bundle file name -> tar member, by the C++ reader's rules (read_tar in
    cpp/src/runtime/bundle.cpp): a leading "./" is dropped; the first directory entry with a single
    component other than engines/ (e.g. "bundle/", as `tar -cf b.tar bundle` writes) is a prefix
    stripped from the files after it; files under engines/ are ignored; any other file must then
    be at the top level and appear once; entry types other than files and directories are refused."""
    files: dict[str, tarfile.TarInfo] = {}
    prefix, prefix_known = "", False
    for m in tar.getmembers():
        # tarfile drops a directory's trailing "/"; put it back to compare names as C++ does
        name = m.name + "/" if m.isdir() else m.name
        if name.startswith("./"):
            name = name[2:]
        if m.isdir():
            # "" (the "./" entry itself) counts too: its prefix is empty, as in C++
            if not prefix_known and name.find("/") in (len(name) - 1, -1) and name != ENGINES_DIR + "/":
                prefix, prefix_known = name, True
        elif m.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
            if prefix and name.startswith(prefix):
                name = name[len(prefix):]
            if name.startswith(ENGINES_DIR + "/"):
                continue
            if not name or "/" in name:
                raise BundleError(f"{source}: unexpected entry \"{name}\" (bundles hold files at the top level)")
            if name in files:
                raise BundleError(f"{source}: entry \"{name}\" appears twice")
            files[name] = m
        else:
            raise BundleError(f"{source}: unsupported tar entry type {m.type.decode(errors='replace')!r} for "
                              f"\"{name}\" (write archives with edge_sdk.bundle.pack_bundle)")
    return files


def read_archive_files(path: str | os.PathLike, names: list[str]) -> dict[str, bytes]:
    """The bytes of ``names`` from a bundle archive (names as `archive_members` maps them)."""
    out = {}
    with tarfile.open(path, "r:") as tar:
        members = archive_members(tar, path)
        for n in names:
            if n not in members:
                raise BundleError(f"{path}: no entry \"{n}\"")
            f = tar.extractfile(members[n])
            out[n] = f.read() if f else b""
    return out


def _read_files(path: Path, names: list[str]) -> dict[str, bytes]:
    if path.is_dir():
        return {n: (path / n).read_bytes() for n in names}
    return read_archive_files(path, names)


def manifest_bytes(path: str | os.PathLike) -> bytes:
    """The manifest file of a bundle directory or archive as stored (what its sha256 is taken
    of). Not validated: read the bundle with `read_bundle` first."""
    return _read_files(Path(path), [MANIFEST_FILE])[MANIFEST_FILE]


def read_bundle(path: str | os.PathLike, *, trusted_keys=None, trusted_keys_from_env: bool = True) -> Bundle:
    """Validates (see :func:`validate_bundle`, which takes the same key arguments) and reads a
    bundle directory or archive."""
    from safetensors.numpy import load

    path = Path(path)
    manifest = validate_bundle(path, trusted_keys=trusted_keys, trusted_keys_from_env=trusted_keys_from_env)
    files = _read_files(path, sorted(manifest["files"]))
    # The files are read again after validation: check them again so nothing changed in between.
    for name, data in files.items():
        if hashlib.sha256(data).hexdigest() != manifest["files"][name]["sha256"]:
            raise BundleError(f"{path / name}: changed while being read (sha256 differs from {MANIFEST_FILE})")
    arrays = load(files[manifest["arrays"]["file"]])
    networks = {n["file"]: files[n["file"]] for n in manifest["networks"]}
    return Bundle(path=path, manifest=manifest, arrays=dict(arrays), networks=networks)
