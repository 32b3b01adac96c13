"""Engine manifests: the matching rules (cases shared with the C++ backend's test), validation of
bad manifests, and selecting an engine of a bundle."""

import copy
import json
from pathlib import Path

import pytest

from converters import engine_bundle as eb
from converters import engine_manifest as em

CASES = json.loads((Path(__file__).parent / "data" / "engine_manifest_cases.json").read_text())


def _machine(d):
    cc = d.get("compute_capability")
    return em.MachineInfo(tensorrt_version=d.get("tensorrt_version"), cuda_driver_version=d.get("cuda_driver_version"),
                          driver_version=d.get("driver_version"), gpu_name=d.get("gpu_name"),
                          compute_capability=tuple(cc) if cc else None)


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["name"] for c in CASES["cases"]])
def test_shared_matching_cases(case):
    manifest = em.validate_manifest(copy.deepcopy(CASES["manifest"]))
    r = em.engine_differences(manifest, _machine(case["machine"]), em.Expected(**case["expected"]))
    assert [d.field for d in r.differences] == case["differences"]
    assert len(r.notes) == case["notes"]
    assert r.ok == (not case["differences"])
    if not r.ok:
        msg = r.message("x.engine")
        assert all(d.field in msg and d.message in msg for d in r.differences)


def test_messages_say_what_differs():
    m = em.validate_manifest(copy.deepcopy(CASES["manifest"]))
    r = em.engine_differences(m, em.MachineInfo(tensorrt_version="10.13.0.35", compute_capability=(9, 0)), em.Expected())
    text = r.message("backbone.fp16.sm86.engine")
    assert "10.14.1.48" in text and "10.13.0.35" in text and "sm 8.6" in text and "sm 9.0" in text


@pytest.mark.parametrize("mutate,field", [
    (lambda m: m.pop("tensorrt_version"), "tensorrt_version"),
    (lambda m: m.update(schema_version=2), "schema_version"),
    (lambda m: m.update(schema="other"), "schema"),
    (lambda m: m.update(precision=16), "precision"),
    (lambda m: m.update(gpu={"name": "x"}), "gpu"),
    (lambda m: m.update(profiles=[{"input": {"min": [1, 3, 8, 8]}}]), "profiles"),
])
def test_bad_manifest_names_the_field(mutate, field):
    m = copy.deepcopy(CASES["manifest"])
    mutate(m)
    with pytest.raises(em.EngineManifestError, match=field):
        em.validate_manifest(m, "e.engine.json")


def test_read_manifest_errors(tmp_path):
    engine = tmp_path / "a.engine"
    with pytest.raises(em.EngineManifestError, match="a.engine.json.*not found"):
        em.read_manifest(engine)
    em.manifest_path(engine).write_text("{ not json")
    with pytest.raises(em.EngineManifestError, match="a.engine.json.*JSON"):
        em.read_manifest(engine)


def _bundle(tmp_path, precisions=("fp32", "fp16")):
    """A bundle directory as far as engine selection reads it: manifest networks + file checksums."""
    b = tmp_path / "bundle"
    b.mkdir(parents=True)
    nets, files = [], {}
    for p in precisions:
        f = f"backbone.{p}.onnx" if p != "fp32" else "backbone.onnx"
        (b / f).write_bytes(f"onnx bytes {p}".encode())
        nets.append({"name": "backbone", "precision": p, "file": f})
        files[f] = {"sha256": em.sha256_file(b / f)}
    (b / "manifest.json").write_text(json.dumps({"schema_version": 1, "networks": nets, "files": files}))
    return b


def _engine(bundle, precision, machine_overrides=None, name="sm86"):
    folder = bundle / "engines"
    folder.mkdir(exist_ok=True)
    engine = folder / f"backbone.{precision}.{name}.engine"
    engine.write_bytes(b"serialized " + name.encode())
    m = copy.deepcopy(CASES["manifest"])
    src = "backbone.onnx" if precision == "fp32" else f"backbone.{precision}.onnx"
    m.update(precision=precision, source_onnx=src, source_onnx_sha256=em.sha256_file(bundle / src),
             engine_file=engine.name, engine_sha256=em.sha256_file(engine))
    m.update(machine_overrides or {})
    em.write_json_atomic(em.manifest_path(engine), m)
    return engine


A4500 = em.MachineInfo(tensorrt_version="10.14.1.48", cuda_driver_version="12.9", driver_version="575.57.08",
                       gpu_name="NVIDIA RTX A4500", compute_capability=(8, 6))


def test_find_engine_picks_the_matching_one(tmp_path):
    b = _bundle(tmp_path)
    _engine(b, "fp16", {"gpu": {"name": "NVIDIA H100 80GB HBM3", "compute_capability": [9, 0]}}, name="sm90")
    good = _engine(b, "fp16")
    assert eb.find_engine(b, "backbone", "fp16", A4500, max_batch=60) == good
    assert eb.network_files(b, "fp16") == [("backbone", b / "backbone.fp16.onnx")]


def test_find_engine_refuses_with_reasons(tmp_path):
    b = _bundle(tmp_path)
    _engine(b, "fp16", {"tensorrt_version": "10.13.0.35"})
    with pytest.raises(eb.EngineSelectionError, match=r"(?s)tensorrt_version.*10\.13\.0\.35.*build-engine"):
        eb.find_engine(b, "backbone", "fp16", A4500, max_batch=8)
    # The bundle's ONNX changed after the engine was built.
    b2 = _bundle(tmp_path / "two")
    _engine(b2, "fp16")
    (b2 / "backbone.fp16.onnx").write_bytes(b"re-exported")
    doc = json.loads((b2 / "manifest.json").read_text())
    doc["files"]["backbone.fp16.onnx"]["sha256"] = em.sha256_file(b2 / "backbone.fp16.onnx")
    (b2 / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(eb.EngineSelectionError, match="source_onnx_sha256"):
        eb.find_engine(b2, "backbone", "fp16", A4500, max_batch=8)
    # A corrupt engine file.
    b3 = _bundle(tmp_path / "three")
    e = _engine(b3, "fp16")
    e.write_bytes(b"truncated")
    with pytest.raises(eb.EngineSelectionError, match="engine_sha256"):
        eb.find_engine(b3, "backbone", "fp16", A4500, max_batch=8)


def test_missing_variant_and_missing_engine_are_clear_errors(tmp_path):
    b = _bundle(tmp_path, ("fp32", "fp16"))
    with pytest.raises(ValueError, match=r"no int8 variant.*fp16, fp32.*accuracy gate"):
        eb.network_files(b, "int8")
    with pytest.raises(eb.EngineSelectionError, match="no fp16 engine.*build-engine"):
        eb.find_engine(b, "backbone", "fp16", A4500, max_batch=8)


def test_rebuild_without_tensorrt_says_so(tmp_path):
    from converters import trt_builder as tb

    try:
        tb.require_tensorrt()
        pytest.skip("TensorRT is installed here; benchmarks/gpu_check exercises rebuilding")
    except tb.TensorRTUnavailable:
        pass
    b = _bundle(tmp_path)
    with pytest.raises(tb.TensorRTUnavailable, match="TensorRT"):
        eb.find_engine(b, "backbone", "fp16", A4500, max_batch=8, rebuild=True)
