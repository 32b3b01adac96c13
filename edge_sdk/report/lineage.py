"""Where a report's numbers came from: the model's and bundle's checksums, a checksum of the data
set's file list (paths, labels, defect types), the versions of the SDK and of the libraries that
scored it, and the date, so a reviewer can tell whether two reports judged the same thing."""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
from pathlib import Path


def directory_sha256(folder: str | os.PathLike) -> str:
    """sha256 over every regular file of ``folder`` (sorted relative names, each name and content)."""
    root = Path(folder)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def file_list_sha256(paths, labels, defect_types, root: str | os.PathLike | None = None) -> str:
    """sha256 of the sorted lines 'relative path, label, defect type' of a data set."""
    base = Path(root).resolve() if root else None
    lines = []
    for p, lab, d in zip(paths, labels, defect_types):
        rel = Path(p).resolve()
        if base is not None:
            try:
                rel = rel.relative_to(base)
            except ValueError:
                pass
        lines.append(f"{rel.as_posix()}\t{int(lab)}\t{d}")
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return "not installed"


def lineage(*, model_dir: str, data_root: str | None, paths, labels, defect_types, bundle: str | None = None,
            bundle_manifest: bytes | None = None) -> dict:
    """name -> value rows of the report's lineage table."""
    import edge_sdk

    out = {
        "model directory": str(model_dir),
        "model sha256 (every file)": directory_sha256(model_dir),
        "data set": str(data_root or ""),
        "data set file list sha256": file_list_sha256(paths, labels, defect_types, data_root),
        "images": len(list(paths)),
        "edge-sdk": edge_sdk.__version__,
        "onnxruntime": _version("onnxruntime"),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "python": platform.python_version(),
        "date (UTC)": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
    }
    if bundle:
        out["bundle"] = str(bundle)
        out["bundle manifest sha256"] = hashlib.sha256(bundle_manifest or b"").hexdigest()
    return out
