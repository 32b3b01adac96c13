"""Bundle writer, validator (the C++ one, through Python), reader, archive, and the converter.

Every bad bundle must give a BundleError naming the file or the field; a failed write must leave
any previous bundle untouched and nothing half-written."""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

import edge_sdk
from edge_sdk import bundle as eb
from edge_sdk._native import core
from edge_sdk.converters import ExportError, export_bundle, export_onnx

from tests.bundle_helpers import tiny_parts


@pytest.fixture(scope="module")
def good_bundle(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("b") / "bundle"
    report = export_bundle(tiny_parts(), out, model_type="patchcore", model_name="tiny")
    return out, report


def fresh_copy(good_bundle, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(good_bundle[0], dst)
    return dst


def rewrite_manifest(path, edit):
    m = json.loads((path / "manifest.json").read_text())
    edit(m)
    (path / "manifest.json").write_text(json.dumps(m))


def replace_file(path, name, data):
    """Replaces a file and updates its checksum, so only the content itself is wrong."""
    (path / name).write_bytes(data)
    rewrite_manifest(path, lambda m: m["files"].__setitem__(
        name, {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}))


def test_export_writes_valid_self_describing_bundle(good_bundle):
    out, report = good_bundle
    assert report.passed and report.bundle == out
    assert sorted(p.name for p in out.iterdir()) == ["arrays.safetensors", "backbone.onnx", "manifest.json"]
    m = eb.validate_bundle(out)
    assert m["schema_version"] == 1 and m["format"] == "edge-sdk-bundle"
    assert m["sdk_version"] == edge_sdk.__version__
    assert m["model"] == {"type": "patchcore", "name": "tiny"}
    assert m["input"]["height"] == 32 and m["input"]["width"] == 40 and m["input"]["channels"] == 3
    assert m["input"]["color_order"] == "RGB" and m["input"]["resize"] == "bilinear"
    assert m["networks"][0]["outputs"][0] == {"name": "features", "shape": [-1, 8, 8, 10], "dtype": "float32",
                                              "meaning": "backbone output"}
    assert m["arrays"]["tensors"]["memory_bank"] == {"dtype": "float32", "shape": [50, 8]}
    assert m["arrays"]["tensors"]["ids"] == {"dtype": "int64", "shape": [5]}
    for name, entry in m["files"].items():
        data = (out / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    # the ONNX file carries the manifest (all but the checksums) in its metadata_props
    model = onnx.load(str(out / "backbone.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    embedded = json.loads(meta["edge_sdk.manifest"])
    assert embedded == {k: v for k, v in m.items() if k != "files"}
    assert meta["edge_sdk.schema_version"] == "1" and meta["edge_sdk.network"] == "backbone/fp32"
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 17


def test_parity_report_random_and_real(tmp_path, rng):
    parts = tiny_parts()
    real = rng.standard_normal((3, 3, 32, 40)).astype(np.float32)  # already preprocessed
    report = export_bundle(parts, tmp_path / "b", model_type="patchcore", real_images=real)
    kinds = sorted(p.inputs for p in report.parity)
    assert kinds == ["random", "real"]
    for p in report.parity:
        assert p.count == (3 if p.inputs == "real" else 4)
        assert 0 <= p.max_abs_diff < 1e-4 * p.max_abs_ref and p.passed
    print(report)


def test_dynamic_batch_runs_in_onnxruntime(good_bundle, rng):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(good_bundle[0] / "backbone.onnx"), providers=["CPUExecutionProvider"])
    net = tiny_parts().networks["backbone"][0]
    for n in (1, 5):
        x = rng.standard_normal((n, 3, 32, 40)).astype(np.float32)
        (y,) = sess.run(["features"], {"image": x})
        np.testing.assert_allclose(y, net(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_converter_refuses_graph_outside_tolerance(tmp_path):
    class Drifting(torch.nn.Module):
        """Its output changes from call to call, so the traced graph cannot match it."""

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            return self.conv(x) * float(self.calls)

    parts = tiny_parts()
    parts.networks = {"backbone": (Drifting(), ["image"], ["features"])}
    with pytest.raises(ExportError, match=r"backbone\.features on 4 random .*REFUSED"):
        export_bundle(parts, tmp_path / "b", model_type="patchcore")
    assert not (tmp_path / "b").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary left behind


def test_export_rejects_old_opset():
    with pytest.raises(ExportError, match="opset"):
        export_onnx(torch.nn.Identity(), [torch.zeros(1, 3, 4, 4)], ["image"], ["features"], opset=13)


def test_cpp_onnx_reader_agrees_with_onnx_package(good_bundle):
    data = (good_bundle[0] / "backbone.onnx").read_bytes()
    info = core.onnx_info(data, "backbone.onnx")
    model = onnx.load_from_string(data)
    inits = {i.name for i in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in inits]
    assert [i["name"] for i in info["inputs"]] == [i.name for i in graph_inputs]
    assert [o["name"] for o in info["outputs"]] == [o.name for o in model.graph.output]
    for mine, ref in zip(info["inputs"] + info["outputs"], graph_inputs + list(model.graph.output)):
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in ref.type.tensor_type.shape.dim]
        assert mine["dims"] == dims and mine["elem_type"] == ref.type.tensor_type.elem_type
    assert info["metadata"] == {p.key: p.value for p in model.metadata_props}
    assert info["opsets"][""] == model.opset_import[0].version
    assert info["node_count"] == len(model.graph.node)
    assert info["ir_version"] == model.ir_version


def test_read_bundle_returns_arrays(good_bundle):
    b = eb.read_bundle(good_bundle[0])
    parts = tiny_parts()
    np.testing.assert_array_equal(b.arrays["memory_bank"], parts.arrays["memory_bank"])
    assert b.arrays["ids"].dtype == np.int64
    assert b.network()["file"] == "backbone.onnx"
    assert b.network_bytes() == (good_bundle[0] / "backbone.onnx").read_bytes()
    with pytest.raises(eb.BundleError, match="precision 'fp16'"):
        b.network(precision="fp16")


def test_archive_round_trip(good_bundle, tmp_path):
    arc = eb.pack_bundle(good_bundle[0], tmp_path / "model.edgebundle")
    assert eb.validate_bundle(arc) == eb.validate_bundle(good_bundle[0])
    b = eb.read_bundle(arc)
    np.testing.assert_array_equal(b.arrays["memory_bank"], tiny_parts().arrays["memory_bank"])
    # a flipped byte inside the archive is caught by the checksum or the tar header check
    data = bytearray(arc.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.edgebundle"
    bad.write_bytes(bytes(data))
    with pytest.raises(eb.BundleError, match="bad.edgebundle"):
        eb.validate_bundle(bad)
    with pytest.raises(eb.BundleError, match="truncated tar"):
        trunc = tmp_path / "trunc.edgebundle"
        trunc.write_bytes(bytes(arc.read_bytes()[:2048]))
        eb.validate_bundle(trunc)


# ---- bad bundles: each error names the file or field --------------------------------------------

def test_missing_file(good_bundle, tmp_path):
    b = fresh_copy(good_bundle, tmp_path)
    (b / "arrays.safetensors").unlink()
    with pytest.raises(eb.BundleError, match=r"arrays\.safetensors: missing"):
        eb.validate_bundle(b)


def test_missing_manifest(good_bundle, tmp_path):
    b = fresh_copy(good_bundle, tmp_path)
    (b / "manifest.json").unlink()
    with pytest.raises(eb.BundleError, match=r"manifest\.json: missing"):
        eb.validate_bundle(b)


def test_extra_file(good_bundle, tmp_path):
    b = fresh_copy(good_bundle, tmp_path)
    (b / "model.pt").write_bytes(b"\x80\x04")
    with pytest.raises(eb.BundleError, match=r"model\.pt: unexpected file"):
        eb.validate_bundle(b)


def test_wrong_checksum(good_bundle, tmp_path):
    b = fresh_copy(good_bundle, tmp_path)
    data = bytearray((b / "arrays.safetensors").read_bytes())
    data[-1] ^= 0x01
    (b / "arrays.safetensors").write_bytes(bytes(data))
    with pytest.raises(eb.BundleError, match=r"arrays\.safetensors: sha256 [0-9a-f]{64} does not match"):
        eb.validate_bundle(b)


def test_truncated_file(good_bundle, tmp_path):
    b = fresh_copy(good_bundle, tmp_path)
    data = (b / "backbone.onnx").read_bytes()
    (b / "backbone.onnx").write_bytes(data[:-10])
    with pytest.raises(eb.BundleError, match=r"backbone\.onnx: \d+ bytes, manifest.json says"):
        eb.validate_bundle(b)


def test_unknown_schema_version(good_bundle, tmp_path):
    b = fresh_copy(good_bundle, tmp_path)
    rewrite_manifest(b, lambda m: m.__setitem__("schema_version", 2))
    with pytest.raises(eb.BundleError, match=r"schema_version: version 2 is not supported"):
        eb.validate_bundle(b)


@pytest.mark.parametrize("path,value,match", [
    (("input", "channels"), 4, r"input\.channels: expected an integer in \[1, 3\]"),
    (("input", "std"), [0.2, 0.0, 0.2], r"input\.std: every entry must be finite and > 0"),
    (("input", "resize"), "nearest", r"input\.resize: expected one of \"bilinear\""),
    (("input", "on_size_mismatch"), "crop", r"input\.on_size_mismatch"),
    (("calibration", "max"), 0.1, r"calibration\.max: expected finite min < max"),
    (("networks",), [], r"networks: must list at least one network"),
    (("postprocess", "kind"), 3, r"postprocess\.kind: expected a string"),
    (("format",), "zip", r"format: expected \"edge-sdk-bundle\""),
])
def test_bad_manifest_fields(good_bundle, tmp_path, path, value, match):
    b = fresh_copy(good_bundle, tmp_path)

    def edit(m):
        d = m
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value

    rewrite_manifest(b, edit)
    with pytest.raises(eb.BundleError, match=match):
        eb.validate_bundle(b)


def test_manifest_contradicting_onnx(good_bundle, tmp_path):
    # The manifest declares an output the graph does not have.
    b = fresh_copy(good_bundle, tmp_path)
    rewrite_manifest(b, lambda m: m["networks"][0]["outputs"][0].__setitem__("name", "feats"))
    with pytest.raises(eb.BundleError, match=r"backbone\.onnx: manifest output \"feats\" is not in the ONNX graph"):
        eb.validate_bundle(b)
    # The manifest declares a different feature shape.
    b2 = tmp_path / "b2"
    shutil.copytree(good_bundle[0], b2)
    rewrite_manifest(b2, lambda m: m["networks"][0]["outputs"][0].__setitem__("shape", [-1, 8, 9, 10]))
    with pytest.raises(eb.BundleError, match=r"output \"features\" has shape \[-1, 8, 8, 10\] in the ONNX graph"):
        eb.validate_bundle(b2)
    # A valid ONNX file of another model (other input size) in place of the right one.
    b3 = tmp_path / "b3"
    other = export_bundle(tiny_parts(size=(64, 64)), tmp_path / "other", model_type="patchcore").bundle
    shutil.copytree(good_bundle[0], b3)
    replace_file(b3, "backbone.onnx", (other / "backbone.onnx").read_bytes())
    with pytest.raises(eb.BundleError, match=r"backbone\.onnx: input \"image\" has shape"):
        eb.validate_bundle(b3)
    # Same graph, metadata of another manifest (threshold changed in manifest.json only).
    b4 = tmp_path / "b4"
    shutil.copytree(good_bundle[0], b4)
    rewrite_manifest(b4, lambda m: m["calibration"].__setitem__("threshold", 9.0))
    with pytest.raises(eb.BundleError, match=r"metadata_props edge_sdk.manifest contradicts manifest.json "
                                             r"\(field \"calibration\" differs\)"):
        eb.validate_bundle(b4)


def test_arrays_contradicting_manifest(good_bundle, tmp_path):
    from safetensors.numpy import save

    b = fresh_copy(good_bundle, tmp_path)
    replace_file(b, "arrays.safetensors", save({"memory_bank": np.zeros((49, 8), np.float32),
                                                "ids": np.arange(5, dtype=np.int64)}))
    with pytest.raises(eb.BundleError, match=r"array \"memory_bank\" is float32 \[49, 8\], manifest.json "
                                             r"arrays.tensors says float32 \[50, 8\]"):
        eb.validate_bundle(b)


def test_corrupt_onnx(good_bundle, tmp_path):
    b = fresh_copy(good_bundle, tmp_path)
    data = (b / "backbone.onnx").read_bytes()
    replace_file(b, "backbone.onnx", data[: len(data) // 3])
    with pytest.raises(eb.BundleError, match=r"backbone\.onnx: not a valid ONNX model"):
        eb.validate_bundle(b)
    replace_file(b, "backbone.onnx", b"\x00" * 100)
    with pytest.raises(eb.BundleError, match=r"backbone\.onnx: not a valid ONNX model"):
        eb.validate_bundle(b)


def test_corrupt_manifest_json(good_bundle, tmp_path):
    b = fresh_copy(good_bundle, tmp_path)
    (b / "manifest.json").write_text('{"schema_version": 1,\n "format": }')
    with pytest.raises(eb.BundleError, match=r"manifest\.json:2:12: unexpected character"):
        eb.validate_bundle(b)


def test_not_a_bundle(tmp_path):
    with pytest.raises(eb.BundleError, match="no such bundle"):
        eb.validate_bundle(tmp_path / "nothing")


# ---- atomic writes ------------------------------------------------------------------------------

def test_failed_overwrite_keeps_previous_bundle(good_bundle, tmp_path):
    out = tmp_path / "bundle"
    shutil.copytree(good_bundle[0], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    parts = tiny_parts()
    # A manifest the validator refuses (network input shape contradicts the input spec).
    m = eb.build_manifest(model_type="patchcore", input=eb.input_spec(dict(parts.preprocess, height=64)),
                          networks=json.loads((out / "manifest.json").read_text())["networks"],
                          arrays=parts.arrays, postprocess=parts.postprocess, calibration=parts.calibration)
    with pytest.raises(eb.BundleError, match="does not match input"):
        eb.write_bundle(out, m, {"backbone.onnx": (out / "backbone.onnx").read_bytes()}, parts.arrays,
                        overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no temporary left behind


def test_overwrite_replaces_and_refuses_without_flag(good_bundle, tmp_path):
    out = tmp_path / "bundle"
    shutil.copytree(good_bundle[0], out)
    with pytest.raises(eb.BundleError, match="exists"):
        export_bundle(tiny_parts(), out, model_type="patchcore")
    report = export_bundle(tiny_parts(seed=1), out, model_type="patchcore", overwrite=True)
    assert eb.validate_bundle(out)["files"] != eb.validate_bundle(good_bundle[0])["files"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
    assert report.passed


def test_builder_refuses_bad_values():
    parts = tiny_parts()
    with pytest.raises(eb.BundleError, match=r"postprocess\.kind"):
        eb.build_manifest(model_type="x", input=eb.input_spec(parts.preprocess), networks=[], arrays={},
                          postprocess={"kind": "magic"}, calibration=parts.calibration)
    with pytest.raises(eb.BundleError, match=r"calibration\.threshold: expected a finite number"):
        eb.build_manifest(model_type="x", input=eb.input_spec(parts.preprocess), networks=[], arrays={},
                          postprocess=parts.postprocess, calibration=dict(parts.calibration, threshold=float("nan")))
    with pytest.raises(eb.BundleError, match=r"arrays\.bad: dtype float64"):
        eb.build_manifest(model_type="x", input=eb.input_spec(parts.preprocess), networks=[],
                          arrays={"bad": np.zeros(3)}, postprocess=parts.postprocess, calibration=parts.calibration)


def test_add_networks_keeps_every_file_self_describing(good_bundle, tmp_path):
    b = fresh_copy(good_bundle, tmp_path)
    m = eb.validate_bundle(b)
    fp32 = m["networks"][0]
    variant = dict(fp32, precision="fp16", file="backbone.fp16.onnx")
    model = onnx.load(str(b / "backbone.onnx"))
    model.metadata_props.add(key="edge_sdk.precision", value="fp16")  # a key of the variant's own, kept
    eb.add_networks(b, {"backbone.fp16.onnx": (variant, model)})
    m2 = eb.validate_bundle(b)
    assert [(n["name"], n["precision"]) for n in m2["networks"]] == [("backbone", "fp32"), ("backbone", "fp16")]
    for f in ("backbone.onnx", "backbone.fp16.onnx"):
        meta = {p.key: p.value for p in onnx.load(str(b / f)).metadata_props}
        assert json.loads(meta["edge_sdk.manifest"])["networks"] == m2["networks"]
    meta16 = {p.key: p.value for p in onnx.load(str(b / "backbone.fp16.onnx")).metadata_props}
    assert meta16["edge_sdk.precision"] == "fp16" and meta16["edge_sdk.network"] == "backbone/fp16"
    # a variant file copied in by hand, without the writer, is refused (its metadata is stale)
    c = tmp_path / "c"
    shutil.copytree(good_bundle[0], c)
    data = (b / "backbone.fp16.onnx").read_bytes()
    rewrite_manifest(c, lambda mm: mm["networks"].append(variant))
    replace_file(c, "backbone.fp16.onnx", data)
    with pytest.raises(eb.BundleError, match="contradicts manifest.json"):
        eb.validate_bundle(c)


def test_overwrite_never_replaces_a_directory_that_is_not_a_bundle(tmp_path):
    from edge_sdk.bundle import BundleError

    foreign = tmp_path / "site"
    foreign.mkdir()
    (foreign / "manifest.json").write_text(json.dumps({"format": "web-app", "schema_version": 1}))
    (foreign / "precious.txt").write_text("keep")
    with pytest.raises(BundleError, match=f"{foreign}: exists and is not an edge-sdk bundle"):
        export_bundle(tiny_parts(), foreign, model_type="tiny", overwrite=True)
    assert sorted(os.listdir(foreign)) == ["manifest.json", "precious.txt"]
    assert sorted(os.listdir(tmp_path)) == ["site"]
    # a bundle is replaced
    b = tmp_path / "b"
    export_bundle(tiny_parts(seed=0), b, model_type="tiny")
    export_bundle(tiny_parts(seed=1), b, model_type="tiny", overwrite=True)
    assert eb.validate_bundle(b)["model"]["type"] == "tiny" and sorted(os.listdir(tmp_path)) == ["b", "site"]


def test_python_reader_strips_a_folder_prefix_as_the_cpp_reader_does(tmp_path):
    import tarfile

    from edge_sdk.bundle.reader import archive_members

    from tests.bundle_helpers import ssim_parts

    b = tmp_path / "bundle"
    export_bundle(ssim_parts(), b, model_type="resganad")  # a bundle the runtime runs
    (b / "engines").mkdir()
    (b / "engines" / "x.engine").write_bytes(b"ignored by both readers")
    ref = eb.read_bundle(b)
    for arcname in ("bundle", "./bundle", "."):
        archive = tmp_path / f"{arcname.strip('./') or 'dot'}.tar"
        with tarfile.open(archive, "w", format=tarfile.USTAR_FORMAT) as tar:
            tar.add(b, arcname=arcname)  # as `tar -cf b.tar bundle`: a directory entry, then bundle/...
        names = [m.name for m in tarfile.open(archive).getmembers()]
        assert any(n.endswith("manifest.json") and "/" in n for n in names) or arcname == "."
        got = eb.read_bundle(archive)
        assert got.manifest == ref.manifest and got.networks == ref.networks
        assert sorted(got.arrays) == sorted(ref.arrays)
        # the C++ runtime reads the same archive
        assert edge_sdk.Runtime(archive, threads=1).manifest["files"] == ref.manifest["files"]
    # a file below the top level after the prefix, or a link, is refused (as in C++), naming the entry
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w", format=tarfile.USTAR_FORMAT) as tar:
        tar.add(b, arcname="bundle")
        tar.add(b / "manifest.json", arcname="bundle/sub/manifest.json")
    with tarfile.open(bad) as tar, pytest.raises(eb.BundleError, match='unexpected entry "sub/manifest.json"'):
        archive_members(tar, bad)
    link = tmp_path / "link.tar"
    with tarfile.open(link, "w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("manifest.json")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with tarfile.open(link) as tar, pytest.raises(eb.BundleError, match="unsupported tar entry type '2'"):
        archive_members(tar, link)


def test_pack_replaces_only_a_bundle_archive(tmp_path):
    b = tmp_path / "b"
    export_bundle(tiny_parts(), b, model_type="tiny")
    archive = eb.pack_bundle(b, tmp_path / "b.tar")
    eb.pack_bundle(b, archive, overwrite=True)  # a bundle archive: replaced
    notes = tmp_path / "notes.tar"
    notes.write_text("my notes")
    with pytest.raises(eb.BundleError, match=f"{notes}: exists and is not an edge-sdk bundle archive"):
        eb.pack_bundle(b, notes, overwrite=True)
    assert notes.read_text() == "my notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "b.tar", "notes.tar"]
