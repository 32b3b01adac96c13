"""Writing bundles atomically: everything goes into a temporary directory beside the target, is
checked by the validator, and only then takes the target's place. A failure at any point leaves
the previous bundle (if any) untouched and no partial directory behind."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edge_sdk.atomic import atomic_directory, atomic_path, replaceable

from edge_sdk.bundle.schema import (
    ARRAYS_FILE,
    MANIFEST_FILE,
    ONNX_META_MANIFEST,
    ONNX_META_NETWORK,
    ONNX_META_SCHEMA,
    SCHEMA_VERSION,
    FORMAT,
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


def is_bundle_dir(path: Path) -> bool:
    """A directory this SDK wrote as a bundle: manifest.json with ``format`` FORMAT and an integer
    ``schema_version``. Only such a directory (or an empty one) is ever replaced."""
    try:
        with open(Path(path) / MANIFEST_FILE) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return False
    return (isinstance(manifest, dict) and manifest.get("format") == FORMAT
            and type(manifest.get("schema_version")) is int)


def check_bundle_target(out: str | os.PathLike, overwrite: bool) -> None:
    """BundleError unless a bundle may be written at ``out``: nothing there, an empty directory,
    or (with ``overwrite``) a bundle. Called before any work, so a refusal costs nothing."""
    out = Path(out)
    if not os.path.lexists(out):
        return
    if not overwrite:
        raise BundleError(f"{out}: exists (pass overwrite=True to replace it)")
    if not replaceable(out, is_bundle_dir):
        raise BundleError(f"{out}: exists and is not an edge-sdk bundle (no manifest.json with format "
                          f"{FORMAT!r}); refusing to replace it")


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
    existing bundle at ``out``; an existing ``out`` is replaced only with ``overwrite=True`` and
    only when it is a bundle (`is_bundle_dir`) or an empty directory.
    """
    out = Path(out)
    check_bundle_target(out, overwrite)
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

    from edge_sdk.bundle.validator import validate_bundle

    try:
        with atomic_directory(out, is_ours=is_bundle_dir, what="an edge-sdk bundle", overwrite=overwrite) as tmp:
            for name, data in payload.items():
                (tmp / name).write_bytes(data)
            (tmp / MANIFEST_FILE).write_text(_dumps(manifest))
            validate_bundle(tmp, trusted_keys_from_env=False)  # the runtime's own check, before anything replaces a good bundle
    except FileExistsError as exc:
        raise BundleError(str(exc)) from exc
    return out


def pack_bundle(bundle_dir: str | os.PathLike, archive: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Packs a bundle directory into one uncompressed tar file (readable by the C++ runtime
    directly). The bundle is validated first; the archive is written atomically."""
    from edge_sdk.bundle.validator import validate_bundle

    bundle_dir, archive = Path(bundle_dir), Path(archive)
    manifest = validate_bundle(bundle_dir, trusted_keys_from_env=False)
    if os.path.lexists(archive):
        if not overwrite:
            raise BundleError(f"{archive}: exists (pass overwrite=True to replace it)")
        try:  # only a bundle archive is replaced, never some other file of the same name
            is_archive = archive.is_file() and validate_bundle(archive, trusted_keys_from_env=False) is not None
        except BundleError:
            is_archive = False
        if not is_archive:
            raise BundleError(f"{archive}: exists and is not an edge-sdk bundle archive; refusing to replace it")
    names = [MANIFEST_FILE] + sorted(manifest["files"])
    with atomic_path(archive, ".tar") as tmp:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
            for name in names:
                data = (bundle_dir / name).read_bytes()
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, 0  # reproducible archives
                tar.addfile(info, io.BytesIO(data))
        validate_bundle(tmp, trusted_keys_from_env=False)
    return archive


def add_networks(bundle: str | os.PathLike, networks: Mapping[str, tuple[Mapping[str, Any], Any]]) -> Path:
    """Adds network files (e.g. precision variants) to an existing bundle directory, rewriting it
    atomically so every ONNX file's embedded manifest lists them.

    networks: file name -> (``networks`` entry as made by ``network_entry``, ONNX model). An entry
    with the same name and precision as an existing one replaces it."""
    from edge_sdk.bundle.reader import read_bundle

    b = read_bundle(bundle, trusted_keys_from_env=False)  # its signature no longer holds once networks are added
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
