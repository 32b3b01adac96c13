"""Reduced-precision variants of a bundle's ONNX network, and the accuracy gate that admits them.

Precision is carried by the ONNX graph itself, so the same file serves onnxruntime (CPU here) and
TensorRT, whose strongly typed networks take their types from the graph (TensorRT 10 deprecates and
TensorRT 11 removes implicit INT8 calibration and the FP16/INT8 builder flags):

- ``fp16``: float16 weights and compute; the graph inputs and outputs stay float32 (a Cast at each
  end), so the runtime feeds and reads the same buffers as for fp32.
- ``int8``: explicit quantization, QuantizeLinear/DequantizeLinear pairs from onnxruntime's static
  quantization, calibrated on good training images passed through THE preprocessing
  (``edge_sdk.kernels.preprocess``). Symmetric int8 activations and symmetric per-channel int8
  weights (zero point 0, the only scheme TensorRT runs), float biases (TensorRT has no int32
  dequantization), only the inputs of Conv/ConvTranspose/Gemm/MatMul quantized, so the feature
  maps that leave the network for the k-NN / Mahalanobis / SSIM kernels stay float.
- ``bf16``: the fp32 graph itself, which OpenVINO computes in bfloat16 (its inference precision
  hint) on CPUs with AVX512-BF16 or AMX; ONNX has no portable way to ask for that, so only the
  runtime's ``openvino`` backend runs this variant. Float32 inputs, outputs and weights; a CPU
  without bfloat16 arithmetic computes it in float32.

A variant enters a bundle only through :func:`accuracy_gate`: on a validation set its verdicts must
agree with fp32 on at least 99.5 % of the images and its image AUROC may be at most 0.005 below
fp32's; otherwise it is refused and absent from the bundle.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from edge_sdk.atomic import atomic_path

PRECISIONS = ("fp32", "fp16", "int8", "bf16")
# The one backend that computes each precision where it is not every backend.
BACKEND_OF = {"bf16": "openvino"}
MIN_VERDICT_AGREEMENT = 0.995
MAX_AUROC_DROP = 0.005
# Ops whose inputs the int8 variant quantizes: the ones that carry the arithmetic and that TensorRT
# fuses with the surrounding Q/DQ into int8 kernels. Everything else stays float.
INT8_OP_TYPES = ("Conv", "ConvTranspose", "Gemm", "MatMul")


class PrecisionError(ValueError):
    """A variant could not be produced or was refused; the message names the file or the figure."""


def parse_precisions(text: str | Sequence[str], arg: str = "--precision") -> list[str]:
    """"fp32,fp16,int8" (or a sequence) -> ordered unique list; fp32 is always first and implied."""
    items = [p.strip().lower() for p in (text.split(",") if isinstance(text, str) else text)]
    items = [p for p in items if p]
    unknown = [p for p in items if p not in PRECISIONS]
    if unknown:
        raise PrecisionError(f"{arg}: unknown precision {unknown[0]!r}; expected some of {', '.join(PRECISIONS)}")
    out = ["fp32"]
    for p in items:
        if p not in out:
            out.append(p)
    return out


def _session(model: str | os.PathLike | bytes, threads: int | None = None, simulate_qdq: bool = False):
    import onnxruntime as ort

    so = ort.SessionOptions()
    if simulate_qdq:  # Q/DQ evaluated in float, as the runtime runs int8 variants on the CPU
        so.add_session_config_entry("session.disable_quant_qdq", "1")
    threads = threads or int(os.environ.get("EDGE_SDK_NUM_THREADS", "0") or 0)
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    src = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def _atomic_save(model, dst: Path) -> None:
    import onnx

    with atomic_path(dst) as tmp:
        onnx.save(model, tmp)


def _load_checked(src: str | os.PathLike):
    import onnx

    src = Path(src)
    if not src.is_file():
        raise PrecisionError(f"{src}: ONNX file not found")
    try:
        model = onnx.load(str(src))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises several unrelated types for a bad file
        raise PrecisionError(f"{src}: not a valid ONNX model ({exc})") from exc
    return model


def _float_inputs(model, src) -> list:
    import onnx

    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    for i in inputs:
        if i.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise PrecisionError(f"{src}: input {i.name!r} is not float32; precision variants start from the fp32 network")
    for o in model.graph.output:
        if o.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise PrecisionError(f"{src}: output {o.name!r} is not float32; precision variants start from the fp32 network")
    return inputs


def make_fp16(src: str | os.PathLike, dst: str | os.PathLike, *, op_block_list: Sequence[str] | None = None) -> Path:
    """Writes the float16 variant of the fp32 ONNX ``src`` to ``dst`` (atomically) and returns dst.

    Weights and intermediate tensors become float16; inputs and outputs stay float32. Ops in
    onnxconverter-common's default block list (Resize, TopK, ...) plus ``op_block_list`` keep float32
    compute. Weights outside float16's range are clamped by the converter; activations that overflow
    at run time show up as non-finite scores, which the gate refuses.
    """
    from onnxconverter_common.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = _load_checked(src)
    _float_inputs(model, src)
    blocked = list(DEFAULT_OP_BLOCK_LIST) + list(op_block_list or [])
    # max_finite_val: clamp only what float16 cannot hold (the default 1e4 would clip legitimate
    # weights and biases of un-normalized layers).
    fp16 = convert_float_to_float16(model, keep_io_types=True, op_block_list=blocked,
                                    min_positive_val=5.96e-08, max_finite_val=65504.0)
    _annotate(fp16, "fp16", model)
    dst = Path(dst)
    _atomic_save(fp16, dst)
    _load_checked(dst)
    return dst


def make_bf16(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Writes the bf16 variant of the fp32 ONNX ``src`` to ``dst`` (atomically): the same graph and
    weights, marked bf16, whose arithmetic precision is OpenVINO's compile hint at run time."""
    model = _load_checked(src)
    _float_inputs(model, src)
    _annotate(model, "bf16", model, compute="openvino INFERENCE_PRECISION_HINT bf16")
    dst = Path(dst)
    _atomic_save(model, dst)
    _load_checked(dst)
    return dst


class _ArrayReader:
    """onnxruntime CalibrationDataReader over preprocessed batches (N,C,H,W) float32."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]):
        self._name = input_name
        self._it: Iterator[np.ndarray] = iter(batches)

    def get_next(self):
        batch = next(self._it, None)
        return None if batch is None else {self._name: np.ascontiguousarray(batch, dtype=np.float32)}


def make_int8(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    calibration: Iterable[np.ndarray],
    *,
    method: str = "minmax",
    op_types: Sequence[str] = INT8_OP_TYPES,
    input_range: tuple[float, float] | None = None,
) -> Path:
    """Writes the explicitly quantized (Q/DQ) int8 variant of the fp32 ONNX ``src`` to ``dst``.

    ``calibration``: batches of the network's preprocessed input, float32 (N,C,H,W): good training
    images through ``edge_sdk.kernels.preprocess`` (see :func:`calibration_batches`).
    ``method``: activation range estimator, "minmax", "percentile" (99.999th) or "entropy".
    ``input_range``: (min, max) of the preprocessed input over every possible pixel value (see
    :func:`input_value_range`). Calibrating on good images alone would fit the input's int8 range to
    them and clip exactly the out-of-range pixels a defect produces; with input_range the input
    quantizer covers the whole range instead.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    if method not in methods:
        raise PrecisionError(f"method: expected one of {', '.join(methods)}, got {method!r}")
    model = _load_checked(src)
    inputs = _float_inputs(model, src)
    if len(inputs) != 1:
        raise PrecisionError(f"{src}: int8 calibration supports networks with one input, this one has {len(inputs)}")

    batches = list(calibration)
    if not batches:
        raise PrecisionError("calibration: no images; int8 needs good training images to calibrate on")
    for b in batches:
        if not (isinstance(b, np.ndarray) and b.dtype == np.float32 and b.ndim == 4):
            raise PrecisionError("calibration: expected float32 (N,C,H,W) batches of preprocessed images")
        if not np.isfinite(b).all():
            raise PrecisionError("calibration: a batch holds non-finite values")

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        # Shape inference + constant folding (BatchNorm into Conv), as onnxruntime recommends before
        # calibrating: the quantizer then sees the same Conv weights TensorRT will fuse.
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
        out = Path(tmp) / "int8.onnx"
        quantize_static(
            str(pre), str(out), _ArrayReader(inputs[0].name, batches),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(op_types),
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=methods[method],
            extra_options={
                **({"TensorQuantOverrides": {inputs[0].name: [{"rmin": np.float32(input_range[0]),
                                                               "rmax": np.float32(input_range[1])}]}}
                   if input_range is not None else {}),
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "QuantizeBias": False,
                "CalibPercentile": 99.999,
            },
        )
        q = onnx.load(str(out))
        _float_outputs(q)
        if not any(n.op_type == "QuantizeLinear" for n in q.graph.node):
            raise PrecisionError(f"{src}: the quantizer inserted no QuantizeLinear node (no {'/'.join(op_types)} op?)")
        _annotate(q, "int8", model, calibration_images=sum(int(b.shape[0]) for b in batches),
                  calibration_method=method)
        _atomic_save(q, dst)
    _load_checked(dst)
    return dst


def _float_outputs(model) -> None:
    """The quantizer also quantizes tensors that are graph outputs (a Conv's output feeding the
    k-NN bank, say). Those features leave the network for float kernels, so each graph output is
    re-pointed at the float tensor before its Q/DQ pair; consumers inside the graph keep reading the
    dequantized copy, so the int8 path between layers is unchanged."""
    producers = {o: n for n in model.graph.node for o in n.output}
    for out in model.graph.output:
        dq = producers.get(out.name)
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        q = producers.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            continue
        src, inner = q.input[0], out.name + "_DequantizeLinear_Output"
        for node in model.graph.node:
            node.input[:] = [inner if i == out.name else (out.name if i == src else i) for i in node.input]
            node.output[:] = [inner if o == out.name else (out.name if o == src else o) for o in node.output]
        for vi in model.graph.value_info:
            if vi.name == src:
                vi.name = out.name
    _prune_dead(model)


def _prune_dead(model) -> None:
    """Removes nodes whose outputs nobody reads (Q/DQ pairs left by _float_outputs) and then the
    initializers nobody reads."""
    while True:
        used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
        dead = [n for n in model.graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for n in dead:
            model.graph.node.remove(n)
    used = {i for n in model.graph.node for i in n.input}
    for init in [t for t in model.graph.initializer if t.name not in used]:
        model.graph.initializer.remove(init)


def _annotate(model, precision: str, source, **extra) -> None:
    """Copies the fp32 graph's metadata_props (the bundle's self-description) and records the
    precision, so a variant file is self-describing on its own too."""
    keep = {p.key: p.value for p in source.metadata_props}
    keep["edge_sdk.precision"] = precision
    for k, v in extra.items():
        keep[f"edge_sdk.{k}"] = str(v)
    del model.metadata_props[:]
    for k, v in keep.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v


def calibration_batches(images: Sequence[np.ndarray] | np.ndarray, preprocess: dict, *, batch: int = 16,
                        limit: int | None = 200) -> Iterator[np.ndarray]:
    """Good training images (H,W,C) or (H,W) uint8, of any sizes -> preprocessed float32 batches
    for :func:`make_int8`, through ``edge_sdk.kernels.preprocess`` with the bundle's preprocess spec
    (dict(height, width, channels, mean, std, scale)). Images are preprocessed one by one (each
    from its own size, as the runtime does) and stacked after resizing."""
    from edge_sdk.kernels import preprocess as _preprocess

    size = (int(preprocess["height"]), int(preprocess["width"]))
    n = len(images) if limit is None else min(len(images), limit)
    for start in range(0, n, batch):
        out = []
        for i in range(start, min(n, start + batch)):
            img = np.asarray(images[i])
            img = img[..., None] if img.ndim == 2 else img
            out.append(_preprocess(np.ascontiguousarray(img[None]), size, mean=preprocess["mean"],
                                   std=preprocess["std"], channels=int(preprocess["channels"]),
                                   scale=float(preprocess.get("scale", 1 / 255))))
        yield np.ascontiguousarray(np.concatenate(out))


def input_value_range(preprocess: dict) -> tuple[float, float]:
    """(min, max) of the preprocessed network input over the whole raw pixel range: the bundle's
    ``input`` section (value_range, scale, mean, std) or an ExportParts preprocess dict."""
    lo, hi = preprocess.get("value_range", (0.0, 255.0))
    scale = float(preprocess.get("scale", 1 / 255))
    ends = [(v * scale - m) / sd for m, sd in zip(preprocess["mean"], preprocess["std"]) for v in (lo, hi)]
    return float(min(ends)), float(max(ends))


def run_onnx(model: str | os.PathLike, inputs: np.ndarray, *, threads: int | None = None,
             simulate_qdq: bool = False) -> list[np.ndarray]:
    """Runs an ONNX file with one input on onnxruntime's CPU provider (used by tests and benches).
    simulate_qdq: evaluate QuantizeLinear/DequantizeLinear in float instead of fusing them into
    onnxruntime's integer kernels, whose results differ between CPUs (without VNNI their u8s8
    pair sums saturate); the float evaluation is what the C++ runtime runs for int8 variants on
    the CPU and what the accuracy gate scores, so neither depends on the exporting machine."""
    sess = _session(model, threads, simulate_qdq)
    return sess.run(None, {sess.get_inputs()[0].name: inputs})


# ---- accuracy gate -------------------------------------------------------------------------------

@dataclass
class GateReport:
    """What the gate measured for one variant against fp32 on the validation set."""

    precision: str
    images: int
    verdict_agreement: float      # fraction of images whose verdict equals fp32's
    auroc_fp32: float | None      # None when the validation set holds one class only
    auroc: float | None
    auroc_drop: float | None      # auroc_fp32 - auroc (positive = worse)
    score_drift_mean: float       # mean |score - score_fp32| / |score_fp32| (relative)
    score_drift_max: float
    score_abs_drift_max: float    # max |score - score_fp32|, raw-score units
    accepted: bool
    reasons: list[str] = field(default_factory=list)
    min_verdict_agreement: float = MIN_VERDICT_AGREEMENT
    max_auroc_drop: float = MAX_AUROC_DROP

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        def f(x, fmt):
            return "n/a" if x is None else format(x, fmt)
        verdict = "accepted" if self.accepted else "REFUSED: " + "; ".join(self.reasons)
        return (f"{self.precision}: verdict agreement {self.verdict_agreement:.4f} (>= {self.min_verdict_agreement}), "
                f"AUROC {f(self.auroc, '.4f')} vs fp32 {f(self.auroc_fp32, '.4f')} "
                f"(drop {f(self.auroc_drop, '+.4f')}, <= {self.max_auroc_drop}), score drift mean "
                f"{self.score_drift_mean:.2e} max {self.score_drift_max:.2e} (relative) on {self.images} images -> {verdict}")


def _auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    if labels.min() == labels.max():
        return None
    from edge_sdk.metrics import image_auroc

    return float(image_auroc(labels, scores))


def accuracy_gate(
    precision: str,
    labels: np.ndarray,
    scores_fp32: np.ndarray,
    verdicts_fp32: np.ndarray,
    scores: np.ndarray,
    verdicts: np.ndarray,
    *,
    min_verdict_agreement: float = MIN_VERDICT_AGREEMENT,
    max_auroc_drop: float = MAX_AUROC_DROP,
) -> GateReport:
    """Compares a variant's image scores and verdicts with fp32's on the same validation images.

    labels: 0 good / 1 anomalous; verdicts: bool or {0,1} (1 = anomalous). Accepted only if the
    verdict agreement is at least ``min_verdict_agreement`` and the AUROC (when both classes are
    present) is at most ``max_auroc_drop`` below fp32's. Non-finite variant scores refuse it.
    """
    labels = np.asarray(labels).astype(np.int64).ravel()
    s32 = np.asarray(scores_fp32, dtype=np.float64).ravel()
    sv = np.asarray(scores, dtype=np.float64).ravel()
    v32 = np.asarray(verdicts_fp32).astype(bool).ravel()
    vv = np.asarray(verdicts).astype(bool).ravel()
    n = labels.size
    for name, a in (("scores_fp32", s32), ("scores", sv), ("verdicts_fp32", v32), ("verdicts", vv)):
        if a.size != n:
            raise PrecisionError(f"{name}: {a.size} values for {n} labels")
    if n == 0:
        raise PrecisionError("labels: the validation set is empty; the gate needs images")
    if not np.isfinite(s32).all():
        raise PrecisionError("scores_fp32: non-finite fp32 scores; the reference itself is broken")

    reasons: list[str] = []
    finite = bool(np.isfinite(sv).all())
    if not finite:
        reasons.append(f"{int((~np.isfinite(sv)).sum())} non-finite scores (float overflow?)")
    agreement = float(np.mean(v32 == vv))
    if agreement < min_verdict_agreement:
        reasons.append(f"verdict agreement {agreement:.4f} < {min_verdict_agreement}")
    a32 = _auroc(labels, s32)
    av = _auroc(labels, np.nan_to_num(sv, nan=np.inf)) if a32 is not None else None
    drop = None if a32 is None or av is None else a32 - av
    if drop is not None and drop > max_auroc_drop:
        reasons.append(f"AUROC {av:.4f} is {drop:.4f} below fp32's {a32:.4f} (> {max_auroc_drop})")
    diff = np.abs(sv - s32)
    rel = diff / np.maximum(np.abs(s32), np.finfo(np.float32).tiny)
    fin = np.isfinite(rel)
    return GateReport(
        precision=precision, images=int(n), verdict_agreement=agreement, auroc_fp32=a32, auroc=av,
        auroc_drop=drop,
        score_drift_mean=float(rel[fin].mean()) if fin.any() else math.inf,
        score_drift_max=float(rel.max()) if finite else math.inf,
        score_abs_drift_max=float(diff.max()) if finite else math.inf,
        accepted=not reasons, reasons=reasons,
        min_verdict_agreement=min_verdict_agreement, max_auroc_drop=max_auroc_drop,
    )


ScoreFn = Callable[[str], "tuple[np.ndarray, np.ndarray]"]


def gate_variants(precisions: Sequence[str], labels: np.ndarray, score_fn: ScoreFn, **gate_options) -> dict[str, GateReport]:
    """Runs ``score_fn(precision) -> (scores, verdicts)`` on the validation set for fp32 and each
    requested variant and gates each variant against fp32. Returns {precision: report} (no fp32)."""
    s32, v32 = score_fn("fp32")
    return {p: accuracy_gate(p, labels, s32, v32, *score_fn(p), **gate_options) for p in precisions if p != "fp32"}
