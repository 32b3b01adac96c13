"""Bundle validation: THE validator is the C++ runtime's (edge::load_bundle), called here so
Python and C++ accept and refuse the same bundles."""

from __future__ import annotations

import json
import os
from typing import Sequence

from edge_sdk._native import core as _core


def validate_bundle(path: str | os.PathLike, *, trusted_keys: Sequence[str | os.PathLike] | None = None,
                    trusted_keys_from_env: bool = True) -> dict:
    """Checks a bundle directory or archive completely: manifest schema and fields, files present
    and none unlisted, size and sha256 of every file, arrays against their declared dtypes and
    shapes, each ONNX file against its manifest entry (inputs, outputs, shapes, opset >= 17,
    embedded metadata), and, when trusted keys are configured (``trusted_keys``: Ed25519 public key
    PEM files or folders; and EDGE_SDK_TRUSTED_KEYS unless ``trusted_keys_from_env`` is False), its
    signature. Returns the manifest; raises BundleError naming the file or field."""
    keys = [os.fspath(k) for k in (trusted_keys or [])]
    return json.loads(_core.bundle_validate(os.fspath(path), keys, bool(trusted_keys_from_env)))
