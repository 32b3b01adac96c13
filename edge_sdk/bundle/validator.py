"""Bundle validation: THE validator is the C++ runtime's (edge::load_bundle), called here so
Python and C++ accept and refuse the same bundles."""

from __future__ import annotations

import json
import os

from edge_sdk._native import core as _core


def validate_bundle(path: str | os.PathLike) -> dict:
    """Checks a bundle directory or archive completely: manifest schema and fields, files present
    and none unlisted, size and sha256 of every file, arrays against their declared dtypes and
    shapes, each ONNX file against its manifest entry (inputs, outputs, shapes, opset >= 17,
    embedded metadata). Returns the manifest; raises BundleError naming the file or field."""
    return json.loads(_core.bundle_validate(os.fspath(path)))
