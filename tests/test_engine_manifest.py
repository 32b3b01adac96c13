"""Engine manifests: the matching rules (cases shared with the C++ backend's test), validation of
bad manifests, and selecting an engine of a bundle."""

import copy
import json
from pathlib import Path

import pytest

from edge_sdk.atomic import sha256_file, write_json

from edge_sdk.converters import engine_bundle as eb
from edge_sdk.converters import engine_manifest as em

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


def _bundle(tmp_path, precisions=("fp32", "fp16"), seed=0):
    """A real bundle (tests/bundle_helpers.ssim_parts) whose extra precision entries reuse the fp32
    graph: engine selection only reads the entries and the checksums."""
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import onnx

    from edge_sdk.converters import export_bundle
    from edge_sdk.bundle import add_networks, read_bundle
    from tests.bundle_helpers import ssim_parts

    b = export_bundle(ssim_parts(seed=seed), tmp_path / "bundle", model_type="resganad", overwrite=True).bundle
    fp32 = read_bundle(b)
    entry = fp32.network("reconstructor")
    extra = {}
    for p in precisions:
        if p != "fp32":
            extra[f"reconstructor.{p}.onnx"] = ({**entry, "precision": p, "file": f"reconstructor.{p}.onnx"},
                                                onnx.load_from_string(fp32.networks[entry["file"]]))
    if extra:
        add_networks(b, extra)
    return b


def _engine(bundle, precision, machine_overrides=None, name="sm86"):
    folder = bundle / "engines"
    folder.mkdir(exist_ok=True)
    engine = folder / f"reconstructor.{precision}.{name}.engine"
    engine.write_bytes(b"serialized " + name.encode())
    m = copy.deepcopy(CASES["manifest"])
    src = "reconstructor.onnx" if precision == "fp32" else f"reconstructor.{precision}.onnx"
    m.update(network="reconstructor", precision=precision, source_onnx=src, source_onnx_sha256=sha256_file(bundle / src),
             engine_file=engine.name, engine_sha256=sha256_file(engine))
    m.update(machine_overrides or {})
    write_json(em.manifest_path(engine), m)
    return engine


A4500 = em.MachineInfo(tensorrt_version="10.14.1.48", cuda_driver_version="12.9", driver_version="575.57.08",
                       gpu_name="NVIDIA RTX A4500", compute_capability=(8, 6))


def test_find_engine_picks_the_matching_one(tmp_path):
    b = _bundle(tmp_path)
    _engine(b, "fp16", {"gpu": {"name": "NVIDIA H100 80GB HBM3", "compute_capability": [9, 0]}}, name="sm90")
    good = _engine(b, "fp16")
    assert eb.find_engine(b, "reconstructor", "fp16", A4500, max_batch=60) == good
    assert eb.network_files(b, "fp16") == [("reconstructor", b / "reconstructor.fp16.onnx")]


def test_find_engine_refuses_with_reasons(tmp_path):
    b = _bundle(tmp_path)
    _engine(b, "fp16", {"tensorrt_version": "10.13.0.35"})
    with pytest.raises(eb.EngineSelectionError, match=r"(?s)tensorrt_version.*10\.13\.0\.35.*build-engine"):
        eb.find_engine(b, "reconstructor", "fp16", A4500, max_batch=8)
    # The bundle was re-exported (other weights) after the engine was built.
    b2 = _bundle(tmp_path / "two")
    _engine(b2, "fp16")
    import shutil

    shutil.copytree(b2 / "engines", tmp_path / "kept")  # a re-export replaces the whole directory
    _bundle(tmp_path / "two", seed=1)
    shutil.copytree(tmp_path / "kept", b2 / "engines")
    with pytest.raises(eb.EngineSelectionError, match="source_onnx_sha256"):
        eb.find_engine(b2, "reconstructor", "fp16", A4500, max_batch=8)
    # A corrupt engine file.
    b3 = _bundle(tmp_path / "three")
    e = _engine(b3, "fp16")
    e.write_bytes(b"truncated")
    with pytest.raises(eb.EngineSelectionError, match="engine_sha256"):
        eb.find_engine(b3, "reconstructor", "fp16", A4500, max_batch=8)


def test_missing_variant_and_missing_engine_are_clear_errors(tmp_path):
    b = _bundle(tmp_path, ("fp32", "fp16"))
    with pytest.raises(ValueError, match=r"no int8 variant.*fp16, fp32.*accuracy gate"):
        eb.network_files(b, "int8")
    with pytest.raises(eb.EngineSelectionError, match="no fp16 engine.*build-engine"):
        eb.find_engine(b, "reconstructor", "fp16", A4500, max_batch=8)


def test_rebuild_without_tensorrt_says_so(tmp_path):
    from edge_sdk.converters import trt_builder as tb

    try:
        tb.require_tensorrt()
        pytest.skip("TensorRT is installed here; benchmarks/gpu_check exercises rebuilding")
    except tb.TensorRTUnavailable:
        pass
    b = _bundle(tmp_path)
    with pytest.raises(tb.TensorRTUnavailable, match="TensorRT"):
        eb.find_engine(b, "reconstructor", "fp16", A4500, max_batch=8, rebuild=True)


def test_gpu_facts_agree_with_what_the_runtime_found():
    # one reader of GPU facts (edge_sdk.gpu_info, the driver through ctypes); on a GPU machine its
    # devices are the ones the C++ runtime lists, with the same names, capabilities and memory
    import edge_sdk
    from edge_sdk import gpu_info

    facts = [(g.name, g.compute_capability, g.total_memory) for g in gpu_info.gpus()]
    if edge_sdk.built_with_cuda():
        seen = [(d["name"], tuple(d["compute_capability"]), d["total_memory"])
                for d in edge_sdk.devices() if d["kind"] == "cuda"]
        assert facts == seen
    machine = em.machine_info(0)
    if facts:
        assert (machine.gpu_name, machine.compute_capability) == facts[0][:2]
        assert machine.cuda_driver_version is not None
    else:
        assert machine.gpu_name is None and machine.compute_capability is None
