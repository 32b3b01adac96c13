"""Ed25519 signatures of bundles (docs/BUNDLE.md "Signed bundles").

``signature.json`` beside ``manifest.json`` signs the manifest's exact bytes; the manifest pins
every other file by sha256, so the signature covers the whole bundle. The C++ loader checks it
(OpenSSL) when the host configures trusted public keys (``EDGE_SDK_TRUSTED_KEYS``); this module
makes keys and signatures with the ``cryptography`` package.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import uuid
from pathlib import Path

from edge_sdk.atomic import atomic_path
from edge_sdk.bundle.schema import MANIFEST_FILE, BundleError

SIGNATURE_FILE = "signature.json"
SIGNATURE_FORMAT = "edge-sdk-signature"
TRUSTED_KEYS_ENV = "EDGE_SDK_TRUSTED_KEYS"
_MAX_MANIFEST_BYTES = 16 << 20  # the loader's cap (cpp bundle.hpp kMaxManifestBytes)


def key_id(public_key) -> str:
    """First 16 hex digits of the sha256 of the raw 32-byte public key (as the C++ loader)."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_key(private_out: str | os.PathLike, public_out: str | os.PathLike) -> str:
    """Writes a new Ed25519 key pair: the private key as unencrypted PKCS#8 PEM readable by its
    owner only, the public key as SubjectPublicKeyInfo PEM (what EDGE_SDK_TRUSTED_KEYS lists).
    Refuses to overwrite either file. Returns the key id."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_out, public_out = Path(private_out), Path(public_out)
    for p in (private_out, public_out):
        if p.exists():
            raise BundleError(f"{p}: exists (not overwritten: a key pair is made once)")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    private_out.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL and mode 0600 from the start: the private key is never readable by others, even briefly.
    fd = os.open(private_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem)
    with atomic_path(public_out) as tmp:
        Path(tmp).write_bytes(public_pem)
    return key_id(key.public_key())


def load_private_key(path: str | os.PathLike):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = Path(path).read_bytes()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise BundleError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path}: not an Ed25519 private key (bundle signatures are Ed25519)")
    return key


def signature_document(manifest_bytes: bytes, private_key) -> bytes:
    """signature.json's bytes for a manifest's exact bytes."""
    sig = private_key.sign(manifest_bytes)
    doc = {"format": SIGNATURE_FORMAT, "version": 1, "algorithm": "ed25519",
           "key_id": key_id(private_key.public_key()), "signature": base64.b64encode(sig).decode("ascii")}
    return (json.dumps(doc, indent=2) + "\n").encode("ascii")


def _check_files(source: str, manifest_bytes: bytes, read) -> None:
    """Refuses to sign a bundle whose files do not match its manifest (a signature vouches for it)."""
    try:
        manifest = json.loads(manifest_bytes.decode("utf-8-sig"))
        files = manifest["files"]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{source}/{MANIFEST_FILE}: not a bundle manifest ({exc})") from None
    for name, entry in files.items():
        h = hashlib.sha256()
        size = 0
        for chunk in read(name):
            h.update(chunk)
            size += len(chunk)
        if size != entry.get("bytes") or h.hexdigest() != entry.get("sha256"):
            raise BundleError(f"{source}/{name}: does not match {MANIFEST_FILE} (not signed: fix or re-export the bundle)")


def _chunks(f, size: int = 1 << 20):
    while chunk := f.read(size):
        yield chunk


def sign_bundle(bundle: str | os.PathLike, private_key_path: str | os.PathLike) -> str:
    """Signs a bundle directory or archive in place (an existing signature is replaced), after
    checking its files against the manifest. Directory: signature.json is written atomically
    (temporary file + rename). Archive: a new archive with signature.json is written beside it
    and renamed over it. Returns the key id."""
    key = load_private_key(private_key_path)
    bundle = Path(bundle)
    if bundle.is_dir():
        mpath = bundle / MANIFEST_FILE
        if not mpath.is_file():
            raise BundleError(f"{mpath}: missing")
        if mpath.stat().st_size > _MAX_MANIFEST_BYTES:
            raise BundleError(f"{mpath}: larger than the loader's manifest cap")
        manifest_bytes = mpath.read_bytes()

        def read(name):
            p = bundle / name
            if not p.is_file():
                raise BundleError(f"{p}: missing or not a regular file")
            with open(p, "rb") as f:
                yield from _chunks(f)

        _check_files(str(bundle), manifest_bytes, read)
        doc = signature_document(manifest_bytes, key)
        with atomic_path(bundle / SIGNATURE_FILE) as tmp:
            with open(tmp, "wb") as f:
                f.write(doc)
                f.flush()
                os.fsync(f.fileno())
        return key_id(key.public_key())
    if not bundle.is_file():
        raise BundleError(f"{bundle}: no such bundle (directory or archive)")
    with tarfile.open(bundle, "r:") as tar:
        members = [m for m in tar.getmembers()]
        by_name = {m.name.removeprefix("./"): m for m in members if m.isfile()}
        top = {n.split("/", 1)[-1] if "/" in n and not n.startswith("engines/") else n: m for n, m in by_name.items()}
        if MANIFEST_FILE not in top:
            raise BundleError(f"{bundle}/{MANIFEST_FILE}: missing")
        if top[MANIFEST_FILE].size > _MAX_MANIFEST_BYTES:
            raise BundleError(f"{bundle}/{MANIFEST_FILE}: larger than the loader's manifest cap")
        manifest_bytes = tar.extractfile(top[MANIFEST_FILE]).read()

        def read(name):
            if name not in top:
                raise BundleError(f"{bundle}/{name}: missing")
            yield from _chunks(tar.extractfile(top[name]))

        _check_files(str(bundle), manifest_bytes, read)
        doc = signature_document(manifest_bytes, key)
        tmp = bundle.parent / f".{bundle.name}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            try:
                out = tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT)
            except OSError as exc:
                raise BundleError(f"{tmp}: cannot be written ({exc})") from None
            with out:
                for m in members:
                    if m.isfile() and m.name.removeprefix("./").split("/")[-1] == SIGNATURE_FILE \
                            and not m.name.removeprefix("./").startswith("engines/"):
                        continue
                    try:
                        out.addfile(m, tar.extractfile(m) if m.isfile() else None)
                    except ValueError as exc:  # a name or size ustar cannot hold: not a bundle archive
                        raise BundleError(f"{bundle}: entry {m.name!r} cannot be kept ({exc}); "
                                          "pack the bundle with edge_sdk.bundle.pack_bundle") from None
                info = tarfile.TarInfo(SIGNATURE_FILE)
                info.size, info.mode, info.mtime = len(doc), 0o644, 0
                out.addfile(info, io.BytesIO(doc))
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, bundle)
        finally:
            if tmp.exists():
                tmp.unlink()
    return key_id(key.public_key())
