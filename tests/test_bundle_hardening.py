"""The bundle loader against hostile or clumsy input: bounded reads (unlisted / oversized entries
refused before they are read, FIFOs never opened for reading), numeric manifest fields a float32
runtime cannot use, k-NN banks that would make every search uncertifiable, and error messages
that stay valid UTF-8 and name the file whatever bytes the bundle holds."""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from edge_sdk import bundle as eb
from edge_sdk.converters import export_bundle

from tests.bundle_helpers import embedding_parts, ssim_parts

GIB = 1 << 30
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def knn_bundle(tmp_path_factory):
    torch.set_num_threads(1)
    parts = embedding_parts("knn")
    return export_bundle(parts, tmp_path_factory.mktemp("knn") / "b", model_type="patchcore").bundle


@pytest.fixture(scope="module")
def ssim_bundle(tmp_path_factory):
    torch.set_num_threads(1)
    return export_bundle(ssim_parts(), tmp_path_factory.mktemp("ssim") / "b", model_type="resganad").bundle


def copy_of(bundle, tmp_path, name="copy"):
    dst = tmp_path / name
    shutil.copytree(bundle, dst)
    return dst


def edit_manifest(path, edit):
    m = json.loads((path / "manifest.json").read_text())
    edit(m)
    (path / "manifest.json").write_text(json.dumps(m))


def reseal_arrays(path, arrays):
    """Replaces arrays.safetensors and its checksum: only the values are wrong, nothing a sha256
    would catch."""
    from safetensors.numpy import save

    data = save({k: np.ascontiguousarray(v) for k, v in arrays.items()})
    (path / "arrays.safetensors").write_bytes(data)
    edit_manifest(path, lambda m: m["files"].__setitem__(
        "arrays.safetensors", {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}))


def validate_in_subprocess(path, memory_limit=None, timeout=60):
    """validate_bundle in a child process with a wall-clock timeout (a loader that blocks fails the
    test instead of hanging it) and optionally an address-space limit. Returns (exit code, output)."""
    code = textwrap.dedent(f"""
        import resource, sys
        if {memory_limit!r}:
            resource.setrlimit(resource.RLIMIT_AS, ({memory_limit!r}, {memory_limit!r}))
        from edge_sdk.bundle import validate_bundle, BundleError
        try:
            validate_bundle(sys.argv[1])
        except BundleError as e:
            print("BundleError:", e)
            sys.exit(3)
        except BaseException as e:
            print(type(e).__name__ + ":", e)
            sys.exit(4)
        print("valid")
    """)
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=timeout,
                       cwd=REPO)
    return r.returncode, r.stdout + r.stderr


def tar_header(name, size, type_=tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mode, info.mtime = size, type_, 0o644, 0
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def pack(bundle_dir, out, extra=()):
    """Archive of a bundle directory plus extra (name, bytes) entries."""
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as tar:
        for p in sorted(bundle_dir.iterdir()):
            data = p.read_bytes()
            info = tarfile.TarInfo(p.name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
        for name, data in extra:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    return out


# ---- bounded loading --------------------------------------------------------------------------

def sparse_tar(bundle_dir, out, big_name, big_size, skip=()):
    """An archive of the bundle's files (except `skip`) followed by an entry of big_size bytes
    that are a hole in a sparse file: the archive's size is real, its disk use is not."""
    with open(out, "wb") as f:
        for p in sorted(bundle_dir.iterdir()):
            if p.name in skip:
                continue
            data = p.read_bytes()
            f.write(tar_header(p.name, len(data)))
            f.write(data + b"\0" * (-len(data) % 512))
        f.write(tar_header(big_name, big_size))
        end = f.tell() + big_size + (-big_size % 512)
        f.truncate(end)
        f.seek(end)
        f.write(b"\0" * 1024)
    return out


def test_unlisted_huge_tar_entry_is_refused_unread(knn_bundle, tmp_path):
    arc = sparse_tar(knn_bundle, tmp_path / "big.edgebundle", "payload.bin", 3 * GIB)
    rc, out = validate_in_subprocess(arc, memory_limit=2 * GIB)
    assert rc == 3, out
    assert 'payload.bin: unexpected file (not listed in manifest.json files)' in out


def test_oversized_listed_tar_entry_is_refused_unread(knn_bundle, tmp_path):
    arc = sparse_tar(knn_bundle, tmp_path / "big.edgebundle", "arrays.safetensors", 3 * GIB,
                     skip={"arrays.safetensors"})
    rc, out = validate_in_subprocess(arc, memory_limit=2 * GIB)
    assert rc == 3, out
    assert "arrays.safetensors: 3221225472 bytes, manifest.json says" in out


def test_tar_header_size_lie_is_refused(knn_bundle, tmp_path):
    arc = tmp_path / "lie.edgebundle"
    data = bytearray(pack(knn_bundle, tmp_path / "ok.edgebundle").read_bytes())
    with open(arc, "wb") as f:
        f.write(tar_header("payload.bin", 3 * GIB))  # says 3 GiB, holds nothing
        f.write(bytes(data))
    rc, out = validate_in_subprocess(arc, memory_limit=2 * GIB)
    assert rc == 3, out
    assert 'truncated tar archive (entry "payload.bin" declares 3221225472 bytes' in out


def test_huge_unlisted_file_in_directory_is_refused_unread(knn_bundle, tmp_path):
    b = copy_of(knn_bundle, tmp_path)
    with open(b / "dump.bin", "wb") as f:
        f.truncate(3 * GIB)
    rc, out = validate_in_subprocess(b, memory_limit=2 * GIB)
    assert rc == 3, out
    assert "dump.bin: unexpected file" in out


def test_oversized_manifest_is_refused_unread(knn_bundle, tmp_path):
    b = copy_of(knn_bundle, tmp_path)
    with open(b / "manifest.json", "r+b") as f:
        f.truncate(17 << 20)
    with pytest.raises(eb.BundleError, match=r"manifest\.json: 17825792 bytes, more than the manifest size limit"):
        eb.validate_bundle(b)


def test_declared_size_beyond_cap_is_refused(knn_bundle, tmp_path):
    b = copy_of(knn_bundle, tmp_path)
    edit_manifest(b, lambda m: m["files"]["arrays.safetensors"].__setitem__("bytes", 5 * GIB))
    with pytest.raises(eb.BundleError, match=r"files\.arrays\.safetensors\.bytes: expected an integer in \[0, 4294967296\]"):
        eb.validate_bundle(b)


@pytest.mark.parametrize("where", ["bundle", "manifest.json", "arrays.safetensors", "unlisted.bin"])
def test_fifo_is_never_read(knn_bundle, tmp_path, where):
    if where == "bundle":
        target = tmp_path / "fifo.edgebundle"
        os.mkfifo(target)
        expect = "fifo.edgebundle: is a FIFO, not a regular file"
    else:
        target = copy_of(knn_bundle, tmp_path)
        if (target / where).exists():
            (target / where).unlink()
        os.mkfifo(target / where)
        expect = {"manifest.json": "manifest.json: is a FIFO", "arrays.safetensors": "arrays.safetensors: is a FIFO",
                  "unlisted.bin": "unlisted.bin: unexpected file"}[where]
    rc, out = validate_in_subprocess(target, timeout=60)
    assert rc == 3, out
    assert expect in out


def test_device_file_as_bundle_is_refused(tmp_path):
    with pytest.raises(eb.BundleError, match="/dev/zero: is a device, not a regular file"):
        eb.validate_bundle("/dev/zero")


def test_too_many_entries_are_refused(knn_bundle, tmp_path):
    arc = pack(knn_bundle, tmp_path / "many.edgebundle", extra=[(f"e{i}", b"") for i in range(1100)])
    with pytest.raises(eb.BundleError, match="more than 1024 files"):
        eb.validate_bundle(arc)


# ---- numeric fields ---------------------------------------------------------------------------

@pytest.mark.parametrize("path,value,match", [
    (("postprocess", "blur_sigma"), 1e-300, r"postprocess\.blur_sigma: must be a finite float32 number, got 1e-300"),
    (("postprocess", "blur_sigma"), 1e-4, r"postprocess\.blur_sigma: expected 0 \(no blur\) or a number >= 0\.001"),
    (("postprocess", "blur_sigma"), 1e6, r"postprocess\.blur_sigma: sigma: must be below"),
    (("postprocess", "blur_sigma"), -1.0, r"postprocess\.blur_sigma: expected 0 \(no blur\)"),
    (("postprocess", "blur_sigma"), 1e300, r"postprocess\.blur_sigma: must be a finite float32 number"),
    (("postprocess", "k"), 2**40, r"postprocess\.k: integer beyond the 32-bit range"),
    (("postprocess", "reweighting", "num_neighbors"), -2**40, r"postprocess\.reweighting\.num_neighbors: integer beyond"),
    (("input", "std"), [1e-46, 0.2, 0.2], r"input\.std: every entry must be finite and > 0 \(in \[1e-06, 1e\+06\]\), got 1e-46"),
    (("input", "std"), [1e-7, 0.2, 0.2], r"input\.std: every entry must be finite"),
    (("input", "std"), [1e7, 0.2, 0.2], r"input\.std: every entry must be finite"),
    (("input", "scale"), 1e300, r"input\.scale: expected a number in \[1e-09, 1e\+06\], got 1e\+300"),
    (("input", "scale"), 1e-300, r"input\.scale: expected a number in \[1e-09"),
    (("input", "mean"), [1e39, 0.4, 0.4], r"input\.mean: every entry must be a finite number with \|mean\| <= 1e6, got 1e\+39"),
    (("input", "mean"), [0.4, -1e7, 0.4], r"input\.mean: every entry"),
    (("input", "value_range"), [0, 1e39], r"input\.value_range: min and max must be finite float32"),
    (("input", "value_range"), [0, 1e-300], r"input\.value_range: min and max must be finite float32"),
    (("calibration", "threshold"), 1e39, r"calibration\.threshold: must be a finite float32 number"),
    (("calibration", "threshold"), 1e-300, r"calibration\.threshold: must be a finite float32 number"),
    (("calibration", "min"), -1e39, r"calibration\.min: must be a finite float32 number"),
    (("calibration", "max"), 1e-40, r"calibration\.max: must be a finite float32 number"),
])
def test_numeric_fields_refused_at_load(knn_bundle, tmp_path, path, value, match):
    b = copy_of(knn_bundle, tmp_path)

    def edit(m):
        d = m
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value

    edit_manifest(b, edit)
    with pytest.raises(eb.BundleError, match=match):
        eb.validate_bundle(b)


def test_calibration_span_must_be_a_float32(knn_bundle, tmp_path):
    b = copy_of(knn_bundle, tmp_path)
    # distinct doubles, the same float32: (max - min) would be 0 in the runtime
    edit_manifest(b, lambda m: m["calibration"].update(min=1.0, max=1.0 + 1e-12))
    with pytest.raises(eb.BundleError, match=r"calibration\.max: expected finite min < max \(max - min a positive float32\)"):
        eb.validate_bundle(b)


@pytest.mark.parametrize("key,value,match", [
    ("sigma", 1e-300, r"postprocess\.ssim\.sigma: must be a finite float32"),
    ("sigma", 1e-5, r"postprocess\.ssim\.sigma: expected a number in \[0\.001, 1000\]"),
    ("k1", 5.0, r"postprocess\.ssim\.k1: expected a number in \[0, 1\]"),
    ("k2", 0.0, r"postprocess\.ssim\.k2: expected a number in \[1e-06, 1\]"),
    ("data_range", 1e300, r"postprocess\.ssim\.data_range: must be a finite float32"),
    ("data_range", 1e7, r"postprocess\.ssim\.data_range: expected a number in \[1e-06, 1e\+06\]"),
])
def test_ssim_fields_refused_at_load(ssim_bundle, tmp_path, key, value, match):
    b = copy_of(ssim_bundle, tmp_path)
    edit_manifest(b, lambda m: m["postprocess"]["ssim"].__setitem__(key, value))
    with pytest.raises(eb.BundleError, match=match):
        eb.validate_bundle(b)


def test_score_blur_sigma_checked_like_blur_sigma(ssim_bundle, tmp_path):
    b = copy_of(ssim_bundle, tmp_path)
    edit_manifest(b, lambda m: m["postprocess"].__setitem__("score_blur_sigma", 1e-200))
    with pytest.raises(eb.BundleError, match=r"postprocess\.score_blur_sigma: must be a finite float32"):
        eb.validate_bundle(b)


# ---- arrays: non-finite values, k-NN banks ----------------------------------------------------

def knn_arrays(bundle):
    from safetensors.numpy import load

    return dict(load((bundle / "arrays.safetensors").read_bytes()))


@pytest.mark.parametrize("case,match", [
    ("outlier", r'array "bank" \(k-NN memory bank, \d+ x 6\): its largest row norm about the mean \(4\.\d+e\+12\) dwarfs the data.s scale'),
    ("zeros", r'array "bank" \(k-NN memory bank, \d+ x 6\) is degenerate: at least half its rows are the same vector'),
    ("half_duplicates", r'array "bank" .* is degenerate'),
    ("row_9_times", r'array "bank" \(k-NN memory bank, \d+ x 6\): row 5 appears 9 times \(at most 8 copies of a row\)'),
    ("nan", r'array "bank" holds a NaN or infinity \(flat index 7\)'),
    ("inf", r'array "bank" holds a NaN or infinity \(flat index 7\)'),
])
def test_adversarial_knn_banks_refused(knn_bundle, tmp_path, case, match):
    b = copy_of(knn_bundle, tmp_path)
    arrays = knn_arrays(b)
    bank = arrays["bank"].copy()
    if case == "outlier":
        bank[3, 2] = 4.2e12
    elif case == "zeros":
        bank[:] = 0
    elif case == "row_9_times":
        bank[5:14] = bank[5]
    elif case == "half_duplicates":
        bank[: (len(bank) + 1) // 2 + 1] = bank[0]
    else:
        bank.reshape(-1)[7] = np.nan if case == "nan" else np.inf
    arrays["bank"] = bank
    reseal_arrays(b, arrays)
    with pytest.raises(eb.BundleError, match=r"arrays\.safetensors: " + match):
        eb.validate_bundle(b)


def test_normal_and_moderately_spread_banks_load(knn_bundle, tmp_path):
    b = copy_of(knn_bundle, tmp_path)
    arrays = knn_arrays(b)
    eb.validate_bundle(b)
    bank = arrays["bank"].copy()
    bank[0] *= 10  # an outlier ten times the typical norm is ordinary data, not an attack
    bank[20:28] = bank[20]  # 8 copies of a row: within the search's spare candidates
    arrays["bank"] = bank
    reseal_arrays(b, arrays)
    eb.validate_bundle(b)


def test_float16_bank_outlier_refused(tmp_path):
    torch.set_num_threads(1)
    parts = embedding_parts("knn", bank_dtype=np.float16)
    out = export_bundle(parts, tmp_path / "b16", model_type="patchcore").bundle
    arrays = knn_arrays(out)
    bank = arrays["bank"].copy()
    bank[1, 1] = np.float16(60000.0)
    arrays["bank"] = bank
    reseal_arrays(out, arrays)
    with pytest.raises(eb.BundleError, match=r'array "bank" \(k-NN memory bank, \d+ x 6\): its largest row norm'):
        eb.validate_bundle(out)


# ---- UTF-8 in messages ------------------------------------------------------------------------

def test_manifest_with_utf8_bom_loads(knn_bundle, tmp_path):
    b = copy_of(knn_bundle, tmp_path)
    text = (b / "manifest.json").read_bytes()
    (b / "manifest.json").write_bytes(b"\xef\xbb\xbf" + text)
    assert eb.validate_bundle(b) == eb.validate_bundle(knn_bundle)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_manifest_refused_with_advice(knn_bundle, tmp_path, encoding):
    b = copy_of(knn_bundle, tmp_path)
    text = (b / "manifest.json").read_text()
    (b / "manifest.json").write_bytes(text.encode(encoding))
    with pytest.raises(eb.BundleError, match=r"manifest\.json: UTF-16 or UTF-32 text; JSON manifests must be UTF-8 "
                                             r"\(save the file as UTF-8\)"):
        eb.validate_bundle(b)


def test_non_utf8_tar_entry_name_is_named_and_escaped(knn_bundle, tmp_path):
    arc = tmp_path / "names.edgebundle"
    # the bundle's files, then an entry whose name is Latin-1, not UTF-8
    with tarfile.open(arc, "w", format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="surrogateescape") as tar:
        for p in sorted(knn_bundle.iterdir()):
            tar.add(p, arcname=p.name)
        info = tarfile.TarInfo("caf\udce9\udcff.bin")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(eb.BundleError) as e:
        eb.validate_bundle(arc)
    assert "names.edgebundle/caf\\xE9\\xFF.bin: unexpected file" in str(e.value)


def test_invalid_bytes_in_manifest_give_a_valid_message(knn_bundle, tmp_path):
    b = copy_of(knn_bundle, tmp_path)
    (b / "manifest.json").write_bytes(b"\xff\xfe\xfd{}")  # not a BOM of UTF-16: 0xFF 0xFE 0xFD
    with pytest.raises(eb.BundleError, match=r"manifest\.json: UTF-16"):
        eb.validate_bundle(b)
    (b / "manifest.json").write_bytes(b"\xc3(\x1b[2J{}")
    with pytest.raises(eb.BundleError) as e:
        eb.validate_bundle(b)
    assert "manifest.json:1:1: unexpected character '\\xC3'" in str(e.value)
    m = (knn_bundle / "manifest.json").read_bytes().replace(b'"patchcore"', b'"patch\xe9core"')
    (b / "manifest.json").write_bytes(m)
    with pytest.raises(eb.BundleError, match=r"manifest\.json:\d+:\d+: invalid UTF-8"):
        eb.validate_bundle(b)


def test_utf8_sanitize_helper():
    # the one helper every BundleError goes through (edge::utf8_sanitize), fed through a path
    cases = {b"ok": "ok", b"\xe2\x82\xac": "\u20ac", b"\xe2\x82": "\\xE2\\x82", b"\xed\xa0\x80": "\\xED\\xA0\\x80",
             b"\xc0\xaf": "\\xC0\\xAF", b"\x1b[31m": "\\x1B[31m", b"\xf4\x90\x80\x80": "\\xF4\\x90\\x80\\x80"}
    for raw, shown in cases.items():
        with pytest.raises(eb.BundleError) as e:
            eb.validate_bundle(b"/nonexistent/" + raw)
        assert str(e.value) == f"/nonexistent/{shown}: no such bundle (directory or archive)"
