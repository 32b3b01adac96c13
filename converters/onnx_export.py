"""PyTorch -> ONNX -> bundle.

Only the network parts of a model are exported (``ExportParts.networks``: the feature extractor,
or the generator of a reconstruction model). Memory banks, Gaussian statistics, k-NN,
Mahalanobis, SSIM and the heatmap steps stay outside the graph: the runtime's kernels run them
from ``ExportParts.arrays`` and ``ExportParts.postprocess``.

Each graph has a dynamic batch axis, opset 17 or newer, passes ``onnx.checker`` (full check) and
is run by onnxruntime against the PyTorch module on random inputs and, when given, on real
images; a graph whose outputs differ by more than the tolerance is refused and nothing is written.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edge_sdk.bundle import build_manifest, check_bundle_target, input_spec, network_entry, write_bundle

MIN_OPSET = 17
DEFAULT_OPSET = 17
#: Largest accepted |onnx - torch| relative to the output's largest magnitude.
DEFAULT_TOLERANCE = 1e-4


class ExportError(ValueError):
    """A network that cannot be exported faithfully (export failure, checker failure, or outputs
    outside the tolerance). The message names the network and the figures."""


@dataclass
class ParityResult:
    network: str
    output: str
    inputs: str          # "random" or "real"
    count: int           # images compared
    max_abs_diff: float
    max_abs_ref: float   # largest |torch output|
    rel_diff: float      # max_abs_diff / max_abs_ref
    tolerance: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.rel_diff) and self.rel_diff <= self.tolerance)

    def __str__(self) -> str:
        return (f"{self.network}.{self.output} on {self.count} {self.inputs} input(s): max |onnx - torch| = "
                f"{self.max_abs_diff:.3g} ({self.rel_diff:.3g} of max |torch| = {self.max_abs_ref:.3g}; "
                f"tolerance {self.tolerance:g}) {'ok' if self.passed else 'REFUSED'}")


@dataclass
class ExportReport:
    bundle: Path | None
    opset: int
    parity: list[ParityResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.parity)

    def __str__(self) -> str:
        lines = [f"bundle: {self.bundle}", f"opset: {self.opset}"] + [f"  {p}" for p in self.parity]
        return "\n".join(lines)


def _fix_output_shapes(model, shapes: Mapping[str, Sequence[int]]) -> None:
    """Declares each graph output's dimensions after the batch axis as the sizes PyTorch produced:
    the exporter leaves them symbolic behind reshapes, and the runtime sizes its buffers from them."""
    for out in model.graph.output:
        if out.name not in shapes:
            continue
        dims = out.type.tensor_type.shape.dim
        want = list(shapes[out.name])
        del dims[:]
        for i, d in enumerate(want):
            dim = dims.add()
            if i == 0:
                dim.dim_param = "batch"
            else:
                dim.dim_value = int(d)


def export_onnx(
    module: Any,
    example: Sequence[Any],
    input_names: Sequence[str],
    output_names: Sequence[str],
    *,
    opset: int = DEFAULT_OPSET,
) -> bytes:
    """Exports ``module`` (eval mode, no grad) to a serialized ONNX model with a dynamic batch
    axis on every input and output and every other output dimension fixed to what the module
    produces on ``example``; checked with ``onnx.checker`` (full check, with shape inference)."""
    import onnx
    import torch

    if opset < MIN_OPSET:
        raise ExportError(f"opset: {opset} requested, bundles need {MIN_OPSET} or newer")
    module = module.eval()
    dynamic = {n: {0: "batch"} for n in list(input_names) + list(output_names)}
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript-based exporter is deprecated in favour of the dynamo one, which needs
        # the extra onnxscript package; the graphs it writes are equivalent for these networks.
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module, tuple(example), buf, dynamo=False, input_names=list(input_names),
                              output_names=list(output_names), opset_version=opset, dynamic_axes=dynamic,
                              do_constant_folding=True)
        except Exception as exc:  # the exporter raises many types; name the network's I/O
            raise ExportError(f"torch.onnx.export failed for inputs {list(input_names)}: {exc}") from exc
    with torch.no_grad():
        outs = module(*example)
    if isinstance(outs, torch.Tensor):
        outs = (outs,)
    if isinstance(outs, Mapping):
        outs = [outs[o] for o in output_names]
    if len(outs) != len(output_names):
        raise ExportError(f"the module returns {len(outs)} tensor(s), output names {list(output_names)}")
    model = onnx.load_from_string(buf.getvalue())
    _fix_output_shapes(model, {n: tuple(t.shape) for n, t in zip(output_names, outs)})
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ExportError(f"onnx.checker refused the exported graph: {exc}") from exc
    return model.SerializeToString()


def _session(model_bytes: bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


def onnx_vs_torch(
    network: str,
    module: Any,
    model_bytes: bytes,
    inputs: Sequence[np.ndarray],
    input_names: Sequence[str],
    output_names: Sequence[str],
    *,
    kind: str,
    tolerance: float = DEFAULT_TOLERANCE,
    batch: int = 8,
    tolerances: Mapping[str, float] | None = None,
) -> list[ParityResult]:
    """Runs the ONNX model in onnxruntime and the module in PyTorch on the same float32 inputs
    (one array per input name, batch first) and reports each output's largest difference, judged
    against ``tolerances[output]`` where given, else ``tolerance``."""
    import torch

    sess = _session(model_bytes)
    n = len(inputs[0])
    diff = {o: 0.0 for o in output_names}
    ref = {o: 0.0 for o in output_names}
    with torch.no_grad():
        for b in range(0, n, batch):
            chunk = [np.ascontiguousarray(x[b:b + batch], dtype=np.float32) for x in inputs]
            got = sess.run(list(output_names), dict(zip(input_names, chunk)))
            want = module.eval()(*[torch.from_numpy(c) for c in chunk])
            if isinstance(want, torch.Tensor):
                want = (want,)
            if isinstance(want, Mapping):
                want = [want[o] for o in output_names]
            for o, g, w in zip(output_names, got, want):
                w = w.detach().cpu().numpy().astype(np.float64)
                if g.shape != w.shape:
                    raise ExportError(f"{network}.{o}: onnxruntime output shape {g.shape} != torch {w.shape}")
                diff[o] = max(diff[o], float(np.max(np.abs(g.astype(np.float64) - w))) if w.size else 0.0)
                ref[o] = max(ref[o], float(np.max(np.abs(w))) if w.size else 0.0)
                if not np.all(np.isfinite(g)):
                    diff[o] = float("inf")
    tolerances = tolerances or {}
    return [ParityResult(network, o, kind, n, diff[o], ref[o], diff[o] / max(ref[o], 1e-30),
                         float(tolerances.get(o, tolerance))) for o in output_names]


def preprocess_images(images: Any, pre: Mapping[str, Any]) -> np.ndarray:
    """Real images through THE preprocessing (edge_sdk.kernels.preprocess), as the runtime does:
    a list of (H, W[, C]) images of any sizes or an (N, H, W, C) array -> (N, C, H, W) float32.
    An (N, C, H, W) float32 array of the input size is taken as already preprocessed."""
    from edge_sdk import kernels

    c, h, w = int(pre["channels"]), int(pre["height"]), int(pre["width"])
    if isinstance(images, np.ndarray) and images.ndim == 4 and images.dtype == np.float32 and \
            images.shape[1:] == (c, h, w):
        return images
    out = []
    for img in images:
        img = np.asarray(img)
        img = img if img.ndim == 3 else img[..., None]
        out.append(kernels.preprocess(np.ascontiguousarray(img[None]), (h, w), mean=pre["mean"], std=pre["std"],
                                      channels=c, scale=pre.get("scale", 1.0 / 255.0))[0])
    return np.stack(out)


def export_bundle(
    parts: Any,
    out: str | Path,
    *,
    model_type: str,
    model_name: str = "",
    real_images: np.ndarray | None = None,
    random_count: int = 4,
    tolerance: float = DEFAULT_TOLERANCE,
    opset: int = DEFAULT_OPSET,
    seed: int = 0,
    on_size_mismatch: str = "resize",
    review_band: float = 0.0,
    run_vote: tuple[int, int] | None = None,
    acquisition_frames: int | None = None,
    meanings: Mapping[str, str] | None = None,
    overwrite: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> ExportReport:
    """Exports a model's ``ExportParts`` into a bundle at ``out``.

    Each network is exported (:func:`export_onnx`) and compared with PyTorch on ``random_count``
    standard-normal inputs of the preprocessed shape and, when ``real_images`` is given (uint8 or
    float32 HWC images of any sizes, or already preprocessed NCHW float32), on those. If any output differs
    by more than ``tolerance`` (relative to its largest magnitude) ExportError is raised and
    nothing is written. Returns the report (bundle path, opset, parity figures).
    """
    check_bundle_target(out, overwrite)  # before the exports, which take a while
    pre = dict(parts.preprocess)
    c, h, w = int(pre["channels"]), int(pre["height"]), int(pre["width"])
    rng = np.random.default_rng(seed)
    random_inputs = rng.standard_normal((random_count, c, h, w)).astype(np.float32)
    real = preprocess_images(real_images, pre) if real_images is not None else None
    meanings = dict(meanings or {})

    report = ExportReport(bundle=None, opset=opset)
    onnx_files: dict[str, bytes] = {}
    entries = []
    import torch

    # Networks run in order; an input named like an output of an earlier network (GRD-Net's mask
    # head reads the reconstruction) is fed that output, every other input the preprocessed image.
    # Each network is compared on the PyTorch values of its inputs, so the figures are its own.
    sets = {"random": {}, "real": {}} if real is not None else {"random": {}}
    images = {"random": random_inputs, "real": real}
    produced: dict[str, str] = {}  # tensor name -> network that produces it
    for name, (module, input_names, output_names) in parts.networks.items():
        module = module.eval()

        def feed(kind: str) -> list[np.ndarray]:
            return [sets[kind][i] if i in produced else images[kind] for i in input_names]

        example = [torch.from_numpy(np.ascontiguousarray(x[:2])) for x in feed("random")]
        data = export_onnx(module, example, input_names, output_names, opset=opset)
        for kind in sets:
            inputs = feed(kind)
            report.parity += onnx_vs_torch(name, module, data, inputs, input_names, output_names, kind=kind,
                                           tolerance=tolerance, tolerances=getattr(parts, "tolerances", None))
            with torch.no_grad():
                outs = module(*[torch.from_numpy(np.ascontiguousarray(x)) for x in inputs])
            if isinstance(outs, torch.Tensor):
                outs = (outs,)
            if isinstance(outs, Mapping):
                outs = [outs[o] for o in output_names]
            sets[kind].update({o: t.detach().cpu().numpy().astype(np.float32) for o, t in zip(output_names, outs)})
        file = f"{name}.onnx"
        onnx_files[file] = data
        in_specs = []
        for i, x in zip(input_names, feed("random")):
            default = f"output of network {produced[i]}" if i in produced else "preprocessed image (N, C, H, W)"
            in_specs.append((i, (-1,) + tuple(x.shape[1:]), meanings.get(i, default)))
        entries.append(network_entry(
            name, file, in_specs,
            [(o, (-1,) + tuple(sets["random"][o].shape[1:]), meanings.get(o, f"{name} output")) for o in output_names],
        ))
        produced.update({o: name for o in output_names})
    failed = [p for p in report.parity if not p.passed]
    if failed:
        raise ExportError("ONNX graph does not match PyTorch within tolerance; nothing written:\n" +
                          "\n".join(f"  {p}" for p in failed))

    post = dict(parts.postprocess)
    frame = post.pop("frame", None)  # the manifest keeps the frame next to the regions
    manifest = build_manifest(
        model_type=model_type,
        model_name=model_name,
        input=input_spec(pre, on_size_mismatch=on_size_mismatch),
        networks=entries,
        arrays=parts.arrays,
        postprocess=post,
        calibration=parts.calibration,
        regions=getattr(parts, "regions", None),
        frame=frame if frame is not None or not getattr(parts, "tiling", None) else parts.tiling.get("frame"),
        tiling=getattr(parts, "tiling", None),
        review_band=review_band,
        run_vote=run_vote,
        acquisition_frames=acquisition_frames,
        extra=extra,
    )
    report.bundle = write_bundle(out, manifest, onnx_files, parts.arrays, overwrite=overwrite)
    return report
