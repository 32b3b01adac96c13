"""The OpenVINO backend (edge_sdk.Runtime(bundle, backend="openvino")): OpenVINO's C API library,
loaded from the installed openvino wheel, runs the bundle's ONNX networks inside the same pipeline
as ONNX Runtime.

Parity: on every post-processing kind's fixture bundle (tests/data/gpu_fixtures/, whose stored
outputs are ONNX Runtime's on the CPU) the scores equal ONNX Runtime's to 1e-4 relative with
identical verdicts, over several chunk compositions and thread counts; PaDiM and PatchCore trained
here score as their PyTorch models do (the converter's verify tolerances), also through
`edge-sdk verify --backend openvino`; fp16 variants agree with ONNX Runtime's fp16 run to fp16's
rounding. backend="auto" times both libraries and says which it kept. Errors: a missing library,
a device OpenVINO does not have, a CUDA device for the pipeline."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from edge_sdk._native import core

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "data" / "gpu_fixtures"
INDEX = json.loads((FIXTURES / "index.json").read_text())

pytestmark = pytest.mark.onnxruntime

if "openvino" not in core.available_backends():
    pytest.skip("no OpenVINO backend in this build (configured with EDGE_SDK_OPENVINO=OFF)", allow_module_level=True)
if not edge_sdk.runtime.find_openvino_library():
    pytest.skip("openvino wheel not installed (pip install openvino; requirements/dev.txt)", allow_module_level=True)


def _fixture(name):
    entry = INDEX[name]
    data = np.load(FIXTURES / entry["data"])
    return FIXTURES / entry["bundle"], [data[f"image_{i}"] for i in range(entry["images"])], data


def _assert_same(res, ref, rtol, n, heat_atol, score_atol=1e-6):
    np.testing.assert_allclose(res.scores, ref["scores"], rtol=rtol, atol=score_atol)
    np.testing.assert_allclose(res.normalized, ref["normalized"], rtol=rtol, atol=score_atol)
    np.testing.assert_array_equal(res.verdict_codes, ref["verdict_codes"])
    for i in range(n):
        np.testing.assert_allclose(np.asarray(res.heatmaps[i]), ref[f"heatmap_{i}"], rtol=rtol, atol=heat_atol,
                                   err_msg=f"heatmap {i}")


def _stored(res):
    return {"scores": res.scores, "normalized": res.normalized, "verdict_codes": res.verdict_codes,
            **{f"heatmap_{i}": np.asarray(h) for i, h in enumerate(res.heatmaps)}}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", sorted(INDEX))
def test_fixture_parity_with_onnxruntime(name, threads):
    bundle, images, stored = _fixture(name)
    rt = edge_sdk.Runtime(bundle, threads=threads, backend="openvino", max_batch=4)
    assert rt.backend.startswith("openvino 20") and ", CPU, f32, threads " + str(threads) in rt.backend
    res = rt.predict(images)  # chunks of 4 and 2: the request's tensors change with the batch size
    _assert_same(res, stored, 1e-4, len(images), 1e-5)
    # The same images one at a time, then all again: results do not depend on the chunking.
    singles = [rt.predict([im]) for im in images]
    np.testing.assert_allclose([r.scores[0] for r in singles], res.scores, rtol=1e-5)
    again = rt.predict(images)
    np.testing.assert_array_equal(again.scores, res.scores)
    # And ONNX Runtime run live in this process agrees too (both libraries loaded side by side).
    ort = edge_sdk.Runtime(bundle, threads=threads, max_batch=4).predict(images)
    _assert_same(res, _stored(ort), 1e-4, len(images), 1e-5)


def _with_fp16(name, tmp_path):
    """A copy of a fixture bundle with an fp16 variant of each network (made the converter's way,
    added without the accuracy gate: this compares backends on the same variant)."""
    import onnx

    from edge_sdk.bundle import read_bundle
    from edge_sdk.bundle.writer import add_networks
    from edge_sdk.converters import precision as P

    bundle, images, stored = _fixture(name)
    dst = tmp_path / name
    shutil.copytree(bundle, dst)
    src = read_bundle(dst)
    variants = {}
    for net in [n for n in src.manifest["networks"] if n["precision"] == "fp32"]:
        (tmp_path / net["file"]).write_bytes(src.networks[net["file"]])
        file = f"{Path(net['file']).stem}.fp16.onnx"
        P.make_fp16(tmp_path / net["file"], tmp_path / file)
        variants[file] = ({**net, "precision": "fp16", "file": file}, onnx.load(str(tmp_path / file)))
    add_networks(dst, variants)
    return dst, images, stored


@pytest.mark.parametrize("name", sorted(INDEX))
def test_fp16_variant_matches_onnxruntime(name, tmp_path):
    pytest.importorskip("onnxconverter_common")
    bundle, images, stored = _with_fp16(name, tmp_path)
    ov = edge_sdk.Runtime(bundle, threads=1, backend="openvino", precision="fp16", max_batch=4).predict(images)
    ort = edge_sdk.Runtime(bundle, threads=1, precision="fp16", max_batch=4).predict(images)
    # Both run the graph's float16 weights and casts, but round its intermediate values differently
    # (ONNX Runtime's CPU kernels in float16, OpenVINO's f32 inference precision between the casts):
    # measured 4e-4 at most on these bundles, against fp16's 4.9e-4 spacing. 2e-3 = 4 fp16 steps.
    # Normalized scores near 0 or 1 compare absolutely (a score's difference over the bundle's range).
    _assert_same(ov, _stored(ort), 2e-3, len(images), 2e-3, score_atol=2e-4)
    np.testing.assert_array_equal(ov.verdict_codes, stored["verdict_codes"])  # and the fp32 verdicts


@pytest.fixture(scope="module")
def trained():
    torch = pytest.importorskip("torch")
    from edge_sdk import models
    from edge_sdk.data.synthetic import make_samples

    torch.set_num_threads(1)
    train, test = make_samples("tile", n_train=16, n_test=8, size=64, seed=0)
    base = dict(input_size=64, batch_size=8)
    fitted = {"padim": models.PaDiM(d=32, **base).fit(train, progress=False),
              "patchcore": models.PatchCore(coreset_ratio=0.1, coreset_chunk=4096, **base).fit(train, progress=False)}
    return fitted, test


@pytest.mark.parametrize("name", ["padim", "patchcore"])
def test_pytorch_parity(trained, name, tmp_path):
    from edge_sdk.converters import export_bundle
    from edge_sdk.converters.verify import compare

    models, test = trained
    model = models[name]
    bundle = export_bundle(model.export_parts(), tmp_path / "bundle", model_type=model.name).bundle
    rt = edge_sdk.Runtime(bundle, threads=1, backend="openvino")
    fig = compare(rt, model, [s.image for s in test])
    assert fig["backend"].startswith("openvino")
    assert fig["unjudged"] == 0, fig["errors"]
    assert fig["max_score_rel_diff"] <= 1e-4 and fig["verdict_agreement"] == 1.0 and fig["passed"], fig


def test_cli_verify_and_bench_with_openvino(trained, tmp_path, capsys):
    from edge_sdk import cli
    from edge_sdk.data.synthetic import make_dataset

    model_dir = tmp_path / "model"
    trained[0]["padim"].save(model_dir)
    root = make_dataset(tmp_path / "data", kind="tile", n_train=4, n_test=5, size=64, seed=1)
    bundle = tmp_path / "bundle"
    assert cli.main(["export", str(model_dir), "--out", str(bundle)]) == 0
    out_json = tmp_path / "parity.json"
    assert cli.main(["verify", str(bundle), "--against", str(model_dir), "--data", str(root), "--layout", "mvtec",
                     "--threads", "1", "--backend", "openvino", "--json", str(out_json)]) == 0
    fig = json.loads(out_json.read_text())
    assert fig["passed"] and fig["images"] == 5 and fig["backend"].startswith("openvino")
    assert "backend: openvino" in capsys.readouterr().out

    out = tmp_path / "bench"
    assert cli.main(["bench", str(bundle), "--backend", "openvino", "--batch", "1,2", "--iterations", "3",
                     "--warmup", "1", "--threads", "1", "--out", str(out), "--no-progress"]) == 0
    record = json.loads((out / "bench.json").read_text())
    assert record["config"]["backend"] == "openvino"
    assert record["environment"]["backend"].startswith("openvino") and record["environment"]["openvino_version"]
    # A backend name the runtime does not know is named by the option.
    assert cli.main(["bench", str(bundle), "--backend", "openvin", "--iterations", "1", "--out", str(out)]) == 2
    assert "--backend: expected onnxruntime, openvino, tensorrt or auto, got 'openvin'" in capsys.readouterr().err


def test_auto_times_both_and_reports_the_pick(tmp_path):
    bundle, images, stored = _fixture("mahalanobis")
    # 3 threads: no other test opens this network with auto at that count (the pick is remembered
    # per network content, thread count and timed batch for the life of the process).
    rt = edge_sdk.Runtime(bundle, threads=3, backend="auto", max_batch=4)
    picked = "openvino" if rt.backend.startswith("openvino") else "onnxruntime"
    other = "onnxruntime" if picked == "openvino" else "openvino"
    assert f"; auto: picked {picked} (" in rt.backend and f" over {other} (" in rt.backend, rt.backend
    assert "fastest of 9 runs at batch 4" in rt.backend and "earlier open" not in rt.backend
    # the default backend is left only for one clearly faster
    assert (", at least 5 % faster than onnxruntime" in rt.backend) == (picked == "openvino"), rt.backend
    _assert_same(rt.predict(images), stored, 1e-4, len(images), 1e-5)
    # Opened again (another context, another copy of the bundle): the same library, not timed again,
    # so every runtime of this network gives the same bits.
    shutil.copytree(bundle, tmp_path / "copy")
    again = edge_sdk.Runtime(tmp_path / "copy", threads=3, backend="auto", max_batch=4)
    assert again.backend.startswith(picked) and "timed at an earlier open of this network in this process" in again.backend
    np.testing.assert_array_equal(again.predict(images).scores, rt.predict(images).scores)
    # Another max batch is timed at its own batch (the order of the libraries can flip between
    # batch 1 and 8), then remembered for it; batches above 8 are timed at 8.
    one = edge_sdk.Runtime(bundle, threads=3, backend="auto", max_batch=1)
    assert "fastest of 9 runs at batch 1" in one.backend and "earlier open" not in one.backend, one.backend
    big = edge_sdk.Runtime(bundle, threads=3, backend="auto", max_batch=16)
    assert "fastest of 9 runs at batch 8" in big.backend and "earlier open" not in big.backend, big.backend
    assert "earlier open" in edge_sdk.Runtime(bundle, threads=3, backend="auto", max_batch=12).backend


def test_bad_device_is_a_clear_error():
    bundle, _, _ = _fixture("ssim")
    with pytest.raises(core.BackendError, match=r'openvino_device "FOO": openvino 20.*has no such device '
                                                r'\(available: [^)]*CPU'):
        edge_sdk.Runtime(bundle, backend="openvino", openvino_device="FOO")
    with pytest.raises(ValueError, match=r'backend "openvino": the runtime\'s device must be "cpu"'):
        edge_sdk.Runtime(bundle, device="cuda:0", backend="openvino")
    # OpenVINO's own name for the CPU, in any case, is accepted.
    assert ", CPU," in edge_sdk.Runtime(bundle, backend="openvino", openvino_device="cpu", threads=1).backend


def _open_in_subprocess(env, library_arg):
    code = ("import sys, edge_sdk; "
            f"rt = edge_sdk.Runtime({str(FIXTURES / 'ssim.bundle')!r}, backend='openvino', threads=1{library_arg}); "
            "print(rt.backend)")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def test_missing_library_is_a_clear_error():
    # One OpenVINO per process, so each case runs in a fresh one.
    missing = "/nonexistent/openvino/libs/libopenvino_c.so.2641"
    proc = _open_in_subprocess({"EDGE_SDK_OPENVINO_LIB": missing}, "")
    assert proc.returncode != 0
    assert f"openvino library (libopenvino_c) not found, from option:\n  {missing}: " in proc.stderr, proc.stderr
    # Not an OpenVINO library at all.
    ort = edge_sdk.runtime.find_onnxruntime_library()
    if ort:
        proc = _open_in_subprocess({"EDGE_SDK_OPENVINO_LIB": ort}, "")
        assert "no symbol ov_get_openvino_version (not OpenVINO's C API library libopenvino_c)" in proc.stderr
    # No path given at all: the C++ search (beside libedge_sdk, then the loader's path). From the
    # source tree it finds nothing; from an installed wheel, the openvino wheel beside it.
    env = {k: v for k, v in os.environ.items() if k != "EDGE_SDK_OPENVINO_LIB"}
    proc = subprocess.run([sys.executable, "-c",
                           "import edge_sdk; print(edge_sdk.Runtime(%r, backend='openvino', openvino_library='').backend)"
                           % str(FIXTURES / "ssim.bundle")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120, env={**env, "PYTHONPATH": str(ROOT)})
    if proc.returncode == 0:
        assert proc.stdout.startswith("openvino"), proc.stdout
    else:
        assert ("openvino library (libopenvino_c) not found, searched (set EDGE_SDK_OPENVINO_LIB or the "
                "openvino_library option, or pip install openvino next to edge_sdk)") in proc.stderr, proc.stderr


def test_openvino_info():
    path = edge_sdk.runtime.find_openvino_library()
    info = core.openvino_info(path)
    assert Path(info["path"]).name.startswith("libopenvino_c.so") and info["version"].startswith("20")
    assert "CPU" in info["devices"]


def test_bf16_variant_is_gated_and_runs_on_openvino_only(trained, tmp_path, capsys):
    """The bf16 variant: the fp32 graph marked bf16, computed in bfloat16 by OpenVINO (its inference
    precision hint), admitted by the accuracy gate only where the CPU really computes bfloat16."""
    import onnx

    from edge_sdk import cli
    from edge_sdk.bundle import read_bundle
    from edge_sdk.converters import export_bundle
    from edge_sdk.converters.precision import PrecisionError
    from edge_sdk.converters.precision_bundle import add_precision_variants

    models, test = trained
    bundle = export_bundle(models["padim"].export_parts(), tmp_path / "bundle", model_type="padim").bundle
    images, labels = [s.image for s in test], [s.label for s in test]
    assert 0 < sum(labels) < len(labels)
    f32 = edge_sdk.Runtime(bundle, threads=1, backend="openvino", max_batch=8)
    ref = f32.predict(images)
    try:
        reports = add_precision_variants(bundle, ["bf16"], calibration_images=[], validation_images=images,
                                         validation_labels=labels, threads=1, log=lambda m: None)
    except PrecisionError as exc:  # a CPU without AVX512-BF16 / AMX: OpenVINO would compute float32
        assert "computes the variant in float32 on this CPU" in str(exc)
        pytest.skip(f"this CPU has no bfloat16 arithmetic for OpenVINO: {exc}")
    report = reports["bf16"]
    assert report.accepted and report.verdict_agreement == 1.0, report.summary()
    src = read_bundle(bundle)
    net = next(n for n in src.manifest["networks"] if n["precision"] == "bf16")
    fp32 = next(n for n in src.manifest["networks"] if n["precision"] == "fp32")
    variant, original = (onnx.load_from_string(src.networks[n["file"]]) for n in (net, fp32))
    meta = {p.key: p.value for p in variant.metadata_props}
    assert meta["edge_sdk.precision"] == "bf16" and "bf16" in meta["edge_sdk.compute"]
    assert variant.graph.SerializeToString() == original.graph.SerializeToString()  # the same graph and weights

    rt = edge_sdk.Runtime(bundle, threads=1, backend="openvino", precision="bf16", max_batch=8)
    assert ", CPU, bf16, threads 1" in rt.backend, rt.backend
    res = rt.predict(images)
    rel = np.abs(res.scores - ref.scores) / np.abs(ref.scores)
    # Really bfloat16 (8 significant bits), not the f32 model compiled before it for the same file
    # content and threads, and still close: the gate measured these figures.
    assert 1e-5 < rel.max() < 2e-2, rel
    np.testing.assert_array_equal(res.verdict_codes, ref.verdict_codes)
    assert np.isclose(rel.max(), report.score_drift_max, rtol=1e-3)
    # "auto" has nothing to choose from: OpenVINO is the one backend that computes bf16.
    assert ", bf16," in edge_sdk.Runtime(bundle, threads=1, backend="auto", precision="bf16").backend
    with pytest.raises(ValueError, match=r'precision "bf16": the bfloat16 variant is computed by the "openvino" '
                                         r'backend only .*backend "onnxruntime" cannot run it'):
        edge_sdk.Runtime(bundle, threads=1, precision="bf16")
    assert cli.main(["build-engine", str(bundle), "--precision", "bf16"]) == 2
    assert "--precision bf16: the bf16 variant is computed by OpenVINO only" in capsys.readouterr().err


def _bf16_nearest(a: np.ndarray) -> np.ndarray:
    """float32 -> nearest bfloat16 (ties to even) by comparing the two neighbours in float64."""
    a = np.ascontiguousarray(a, np.float32)
    lo_bits = a.view(np.uint32) & np.uint32(0xFFFF0000)
    lo = lo_bits.view(np.float32).astype(np.float64)
    hi = (lo_bits + np.uint32(0x10000)).view(np.float32).astype(np.float64)
    x = a.astype(np.float64)
    d_lo, d_hi = np.abs(x - lo), np.abs(hi - x)
    even_is_hi = ((lo_bits >> np.uint32(16)) & np.uint32(1)) == 1
    return np.where((d_hi < d_lo) | ((d_hi == d_lo) & even_is_hi), hi, lo).astype(np.float32)


def test_bf16_variant_solves_with_the_factor_rounded_to_bfloat16(tmp_path):
    """PaDiM's bf16 variant scores with its Cholesky factor rounded to bfloat16 (stored in 16 bits
    for the small-batch solve: half the bytes each call streams): bit for bit the scores of the bf16
    variant of a bundle whose factor NumPy rounded beforehand, at batch 1 (packed solve) and 16
    (batched solve). The float32 variants of the two bundles differ, so the rounding is what made
    them equal."""
    import copy

    from tests.bundle_helpers import embedding_parts
    from edge_sdk.converters import export_bundle
    from edge_sdk.converters.precision import PrecisionError
    from edge_sdk.converters.precision_bundle import add_precision_variants

    parts = embedding_parts("mahalanobis", features=12)
    pre_rounded = copy.copy(parts)
    pre_rounded.arrays = dict(parts.arrays, chol=_bf16_nearest(parts.arrays["chol"]))
    assert not np.array_equal(pre_rounded.arrays["chol"], parts.arrays["chol"])
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (32, 40, 3), dtype=np.uint8) for _ in range(16)]
    labels = [i % 2 for i in range(16)]
    bundles = []
    for name, p in (("original", parts), ("pre_rounded", pre_rounded)):
        b = export_bundle(p, tmp_path / name, model_type="padim").bundle
        try:  # the gate's thresholds are not this test's subject
            add_precision_variants(b, ["bf16"], calibration_images=[], validation_images=images,
                                   validation_labels=labels, threads=1, log=lambda m: None,
                                   min_verdict_agreement=0.0, max_auroc_drop=1.0)
        except PrecisionError as exc:
            pytest.skip(f"this CPU has no bfloat16 arithmetic for OpenVINO: {exc}")
        bundles.append(b)
    batch = np.stack(images)

    def scores(bundle, precision, n):
        rt = edge_sdk.Runtime(bundle, threads=1, backend="openvino", precision=precision, max_batch=16)
        return np.concatenate([rt.predict(batch[i:i + n]).scores for i in range(0, len(batch), n)])

    assert not np.array_equal(scores(bundles[0], "fp32", 16), scores(bundles[1], "fp32", 16))
    want = scores(bundles[1], "bf16", 16)
    np.testing.assert_array_equal(scores(bundles[0], "bf16", 16), want)
    np.testing.assert_array_equal(scores(bundles[0], "bf16", 1), want)
    np.testing.assert_array_equal(scores(bundles[1], "bf16", 1), want)


def test_int8_variant_runs_on_onnxruntime_only(tmp_path):
    """The gate admits an int8 variant as ONNX Runtime computes it (Q/DQ in float, the same on every
    CPU); OpenVINO would fuse the Q/DQ pairs into its integer kernels, ungated scores: refused by
    name, and `auto` runs ONNX Runtime."""
    from tests.bundle_helpers import embedding_parts
    from edge_sdk.converters import export_bundle
    from edge_sdk.converters.precision_bundle import add_precision_variants

    parts = embedding_parts("mahalanobis", features=12)
    bundle = export_bundle(parts, tmp_path / "b", model_type="padim").bundle
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 256, (32, 40, 3), dtype=np.uint8) for _ in range(16)]
    add_precision_variants(bundle, ["int8"], calibration_images=images[:8], validation_images=images,
                           validation_labels=[i % 2 for i in range(16)], threads=1, log=lambda m: None,
                           min_verdict_agreement=0.0, max_auroc_drop=1.0)
    with pytest.raises(ValueError, match=r'precision "int8": the int8 variant was admitted by the accuracy gate as '
                                         r'ONNX Runtime computes it .* use backend "onnxruntime" or "auto"'):
        edge_sdk.Runtime(bundle, threads=1, backend="openvino", precision="int8")
    auto = edge_sdk.Runtime(bundle, threads=1, backend="auto", precision="int8", max_batch=16)
    assert auto.backend.startswith("onnxruntime"), auto.backend
    ort = edge_sdk.Runtime(bundle, threads=1, backend="onnxruntime", precision="int8", max_batch=16)
    np.testing.assert_array_equal(auto.predict(np.stack(images)).scores, ort.predict(np.stack(images)).scores)
    # fp32 of the same bundle still runs on OpenVINO
    assert "CPU, f32" in edge_sdk.Runtime(bundle, threads=1, backend="openvino").backend
