"""Precision variants (converters/precision.py): fp16 and Q/DQ int8 ONNX files checked on
onnxruntime's CPU provider against the fp32 network, and the accuracy gate against a float64
reference AUROC."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxconverter_common")

from edge_sdk.converters import precision as P  # noqa: E402


def _export(tmp_path, rng, out_conv=True):
    """A small backbone-like CNN (conv + BN + ReLU6 + depthwise + pointwise), random weights from
    the test's rng, exported with a dynamic batch axis. With out_conv the graph output is a Conv's
    output (the case where the quantizer would quantize the features)."""
    torch.manual_seed(int(rng.integers(2**31)))
    layers = [torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.BatchNorm2d(16), torch.nn.ReLU6(),
              torch.nn.Conv2d(16, 16, 3, padding=1, groups=16), torch.nn.Conv2d(16, 24, 1), torch.nn.ReLU()]
    layers.append(torch.nn.Conv2d(24, 8, 1) if out_conv else torch.nn.AvgPool2d(2))
    net = torch.nn.Sequential(*layers).eval()
    with torch.no_grad():  # non-trivial BN statistics so folding matters
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 2.0)
    path = tmp_path / "net.onnx"
    torch.onnx.export(net, (torch.randn(2, 3, 32, 32),), str(path), input_names=["input"],
                      output_names=["features"], dynamic_axes={"input": {0: "batch"}, "features": {0: "batch"}},
                      opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    entry = model.metadata_props.add()
    entry.key, entry.value = "edge_sdk.model_type", "test"
    onnx.save(model, str(path))
    return net, path


def _inputs(rng, n=5):
    return rng.standard_normal((n, 3, 32, 32)).astype(np.float32)


def test_fp16_variant_runs_with_float32_io_and_matches(tmp_path, rng):
    net, src = _export(tmp_path, rng)
    dst = P.make_fp16(src, tmp_path / "net.fp16.onnx")
    m = onnx.load(str(dst))
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert m.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    weights = [t for t in m.graph.initializer if len(t.dims) == 4]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["edge_sdk.precision"] == "fp16" and meta["edge_sdk.model_type"] == "test"
    x = _inputs(rng)
    y32 = P.run_onnx(src, x, threads=1)[0]
    y16 = P.run_onnx(dst, x, threads=1)[0]
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).double().numpy()
    assert np.abs(y32 - ref).max() < 1e-4 * max(1.0, np.abs(ref).max())
    err = np.abs(y16 - ref).max() / np.abs(ref).max()
    assert 0 < err < 5e-3, err  # float16 rounding is visible but small


@pytest.mark.parametrize("out_conv", [True, False])
def test_int8_variant_is_symmetric_per_channel_qdq_with_float_outputs(tmp_path, rng, out_conv, record_property):
    net, src = _export(tmp_path, rng, out_conv)
    cal = [_inputs(rng, 8) for _ in range(3)]
    dst = P.make_int8(src, tmp_path / "net.int8.onnx", cal)
    m = onnx.load(str(dst))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    qs = [n for n in m.graph.node if n.op_type == "QuantizeLinear"]
    dqs = [n for n in m.graph.node if n.op_type == "DequantizeLinear"]
    assert qs and dqs
    for n in qs + dqs:  # TensorRT: int8, zero point 0
        zp = inits[n.input[2]]
        assert zp.dtype == np.int8 and not zp.any(), n.name
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    producers = {o: n for n in m.graph.node for o in n.output}
    for c in convs:  # weights per output channel; bias float
        w_dq = producers[c.input[1]]
        assert w_dq.op_type == "DequantizeLinear"
        assert inits[w_dq.input[0]].dtype == np.int8
        assert inits[w_dq.input[1]].shape == (inits[w_dq.input[0]].shape[0],)
        if len(c.input) > 2:
            assert c.input[2] in inits and inits[c.input[2]].dtype == np.float32
    out = m.graph.output[0]
    assert producers[out.name].op_type != "DequantizeLinear"  # features leave the graph in float
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["edge_sdk.precision"] == "int8" and meta["edge_sdk.calibration_images"] == "24"

    x = np.concatenate(cal)[:6]
    y32 = P.run_onnx(src, x, threads=1)[0]
    # What the runtime and the accuracy gate compute on any CPU (Q/DQ in float, the arithmetic of
    # the int8 target up to rounding): the error against fp32 is bounded by the quantization steps.
    y8 = P.run_onnx(dst, x, threads=1, simulate_qdq=True)[0]
    err = np.abs(y8 - y32).max() / np.abs(y32).max()
    bound = _int8_error_bound(m)
    assert 1e-5 < err < bound, (err, bound)  # quantized (not a copy of fp32), within its steps
    # onnxruntime's fused integer kernels on this CPU: reported, not asserted (they saturate on
    # CPUs without VNNI; that is the machine's arithmetic, not the quantizer's).
    fused = P.run_onnx(dst, x, threads=1)[0]
    drift = float(np.abs(fused - y8).max() / np.abs(y32).max())
    record_property("int8_kernel_drift", drift)
    print(f"int8: error vs fp32 {err:.4f} (bound {bound:.4f}); fused-kernel drift on this CPU {drift:.4f}")


def _int8_error_bound(model) -> float:
    """First-order bound of the relative output error of a symmetric int8 Q/DQ graph: every
    quantized tensor (activation or weight) is rounded to half a step of its own range, a relative
    error of at most 0.5 / 127; to first order these add up through the network. A factor 2 covers
    the gain of a layer on an error (weights of these tests are O(1) after BN folding)."""
    n = sum(1 for node in model.graph.node if node.op_type == "DequantizeLinear")
    return 2.0 * n * 0.5 / 127


def test_variants_refuse_bad_input(tmp_path, rng):
    with pytest.raises(P.PrecisionError, match="missing.onnx"):
        P.make_fp16(tmp_path / "missing.onnx", tmp_path / "x.onnx")
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(P.PrecisionError, match="corrupt.onnx"):
        P.make_int8(bad, tmp_path / "x.onnx", [_inputs(rng)])
    _, src = _export(tmp_path, rng)
    with pytest.raises(P.PrecisionError, match="calibration"):
        P.make_int8(src, tmp_path / "x.onnx", [])
    with pytest.raises(P.PrecisionError, match="calibration"):
        P.make_int8(src, tmp_path / "x.onnx", [_inputs(rng).astype(np.float64)])
    with pytest.raises(P.PrecisionError, match="method"):
        P.make_int8(src, tmp_path / "x.onnx", [_inputs(rng)], method="magic")
    assert not (tmp_path / "x.onnx").exists()


def test_parse_precisions():
    assert P.parse_precisions("int8,fp16") == ["fp32", "int8", "fp16"]
    assert P.parse_precisions(["fp32", "fp16", "fp16"]) == ["fp32", "fp16"]
    assert P.parse_precisions("bf16") == ["fp32", "bf16"]
    with pytest.raises(P.PrecisionError, match="--precision: unknown precision 'fp8'; expected some of fp32, fp16, "
                                               "int8, bf16"):
        P.parse_precisions("fp16,fp8")


def _auroc_f64(labels, scores):
    """Independent reference: probability that an anomalous score exceeds a good one (ties 1/2)."""
    pos = scores[labels == 1][:, None].astype(np.float64)
    neg = scores[labels == 0][None, :].astype(np.float64)
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def _scores(rng, n=400):
    labels = (rng.random(n) < 0.4).astype(np.int64)
    scores = rng.normal(0.0, 1.0, n) + 1.5 * labels
    return labels, scores


def test_gate_accepts_a_faithful_variant(rng):
    labels, s = _scores(rng)
    thr = 0.75
    sv = s * (1 + rng.normal(0, 1e-4, s.size))
    r = P.accuracy_gate("fp16", labels, s, s >= thr, sv, sv >= thr)
    assert r.accepted and not r.reasons
    assert r.auroc_fp32 == pytest.approx(_auroc_f64(labels, s), abs=1e-12)
    assert r.auroc == pytest.approx(_auroc_f64(labels, sv), abs=1e-12)
    rel = np.abs(sv - s) / np.abs(s)
    assert r.score_drift_mean == pytest.approx(rel.mean()) and r.score_drift_max == pytest.approx(rel.max())
    assert r.verdict_agreement == pytest.approx(np.mean((s >= thr) == (sv >= thr)))
    assert "accepted" in r.summary()


def test_gate_refuses_on_verdict_agreement(rng):
    labels, s = _scores(rng, 1000)
    v = s >= 0.75
    vv = v.copy()
    vv[rng.choice(v.size, 6, replace=False)] ^= True  # 99.4 % agreement
    r = P.accuracy_gate("int8", labels, s, v, s, vv)
    assert not r.accepted and r.verdict_agreement == pytest.approx(0.994)
    assert any("verdict agreement" in x for x in r.reasons)
    vv = v.copy()
    vv[rng.choice(v.size, 5, replace=False)] ^= True  # 99.5 % is enough
    assert P.accuracy_gate("int8", labels, s, v, s, vv).accepted


def test_gate_refuses_on_auroc_drop_and_non_finite(rng):
    labels, s = _scores(rng)
    sv = s + rng.normal(0, 1.5, s.size)  # noisy scores: AUROC drops by far more than 0.005 (~0.1)
    r = P.accuracy_gate("int8", labels, s, np.zeros(s.size, bool), sv, np.zeros(s.size, bool))
    assert r.verdict_agreement == 1.0 and not r.accepted
    assert r.auroc_drop == pytest.approx(_auroc_f64(labels, s) - _auroc_f64(labels, sv), abs=1e-12)
    assert any("AUROC" in x for x in r.reasons)
    sv = s.copy()
    sv[3] = np.inf
    r = P.accuracy_gate("fp16", labels, s, s > 0, sv, sv > 0)
    assert not r.accepted and any("non-finite" in x for x in r.reasons)
    with pytest.raises(P.PrecisionError, match="scores"):
        P.accuracy_gate("fp16", labels, s, s > 0, s[:-1], s[:-1] > 0)


def test_gate_variants_runs_fp32_once(rng):
    labels, s = _scores(rng, 100)
    calls = []

    def score_fn(p):
        calls.append(p)
        sc = s if p != "int8" else -s
        return sc, sc > 0

    reports = P.gate_variants(["fp32", "fp16", "int8"], labels, score_fn)
    assert calls == ["fp32", "fp16", "int8"]
    assert reports["fp16"].accepted and not reports["int8"].accepted


def test_calibration_batches_take_images_of_any_size(rng):
    """Calibration images of different sizes (real data sets, e.g. MTD) are preprocessed one by one,
    exactly as edge_sdk.kernels.preprocess does for each, then batched."""
    from edge_sdk import kernels

    pre = dict(height=24, width=32, channels=3, mean=[0.4, 0.5, 0.6], std=[0.2, 0.25, 0.3], scale=1 / 255)
    images = [rng.integers(0, 256, s, dtype=np.uint8) for s in [(40, 50, 3), (24, 32, 3), (61, 17), (30, 30, 3), (9, 90)]]
    batches = list(P.calibration_batches(images, pre, batch=2))
    assert [b.shape for b in batches] == [(2, 3, 24, 32), (2, 3, 24, 32), (1, 3, 24, 32)]
    got = np.concatenate(batches)
    for i, img in enumerate(images):
        x = img[..., None] if img.ndim == 2 else img
        want = kernels.preprocess(np.ascontiguousarray(x[None]), (24, 32), mean=pre["mean"], std=pre["std"], channels=3)
        np.testing.assert_array_equal(got[i], want[0])
    assert len(np.concatenate(list(P.calibration_batches(images, pre, batch=2, limit=3)))) == 3
