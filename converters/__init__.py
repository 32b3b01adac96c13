"""Converters from a trained model to deployable artifacts: ONNX export and bundle writing
(onnx_export.py), precision variants (precision.py), TensorRT engines (trt_builder.py)."""

from .onnx_export import (
    ExportError,
    ExportReport,
    ParityResult,
    export_bundle,
    export_onnx,
    onnx_vs_torch,
)

__all__ = ["ExportError", "ExportReport", "ParityResult", "export_bundle", "export_onnx", "onnx_vs_torch"]
