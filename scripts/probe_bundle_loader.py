"""Attacker's probe of the bundle loader: builds hostile and clumsy bundles from a good one and
opens each in a child process (validate_bundle, 60 s, 2 GiB address space), classifying the
outcome: refused (BundleError), accepted, crashed (a signal or another exception), hung, or
refused without naming the file. Cases marked good must load; every other one must be refused.

    python3 scripts/probe_bundle_loader.py [--keep DIR]

Exit status 1 when any case crashes, hangs, is wrongly accepted, wrongly refused, or gives a
message that does not name a file of the bundle.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
GIB = 1 << 30

CHILD = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
    from edge_sdk.bundle import validate_bundle, BundleError
    try:
        validate_bundle(sys.argv[1])
    except BundleError as e:
        sys.stdout.buffer.write(b"REFUSED " + str(e).encode("utf-8"))
        sys.exit(3)
    print("ACCEPTED")
""")


def run(path, env_keys=None):
    env = dict(os.environ)
    env.pop("EDGE_SDK_TRUSTED_KEYS", None)
    if env_keys:
        env["EDGE_SDK_TRUSTED_KEYS"] = env_keys
    try:
        r = subprocess.run([sys.executable, "-c", CHILD, os.fsencode(path)], capture_output=True, timeout=60,
                           cwd=REPO, env=env)
    except subprocess.TimeoutExpired:
        return "hung", ""
    out = r.stdout.decode("utf-8", "strict")
    if r.returncode == 3:
        return "refused", out[len("REFUSED "):]
    if r.returncode == 0 and out.startswith("ACCEPTED"):
        return "accepted", ""
    return "crashed", f"exit {r.returncode}: {r.stderr.decode('utf-8', 'replace')[-300:]}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", type=Path)
    args = ap.parse_args()
    import numpy as np
    import torch
    from safetensors.numpy import load, save

    from edge_sdk.converters import export_bundle
    from edge_sdk.bundle import pack_bundle
    from edge_sdk.bundle.signing import generate_key, sign_bundle
    from tests.bundle_helpers import embedding_parts, ssim_parts

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="probe-")) if not args.keep else args.keep
    root.mkdir(parents=True, exist_ok=True)
    good = export_bundle(embedding_parts("knn"), root / "good", model_type="patchcore").bundle
    ssim = export_bundle(ssim_parts(), root / "ssim", model_type="resganad").bundle
    generate_key(root / "k.key", root / "k.pub.pem")
    generate_key(root / "o.key", root / "o.pub.pem")
    cases: list[tuple[str, Path, bool, str | None, str | None]] = []  # name, path, loads?, keys, expected text
    n = [0]

    def copy(src=good):
        n[0] += 1
        d = root / f"c{n[0]}"
        shutil.copytree(src, d)
        return d

    def manifest_edit(d, fn):
        m = json.loads((d / "manifest.json").read_text())
        fn(m)
        (d / "manifest.json").write_text(json.dumps(m))
        return d

    def set_path(m, path, value):
        for k in path[:-1]:
            m = m[k]
        m[path[-1]] = value

    def reseal(d, arrays):
        data = save(arrays)
        (d / "arrays.safetensors").write_bytes(data)
        return manifest_edit(d, lambda m: m["files"].__setitem__(
            "arrays.safetensors", {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}))

    def add(name, path, ok=False, keys=None, expect=None):
        cases.append((name, Path(path), ok, keys, expect))

    def tar_of(d, name, extra=(), fmt=tarfile.USTAR_FORMAT, skip=()):
        out = root / name
        with tarfile.open(out, "w", format=fmt, encoding="utf-8", errors="surrogateescape") as tar:
            for p in sorted(d.iterdir()):
                if p.name not in skip:
                    tar.add(p, arcname=p.name)
            for info, data in extra:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return out

    def info(name, size=0, type_=tarfile.REGTYPE, linkname=""):
        i = tarfile.TarInfo(name)
        i.size, i.type, i.linkname = size, type_, linkname
        return i

    # -- good bundles: must load
    add("good directory", good, ok=True)
    add("good archive", pack_bundle(good, root / "good.tar"), ok=True)
    d = copy(); (d / "manifest.json").write_bytes(b"\xef\xbb\xbf" + (d / "manifest.json").read_bytes())
    add("manifest with UTF-8 BOM", d, ok=True)
    d = copy(); sign_bundle(d, root / "k.key"); add("signed, key trusted", d, ok=True, keys=str(root / "k.pub.pem"))
    add("signed, no keys configured", d, ok=True)
    arrays = dict(load((good / "arrays.safetensors").read_bytes()))
    a = dict(arrays); b = a["bank"].copy(); b[0] *= 10; a["bank"] = b
    add("bank with a 10x outlier row", reseal(copy(), a), ok=True)

    # -- bounded loading
    for where in ("bundle", "manifest.json", "arrays.safetensors", "features.onnx", "unlisted"):
        if where == "bundle":
            p = root / "fifo.tar"; os.mkfifo(p); add("FIFO as the bundle", p)
        else:
            d = copy()
            if (d / where).exists():
                (d / where).unlink()
            os.mkfifo(d / where)
            add(f"FIFO as {where}", d)
    d = copy(); (d / "arrays.safetensors").unlink(); os.symlink("/dev/zero", d / "arrays.safetensors")
    add("symlink to /dev/zero as arrays", d)
    d = copy(); os.symlink("/dev/urandom", d / "extra"); add("unlisted symlink to /dev/urandom", d)
    d = copy(); os.symlink("loop", d / "loop"); add("symlink loop in the bundle", d)
    add("/dev/zero as the bundle", Path("/dev/zero"))
    add("/proc/self/mem as the bundle", Path("/proc/self/mem"))
    d = copy()
    with open(d / "junk.bin", "wb") as f:
        f.truncate(3 * GIB)
    add("3 GiB sparse unlisted file", d)
    arc = root / "sparse.tar"
    shutil.copy(pack_bundle(good, root / "g2.tar"), arc)
    data = arc.read_bytes().rstrip(b"\0")
    with open(arc, "wb") as f:
        f.write(data + b"\0" * (-len(data) % 512))
        f.write(info("big.bin", 3 * GIB).tobuf(format=tarfile.USTAR_FORMAT))
        end = f.tell() + 3 * GIB
        f.truncate(end); f.seek(end); f.write(b"\0" * 1024)
    add("tar with 3 GiB sparse unlisted entry", arc)
    arc = root / "lie.tar"
    arc.write_bytes(info("lie.bin", 3 * GIB).tobuf(format=tarfile.USTAR_FORMAT) + (root / "g2.tar").read_bytes())
    add("tar header size lie (3 GiB)", arc)
    d = copy()
    with open(d / "manifest.json", "r+b") as f:
        f.truncate(100 << 20)
    add("100 MiB manifest", d)
    add("declared bytes 2^62", manifest_edit(copy(), lambda m: m["files"]["arrays.safetensors"].__setitem__("bytes", 2**62)))
    add("1100 tar entries", tar_of(good, "many.tar", extra=[(info(f"e{i}"), b"") for i in range(1100)]))
    add("tar symlink entry", tar_of(good, "sym.tar", extra=[(info("x", type_=tarfile.SYMTYPE, linkname="/etc/passwd"), None)]))
    add("tar hardlink entry", tar_of(good, "hard.tar", extra=[(info("x", type_=tarfile.LNKTYPE, linkname="manifest.json"), None)]))
    add("tar ../ entry", tar_of(good, "dotdot.tar", extra=[(info("../evil", 1), b"x")]))
    add("tar absolute entry", tar_of(good, "abs.tar", extra=[(info("/etc/evil", 1), b"x")]))
    add("tar duplicate manifest", tar_of(good, "dup.tar", extra=[(info("manifest.json", 2), b"{}")]))
    add("tar pax long name", tar_of(good, "pax.tar", extra=[(info("x" * 200, 1), b"x")], fmt=tarfile.PAX_FORMAT))
    add("tar GNU long name", tar_of(good, "gnu.tar", extra=[(info("y" * 200, 1), b"x")], fmt=tarfile.GNU_FORMAT))
    (root / "empty.tar").write_bytes(b""); add("empty file", root / "empty.tar")
    (root / "zeros.tar").write_bytes(b"\0" * 1024); add("tar of only end blocks", root / "zeros.tar")
    (root / "short.tar").write_bytes(b"\0" * 511); add("511-byte file", root / "short.tar")
    d = copy()
    for i in range(2000):
        (d / f"f{i}").write_bytes(b"")
    add("directory with 2000 extra files", d)

    # -- numeric fields
    for path, value in [(("postprocess", "blur_sigma"), 1e-300), (("input", "std"), [1e-46, 0.2, 0.2]),
                        (("input", "scale"), 1e300), (("input", "mean"), [1e39, 0.4, 0.4]),
                        (("calibration", "threshold"), 1e39), (("calibration", "max"), 1e-300),
                        (("postprocess", "grid"), [2**40, 1]), (("input", "value_range"), [0, 1e39]),
                        ]:
        # the field must be named: any manifest edit is also refused later, by the ONNX metadata check
        add(f"{'.'.join(path)} = {value!r}"[:42], manifest_edit(copy(), lambda m, p=path, v=value: set_path(m, p, v)),
            expect=".".join(path))
    add("regions[0].threshold = 1e39", manifest_edit(copy(), lambda m: m.update(
        frame={"width": 40, "height": 32},
        regions=[{"name": "r", "x": 0, "y": 0, "width": 8, "height": 8, "threshold": 1e39}])), expect="regions[0].threshold")
    add("ssim.sigma 1e-300", manifest_edit(copy(ssim), lambda m: m["postprocess"]["ssim"].__setitem__("sigma", 1e-300)),
        expect="postprocess.ssim.sigma")
    add("ssim.data_range 1e300", manifest_edit(copy(ssim), lambda m: m["postprocess"]["ssim"].__setitem__("data_range", 1e300)),
        expect="postprocess.ssim.data_range")

    # -- k-NN banks
    for name, fn in [("bank value 4.2e12", lambda b: b.__setitem__((3, 2), 4.2e12)),
                     ("bank all zeros", lambda b: b.__setitem__(slice(None), 0)),
                     ("bank NaN", lambda b: b.__setitem__((1, 1), np.nan)),
                     ("bank -inf", lambda b: b.__setitem__((1, 1), -np.inf)),
                     ("bank row x20", lambda b: b.__setitem__(slice(0, 20), b[0].copy()))]:
        a = dict(arrays); b = a["bank"].copy(); fn(b); a["bank"] = b
        add(name, reseal(copy(), a))

    # -- text encodings and names
    d = copy(); (d / "manifest.json").write_bytes((d / "manifest.json").read_text().encode("utf-16")); add("UTF-16 manifest", d)
    d = copy(); (d / "manifest.json").write_bytes(b"\xff" * 10); add("manifest of 0xFF bytes", d)
    d = copy(); (d / "manifest.json").write_bytes(b"[" * 100000); add("manifest nested 100000 deep", d)
    d = copy(); (d / "manifest.json").write_bytes(b'{"a": 1e999999999}'); add("manifest number 1e999999999", d)
    add("tar Latin-1 entry name", tar_of(good, "latin.tar", extra=[(info("caf\udce9", 1), b"x")]))
    d = copy(); (d / os.fsdecode(b"\xff\xfe")).write_bytes(b"x"); add("unlisted file with non-UTF-8 name", d)

    # -- signatures (key k trusted)
    keys = str(root / "k.pub.pem")
    add("unsigned, key configured", good, keys=keys)
    d = copy(); sign_bundle(d, root / "o.key"); add("signed by another key", d, keys=keys)
    d = copy(); sign_bundle(d, root / "k.key"); data = bytearray((d / "features.onnx").read_bytes()); data[100] ^= 1
    (d / "features.onnx").write_bytes(bytes(data)); add("signed, ONNX byte flipped", d, keys=keys)
    d = copy(); sign_bundle(d, root / "k.key")
    manifest_edit(d, lambda m: m["calibration"].__setitem__("threshold", 99.0)); add("signed, manifest edited", d, keys=keys)
    d = copy(); sign_bundle(d, root / "k.key"); d2 = copy(ssim); sign_bundle(d2, root / "k.key")
    shutil.copy(d2 / "signature.json", d / "signature.json"); add("signature of another bundle", d, keys=keys)
    d = copy(); sign_bundle(d, root / "k.key"); doc = json.loads((d / "signature.json").read_text())
    doc["signature"] = base64.b64encode(b"\0" * 64).decode(); (d / "signature.json").write_text(json.dumps(doc))
    add("zeroed signature", d, keys=keys)
    d = copy(); sign_bundle(d, root / "k.key"); doc = json.loads((d / "signature.json").read_text())
    doc["signature"] += "AAAA"; (d / "signature.json").write_text(json.dumps(doc)); add("signature with extra base64", d, keys=keys)
    d = copy(); sign_bundle(d, root / "k.key"); (d / "signature.json").write_text('{"format": "edge-sdk-signature"')
    add("truncated signature.json", d, keys=keys)
    arc = pack_bundle(good, root / "sa.tar"); sign_bundle(arc, root / "k.key")
    add("signed archive", arc, ok=True, keys=keys)
    d = copy(); sign_bundle(d, root / "k.key"); add("signed, key given as a private key file", d, keys=str(root / "k.key"))
    add("keys variable names nothing", good, keys=":")

    counts = {"refused": 0, "accepted": 0, "crashed": 0, "hung": 0}
    bad = []
    for name, path, ok, keys, expect in cases:
        outcome, msg = run(path, keys)
        counts[outcome] += 1
        wrong = (ok and outcome != "accepted") or (not ok and outcome != "refused") or (expect and expect not in msg)
        names_file = outcome != "refused" or str(path) in msg or "EDGE_SDK_TRUSTED_KEYS" in msg
        flag = "WRONG" if wrong else ("NO FILE NAMED" if not names_file else "ok")
        if flag != "ok":
            bad.append(name)
        print(f"{flag:13s} {outcome:9s} {name:42s} {msg.replace(str(root), '<tmp>')[:150]}")
    print(f"{len(cases)} cases: {counts['refused']} refused, {counts['accepted']} accepted, "
          f"{counts['crashed']} crashed, {counts['hung']} hung; wrong or unnamed: {len(bad)} {bad}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
