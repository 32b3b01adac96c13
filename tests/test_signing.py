"""Signed bundles: `edge-sdk sign` (Python, cryptography) writes signature.json; the C++ loader
verifies it (OpenSSL) against the keys of EDGE_SDK_TRUSTED_KEYS, through Python
(validate_bundle, Runtime) and through the C ABI (a small C host, cpp/sdk_tests/open_bundles.c)."""

import base64
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("cryptography")

import edge_sdk
from edge_sdk import bundle as eb
from edge_sdk._native import core
from edge_sdk.bundle.signing import SIGNATURE_FILE, TRUSTED_KEYS_ENV, generate_key, sign_bundle
from edge_sdk.cli import main as cli
from edge_sdk.converters import export_bundle

from tests.bundle_helpers import ssim_parts

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAVE_ORT = "onnxruntime" in core.available_backends()


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    ids = {}
    for name in ("a", "b"):
        assert cli(["sign", "--generate-key", str(d / name)]) == 0
        ids[name] = _key_id(d / f"{name}.pub.pem")
    return d, ids


def _key_id(pub):
    from cryptography.hazmat.primitives import serialization

    k = serialization.load_pem_public_key(pub.read_bytes())
    return hashlib.sha256(k.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()[:16]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """Two different unsigned bundles (another calibration: another manifest)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("signed")
    one = export_bundle(ssim_parts(), root / "one", model_type="resganad").bundle
    two = export_bundle(ssim_parts(calibration={"threshold": 0.4, "min": 0.2, "max": 0.8}), root / "two",
                        model_type="resganad").bundle
    return one, two


def copy_of(src, tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


@pytest.fixture
def trust(monkeypatch, keys):
    """Sets EDGE_SDK_TRUSTED_KEYS (the C++ loader reads the process environment on each load)."""
    d, _ = keys

    def set_(*names):
        monkeypatch.setenv(TRUSTED_KEYS_ENV, ":".join(str(d / f"{n}.pub.pem") if not os.path.isabs(n) else n
                                                      for n in names))
    return set_


def signed(bundles, keys, tmp_path, name="signed", key="a", which=0):
    b = copy_of(bundles[which], tmp_path, name)
    assert cli(["sign", str(b), "--key", str(keys[0] / f"{key}.key")]) == 0
    return b


def test_generate_key_files(keys):
    d, ids = keys
    assert stat.S_IMODE(os.stat(d / "a.key").st_mode) == 0o600
    assert (d / "a.pub.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert ids["a"] != ids["b"]
    with pytest.raises(eb.BundleError, match="exists"):
        generate_key(d / "a.key", d / "other.pub.pem")


def test_signature_file_format(bundles, keys, tmp_path):
    b = signed(bundles, keys, tmp_path)
    doc = json.loads((b / SIGNATURE_FILE).read_text())
    assert doc["format"] == "edge-sdk-signature" and doc["version"] == 1 and doc["algorithm"] == "ed25519"
    assert doc["key_id"] == keys[1]["a"]
    from cryptography.hazmat.primitives import serialization

    pub = serialization.load_pem_public_key((keys[0] / "a.pub.pem").read_bytes())
    pub.verify(base64.b64decode(doc["signature"]), (b / "manifest.json").read_bytes())  # raises if wrong
    assert sorted(p.name for p in b.iterdir() if p.name.startswith(".")) == []  # no temporary left behind


def test_valid_signature_loads(bundles, keys, tmp_path, trust):
    b = signed(bundles, keys, tmp_path)
    trust("a")
    assert eb.validate_bundle(b)["model"]["type"] == "resganad"
    trust("b", "a")  # any of the listed keys
    eb.validate_bundle(b)
    trust(str(keys[0]))  # a directory: every *.pem in it (the .key files are not read)
    eb.validate_bundle(b)


@pytest.mark.skipif(not HAVE_ORT, reason="built without ONNX Runtime")
def test_runtime_refuses_unsigned_and_opens_signed(bundles, keys, tmp_path, trust):
    b = signed(bundles, keys, tmp_path)
    trust("a")
    rt = edge_sdk.Runtime(b, threads=1)
    assert rt.manifest["postprocess"]["kind"] == "ssim"
    with pytest.raises(eb.BundleError, match=r"one/signature\.json: missing \(the bundle is not signed"):
        edge_sdk.Runtime(bundles[0], threads=1)


def test_without_keys_signatures_are_ignored(bundles, keys, tmp_path, monkeypatch):
    monkeypatch.delenv(TRUSTED_KEYS_ENV, raising=False)
    eb.validate_bundle(bundles[0])
    b = signed(bundles, keys, tmp_path)
    eb.validate_bundle(b)  # signature.json is the one file the manifest need not list
    (b / SIGNATURE_FILE).write_text("not even JSON")
    eb.validate_bundle(b)
    monkeypatch.setenv(TRUSTED_KEYS_ENV, "")  # empty = unset
    eb.validate_bundle(b)


def _flip(path, offset=-1):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("case,match", [
    ("unsigned", r"signature\.json: missing \(the bundle is not signed, and trusted keys are configured"),
    ("other_key", r"signature\.json: signed by key {b}, which is not a trusted key \(trusted: {a}\)"),
    ("flip_manifest", r"signature\.json: the signature by key {a} \(.*a\.pub\.pem\) does not verify against manifest\.json"),
    ("flip_onnx", r"reconstructor\.onnx: sha256 [0-9a-f]{{64}} does not match manifest\.json"),
    ("bom_added", r"signature\.json: the signature by key {a} .* does not verify"),
    ("swapped_manifest", r"signature\.json: the signature by key {a} .* does not verify"),
    ("signature_of_other_bundle", r"signature\.json: the signature by key {a} .* does not verify"),
    ("stripped", r"signature\.json: missing"),
    ("empty_signature", r"signature\.json:1:1: unexpected end of input"),
    ("corrupt_signature", r"signature\.json: the signature by key {a} .* does not verify"),
    ("bad_base64", r"signature\.json: signature: expected the base64 text of a 64-byte Ed25519 signature"),
    ("forged_key_id", r"signature\.json: the signature by key {a} .* does not verify"),
    ("huge_signature", r"signature\.json: 1048576 bytes, more than the signature size limit"),
    ("fifo_signature", r"signature\.json: is a FIFO"),
])
def test_tampering_is_refused(bundles, keys, tmp_path, trust, case, match):
    ids = keys[1]
    b = signed(bundles, keys, tmp_path, key="b" if case == "other_key" else "a")
    if case == "unsigned" or case == "stripped":
        (b / SIGNATURE_FILE).unlink()
    elif case == "flip_manifest":
        # a byte of the manifest whose change keeps it valid JSON: a digit of the threshold
        text = (b / "manifest.json").read_bytes()
        i = text.index(b'"threshold": 0.5') + len(b'"threshold": 0.')
        (b / "manifest.json").write_bytes(text[:i] + b"6" + text[i + 1:])
    elif case == "flip_onnx":
        _flip(b / "reconstructor.onnx")
    elif case == "bom_added":
        (b / "manifest.json").write_bytes(b"\xef\xbb\xbf" + (b / "manifest.json").read_bytes())
    elif case == "swapped_manifest":
        other = signed(bundles, keys, tmp_path, "other", which=1)
        shutil.copy(other / "manifest.json", b / "manifest.json")
    elif case == "signature_of_other_bundle":
        other = signed(bundles, keys, tmp_path, "other", which=1)
        shutil.copy(other / SIGNATURE_FILE, b / SIGNATURE_FILE)
    elif case == "empty_signature":
        (b / SIGNATURE_FILE).write_bytes(b"")
    elif case in ("corrupt_signature", "bad_base64", "forged_key_id"):
        doc = json.loads((b / SIGNATURE_FILE).read_text())
        sig = bytearray(base64.b64decode(doc["signature"]))
        if case == "corrupt_signature":
            sig[10] ^= 0x40
            doc["signature"] = base64.b64encode(bytes(sig)).decode()
        elif case == "bad_base64":
            doc["signature"] = doc["signature"][:-4] + "@@=="
        else:
            from edge_sdk.bundle.signing import load_private_key

            doc["signature"] = base64.b64encode(load_private_key(keys[0] / "b.key").sign(
                (b / "manifest.json").read_bytes())).decode()  # b's signature, claiming to be a's
        (b / SIGNATURE_FILE).write_text(json.dumps(doc))
    elif case == "huge_signature":
        with open(b / SIGNATURE_FILE, "r+b") as f:
            f.truncate(1 << 20)
    elif case == "fifo_signature":
        (b / SIGNATURE_FILE).unlink()
        os.mkfifo(b / SIGNATURE_FILE)
    trust("a")
    with pytest.raises(eb.BundleError, match=match.format(a=ids["a"], b=ids["b"])):
        eb.validate_bundle(b)


def test_signature_cannot_be_listed_in_the_manifest(bundles, keys, tmp_path, monkeypatch):
    monkeypatch.delenv(TRUSTED_KEYS_ENV, raising=False)
    b = signed(bundles, keys, tmp_path)
    m = json.loads((b / "manifest.json").read_text())
    data = (b / SIGNATURE_FILE).read_bytes()
    m["files"][SIGNATURE_FILE] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (b / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(eb.BundleError, match=r"files\.signature\.json: not a plain file name"):
        eb.validate_bundle(b)


@pytest.mark.parametrize("setting,match", [
    ("missing.pem", r"EDGE_SDK_TRUSTED_KEYS entry .*missing\.pem: no such key file or directory"),
    ("a.key", r"EDGE_SDK_TRUSTED_KEYS key .*a\.key: not a PEM public key"),
    ("emptydir", r"EDGE_SDK_TRUSTED_KEYS: names no public key"),
    (":", r"EDGE_SDK_TRUSTED_KEYS: names no public key"),
    ("rsa.pem", r"EDGE_SDK_TRUSTED_KEYS key .*rsa\.pem: not an Ed25519 public key"),
])
def test_bad_key_configuration_fails_closed(bundles, keys, tmp_path, monkeypatch, setting, match):
    d = keys[0]
    if setting == "emptydir":
        (tmp_path / "emptydir").mkdir()
        value = str(tmp_path / "emptydir")
    elif setting == "rsa.pem":
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        k = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
        (tmp_path / "rsa.pem").write_bytes(k.public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
        value = str(tmp_path / "rsa.pem")
    elif setting == ":":
        value = ":"
    else:
        value = str(d / setting)
    monkeypatch.setenv(TRUSTED_KEYS_ENV, value)
    with pytest.raises(eb.BundleError, match=match):
        eb.validate_bundle(bundles[0])


def test_signed_archive(bundles, keys, tmp_path, trust):
    arc = eb.pack_bundle(bundles[0], tmp_path / "one.edgebundle")  # pack_bundle validates: no keys yet
    trust("a")
    with pytest.raises(eb.BundleError, match=r"one\.edgebundle/signature\.json: missing"):
        eb.validate_bundle(arc)
    assert sign_bundle(arc, keys[0] / "a.key") == keys[1]["a"]
    eb.validate_bundle(arc)
    sign_bundle(arc, keys[0] / "a.key")  # re-signing replaces the entry (a second one would be refused)
    eb.validate_bundle(arc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.edgebundle"]
    # another key's signature, and a manifest changed inside the archive
    arc_b = tmp_path / "b.edgebundle"
    shutil.copy(arc, arc_b)
    sign_bundle(arc_b, keys[0] / "b.key")
    with pytest.raises(eb.BundleError, match=r"b\.edgebundle/signature\.json: signed by key " + keys[1]["b"]):
        eb.validate_bundle(arc_b)
    data = bytearray(arc.read_bytes())
    i = data.index(b'"threshold": 0.5') + len(b'"threshold": 0.')
    data[i] = ord("6")
    # keep the tar header checksum right: only the manifest's bytes differ
    bad = tmp_path / "bad.edgebundle"
    bad.write_bytes(bytes(data))
    with pytest.raises(eb.BundleError, match=r"bad\.edgebundle/signature\.json: the signature by key .* does not verify"):
        eb.validate_bundle(bad)


def test_sign_refuses_a_broken_bundle(bundles, keys, tmp_path):
    b = copy_of(bundles[0], tmp_path, "broken")
    _flip(b / "reconstructor.onnx")
    with pytest.raises(eb.BundleError, match=r"reconstructor\.onnx: does not match manifest\.json \(not signed"):
        sign_bundle(b, keys[0] / "a.key")
    assert not (b / SIGNATURE_FILE).exists()
    assert cli(["sign", str(b), "--key", str(keys[0] / "a.key")]) == 2


# ---- the C ABI ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def c_host(tmp_path_factory):
    """cpp/sdk_tests/open_bundles.c built against the in-place library."""
    cc = shutil.which("cc") or shutil.which("gcc")
    lib = os.path.join(REPO, "edge_sdk")
    if not cc or not any(n.startswith("libedge_sdk.so") for n in os.listdir(lib)):
        pytest.skip("no C compiler or no in-place libedge_sdk.so")
    exe = tmp_path_factory.mktemp("host") / "open_bundles"
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", os.path.join(REPO, "cpp", "include"),
                    os.path.join(REPO, "cpp", "sdk_tests", "open_bundles.c"), "-o", str(exe), "-L", lib,
                    "-l:libedge_sdk.so", f"-Wl,-rpath,{lib}"], check=True)
    return exe


def run_c_host(exe, paths, env_keys, option_keys=None):
    env = dict(os.environ)
    env.pop(TRUSTED_KEYS_ENV, None)
    if env_keys:
        env[TRUSTED_KEYS_ENV] = env_keys
    out = subprocess.run([sys.executable, "-m", "edge_sdk.cli", "config", "--onnxruntime-lib"], capture_output=True,
                         text=True, cwd=REPO)
    if out.returncode == 0 and out.stdout.strip():
        env["EDGE_SDK_ONNXRUNTIME_LIB"] = out.stdout.strip()
    opt = [f"--trusted-keys={option_keys}"] if option_keys else []
    r = subprocess.run([str(exe)] + opt + [os.fsencode(p) for p in paths], capture_output=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode("utf-8").splitlines()  # strict: every message must be valid UTF-8
    assert len(lines) == len(paths)
    return [tuple(line.split("\t", 2)[1:]) for line in lines]


@pytest.mark.skipif(not HAVE_ORT, reason="built without ONNX Runtime")
@pytest.mark.parametrize("through", ["environment", "option"])
def test_c_abi_signed_bundles(bundles, keys, tmp_path, c_host, through):
    good = signed(bundles, keys, tmp_path, "good")
    other_key = signed(bundles, keys, tmp_path, "other_key", key="b")
    flipped = signed(bundles, keys, tmp_path, "flipped")
    _flip(flipped / "arrays.safetensors" if (flipped / "arrays.safetensors").exists() else flipped / "reconstructor.onnx")
    swapped = signed(bundles, keys, tmp_path, "swapped")
    shutil.copy(signed(bundles, keys, tmp_path, "two", which=1) / "manifest.json", swapped / "manifest.json")
    foreign = signed(bundles, keys, tmp_path, "foreign")
    shutil.copy(tmp_path / "two" / SIGNATURE_FILE, foreign / SIGNATURE_FILE)
    stripped = signed(bundles, keys, tmp_path, "stripped")
    (stripped / SIGNATURE_FILE).unlink()
    arc = eb.pack_bundle(bundles[0], tmp_path / "arc.edgebundle")
    sign_bundle(arc, keys[0] / "a.key")
    paths = [good, bundles[0], other_key, flipped, swapped, foreign, stripped, arc]
    key = str(keys[0] / "a.pub.pem")
    res = run_c_host(c_host, paths, key, None) if through == "environment" else run_c_host(c_host, paths, None, key)
    assert res[0] == ("EDGE_OK", "") and res[7] == ("EDGE_OK", ""), res
    for (status, msg), p in zip(res[1:7], paths[1:7]):
        assert status == "EDGE_E_BUNDLE", (p, status, msg)
        assert str(p) in msg and ("signature.json" in msg or "sha256" in msg), msg
    assert "signed by key " + keys[1]["b"] in res[2][1]
    assert "does not verify" in res[4][1] and "does not verify" in res[5][1]
    # without trusted keys the same C host opens unsigned and signed bundles alike
    res = run_c_host(c_host, [bundles[0], good], None)
    assert res == [("EDGE_OK", ""), ("EDGE_OK", "")]


def test_c_abi_messages_are_utf8(bundles, tmp_path, c_host):
    import io
    import tarfile

    arc = tmp_path / "latin1.edgebundle"
    with tarfile.open(arc, "w", format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="surrogateescape") as tar:
        for p in sorted(bundles[0].iterdir()):
            tar.add(p, arcname=p.name)
        info = tarfile.TarInfo("caf\udce9.bin")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    res = run_c_host(c_host, [arc, os.fsdecode(b"/nonexistent/\xff\xfe")], None)
    assert res[0] == ("EDGE_E_BUNDLE", f"{arc}/caf\\xE9.bin: unexpected file (not listed in manifest.json files)")
    assert res[1] == ("EDGE_E_BUNDLE", "/nonexistent/\\xFF\\xFE: no such bundle (directory or archive)")


@pytest.mark.skipif(not HAVE_ORT, reason="built without ONNX Runtime")
def test_python_trusted_keys_argument(bundles, keys, tmp_path, monkeypatch):
    """Keys given as an argument (no environment variable) verify as the environment's do; the
    writers' own structure checks never demand a signature."""
    monkeypatch.delenv(TRUSTED_KEYS_ENV, raising=False)
    good = signed(bundles, keys, tmp_path, "good_arg")
    other = signed(bundles, keys, tmp_path, "other_arg", key="b")
    key = keys[0] / "a.pub.pem"
    assert eb.validate_bundle(good, trusted_keys=[key])
    edge_sdk.Runtime(good, threads=1, trusted_keys=[key])
    for b in (bundles[0], other):
        with pytest.raises(eb.BundleError, match="signature"):
            eb.validate_bundle(b, trusted_keys=[key])
        with pytest.raises(eb.BundleError, match="signature"):
            edge_sdk.Runtime(b, threads=1, trusted_keys=[key])
        with pytest.raises(eb.BundleError, match="signature"):
            eb.read_bundle(b, trusted_keys=[key])
    with pytest.raises(eb.BundleError, match="trusted_keys option: names no public key"):
        edge_sdk.Runtime(bundles[0], threads=1, trusted_keys=[""])
    # with the host's keys set, packing an unsigned bundle (a release step before signing) works
    monkeypatch.setenv(TRUSTED_KEYS_ENV, str(key))
    arc = eb.pack_bundle(bundles[0], tmp_path / "unsigned.edgebundle")
    with pytest.raises(eb.BundleError, match="signature"):
        eb.validate_bundle(arc)
    sign_bundle(arc, keys[0] / "a.key")
    assert eb.validate_bundle(arc)
