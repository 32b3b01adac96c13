"""Seed corpus of cpp/fuzz/fuzz_bundle from real bundles made here (nothing large is committed):
a small embedding (k-NN) bundle and a reconstruction (SSIM) bundle, each file as the input of its
reader's mode, the archive as-is (mode 4), the files as records (mode 5) and a signature.json with
the manifest it signs (mode 6, RFC 8032 test key 1, whose public key the target holds).

    python3 cpp/fuzz/make_seeds.py OUT_DIR
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

RFC8032_KEY1 = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


def records(files: dict[str, bytes]) -> bytes:
    out = b""
    for name, data in files.items():
        n = name.encode()
        out += bytes([len(n)]) + n + struct.pack("<I", len(data)) + data
    return out


def main(out: str) -> None:
    import torch
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from edge_sdk.converters import export_bundle
    from edge_sdk.bundle import pack_bundle
    from edge_sdk.bundle.signing import signature_document
    from tests.bundle_helpers import embedding_parts, ssim_parts

    torch.set_num_threads(1)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.from_private_bytes(RFC8032_KEY1)
    with tempfile.TemporaryDirectory() as tmp:
        bundles = {
            "knn": export_bundle(embedding_parts("knn", size=(16, 16), features=4, n_train=2), Path(tmp) / "knn",
                                 model_type="patchcore").bundle,
            "ssim": export_bundle(ssim_parts(size=16), Path(tmp) / "ssim", model_type="resganad").bundle,
        }
        for tag, b in bundles.items():
            files = {p.name: p.read_bytes() for p in sorted(b.iterdir())}
            seeds = {
                "json": b"\x00" + files["manifest.json"],
                "manifest": b"\x01" + files["manifest.json"],
                "safetensors": b"\x02" + files["arrays.safetensors"],
                "tar": b"\x04" + pack_bundle(b, Path(tmp) / f"{tag}.tar").read_bytes(),
                "records": b"\x05" + records(files),
                "signature": b"\x06" + signature_document(files["manifest.json"], key) + b"\x00" + files["manifest.json"],
            }
            # An empty listed file (its checksum over zero bytes) once reached memcpy with a null pointer.
            manifest = json.loads(files["manifest.json"])
            manifest["files"]["empty.bin"] = {"sha256": hashlib.sha256(b"").hexdigest(), "bytes": 0}
            seeds["records-empty-file"] = b"\x05" + records(
                {**files, "manifest.json": json.dumps(manifest).encode(), "empty.bin": b""})
            for name, data in files.items():
                if name.endswith(".onnx"):
                    seeds["onnx-" + name] = b"\x03" + data
            for name, data in seeds.items():
                (out / f"{tag}-{name}").write_bytes(data)
    print(f"{len(list(out.iterdir()))} seeds in {out}")


if __name__ == "__main__":
    main(sys.argv[1])
