"""Writing bundles atomically: everything goes into a temporary directory beside the target, is
checked by the validator, and only then takes the target's place. A failure at any point leaves
the previous bundle (if any) untouched and no partial directory behind."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import uuid
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edge_sdk.bundle.schema import (
    ARRAYS_FILE,
    MANIFEST_FILE,
    ONNX_META_MANIFEST,
    ONNX_META_NETWORK,
    ONNX_META_SCHEMA,
    SCHEMA_VERSION,
    BundleError,
    manifest_for_onnx,
)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, allow_nan=False) + "\n"


def _onnx_with_metadata(model: Any, manifest: Mapping[str, Any], network: str) -> bytes:
    import onnx

    if isinstance(model, (bytes, bytearray)):
        model = onnx.load_from_string(bytes(model))
    elif isinstance(model, (str, os.PathLike)):
        model = onnx.load(str(model))
    else:
        model = onnx.ModelProto.FromString(model.SerializeToString())  # a copy: the caller's stays as it was
    owned = (ONNX_META_SCHEMA, ONNX_META_NETWORK, ONNX_META_MANIFEST)
    keep = [p for p in model.metadata_props if p.key not in owned]
    del model.metadata_props[:]
    for p in keep:
        model.metadata_props.add(key=p.key, value=p.value)
    for key, value in (
        (ONNX_META_SCHEMA, str(SCHEMA_VERSION)),
        (ONNX_META_NETWORK, network),
        (ONNX_META_MANIFEST, json.dumps(manifest_for_onnx(manifest), allow_nan=False, sort_keys=True)),
    ):
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


def _arrays_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    return save({name: np.ascontiguousarray(a) for name, a in arrays.items()})


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Renames tmp to out. An existing out is moved aside first and removed only after the new
    bundle is in place (a directory cannot be atomically replaced by rename)."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_bundle(
    out: str | os.PathLike,
    manifest: Mapping[str, Any],
    networks: Mapping[str, Any],
    arrays: Mapping[str, np.ndarray],
    *,
    overwrite: bool = False,
) -> Path:
    """Writes a bundle directory.

    manifest: built by :func:`edge_sdk.bundle.build_manifest` (no ``files`` section).
    networks: file name -> ONNX model (``onnx.ModelProto``, serialized bytes or a path); each
    must be named by a ``networks[].file`` of the manifest. The manifest is embedded in each
    model's metadata_props. arrays: the tensors declared in ``manifest["arrays"]``.
    Returns the bundle path. Raises BundleError (naming the file or field) without touching an
    existing bundle at ``out``; an existing ``out`` is replaced only with ``overwrite=True``.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise BundleError(f"{out}: exists (pass overwrite=True to replace it)")
    manifest = dict(manifest)
    if "files" in manifest:
        raise BundleError("manifest: must not contain 'files' (the writer computes the checksums)")
    declared = {n["file"]: f"{n['name']}/{n['precision']}" for n in manifest.get("networks", [])}
    if set(declared) != set(networks):
        raise BundleError(f"networks: manifest lists files {sorted(declared)}, given {sorted(networks)}")
    payload: dict[str, bytes] = {ARRAYS_FILE: _arrays_bytes(arrays)}
    for file, model in networks.items():
        payload[file] = _onnx_with_metadata(model, manifest, declared[file])
    manifest["files"] = {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)} for name, data in sorted(payload.items())
    }

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for name, data in payload.items():
            _fsync_write(tmp / name, data)
        _fsync_write(tmp / MANIFEST_FILE, _dumps(manifest).encode())
        from edge_sdk.bundle.validator import validate_bundle

        validate_bundle(tmp)  # the runtime's own check, before anything replaces a good bundle
        _swap_into_place(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def pack_bundle(bundle_dir: str | os.PathLike, archive: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Packs a bundle directory into one uncompressed tar file (readable by the C++ runtime
    directly). The bundle is validated first; the archive is written atomically."""
    from edge_sdk.bundle.validator import validate_bundle

    bundle_dir, archive = Path(bundle_dir), Path(archive)
    manifest = validate_bundle(bundle_dir)
    if archive.exists() and not overwrite:
        raise BundleError(f"{archive}: exists (pass overwrite=True to replace it)")
    names = [MANIFEST_FILE] + sorted(manifest["files"])
    tmp = archive.parent / f".{archive.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for name in names:
                data = (bundle_dir / name).read_bytes()
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, 0  # reproducible archives
                tar.addfile(info, io.BytesIO(data))
        validate_bundle(tmp)
        os.replace(tmp, archive)
    finally:
        if tmp.exists():
            tmp.unlink()
    return archive


def add_networks(bundle: str | os.PathLike, networks: Mapping[str, tuple[Mapping[str, Any], Any]]) -> Path:
    """Adds network files (e.g. precision variants) to an existing bundle directory, rewriting it
    atomically so every ONNX file's embedded manifest lists them.

    networks: file name -> (``networks`` entry as made by ``network_entry``, ONNX model). An entry
    with the same name and precision as an existing one replaces it."""
    from edge_sdk.bundle.reader import read_bundle

    b = read_bundle(bundle)
    manifest = {k: v for k, v in b.manifest.items() if k != "files"}
    entries = list(manifest["networks"])
    files = dict(b.networks)
    for file, (entry, model) in networks.items():
        if entry.get("file") != file:
            raise BundleError(f"networks: entry for {file!r} names file {entry.get('file')!r}")
        for old in [e for e in entries if (e["name"], e["precision"]) == (entry["name"], entry["precision"])]:
            entries.remove(old)
            files.pop(old["file"], None)
        entries.append(dict(entry))
        files[file] = model
    manifest["networks"] = entries
    if b.path.is_dir():
        return write_bundle(b.path, manifest, files, b.arrays, overwrite=True)
    raise BundleError(f"{b.path}: add networks to a bundle directory (archives are packed from one)")
