"""Model bundles: the self-describing artifact a trained model leaves training as.

A bundle is a directory (or an uncompressed tar archive of one, see :func:`pack_bundle`) with
``manifest.json`` (schema version 1, docs/BUNDLE.md), the ONNX network(s) and
``arrays.safetensors``. :func:`write_bundle` writes one atomically; :func:`validate_bundle` and
:func:`read_bundle` go through the C++ runtime's validator, so Python and C++ accept and refuse
the same bundles.
"""

from edge_sdk.bundle.schema import (
    ARRAYS_FILE,
    FORMAT,
    MANIFEST_FILE,
    POSTPROCESS_KINDS,
    PRECISIONS,
    SCHEMA_VERSION,
    BundleError,
    build_manifest,
    input_spec,
    manifest_for_onnx,
    network_entry,
)
from edge_sdk.bundle.writer import add_networks, check_bundle_target, is_bundle_dir, pack_bundle, write_bundle
from edge_sdk.bundle.validator import validate_bundle
from edge_sdk.bundle.reader import Bundle, read_bundle

__all__ = [
    "SCHEMA_VERSION", "FORMAT", "MANIFEST_FILE", "ARRAYS_FILE", "POSTPROCESS_KINDS", "PRECISIONS",
    "BundleError", "build_manifest", "input_spec", "network_entry", "manifest_for_onnx",
    "write_bundle", "check_bundle_target", "is_bundle_dir", "add_networks", "pack_bundle", "validate_bundle", "read_bundle", "Bundle",
]
