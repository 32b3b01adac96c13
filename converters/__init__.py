"""Converters from trained models to deployable artifacts: PyTorch -> ONNX -> bundle
(:mod:`converters.onnx_export`); precision variants and TensorRT engines build on these bundles."""

from converters.onnx_export import (
    ExportError,
    ExportReport,
    ParityResult,
    export_bundle,
    export_onnx,
    onnx_vs_torch,
)

__all__ = ["ExportError", "ExportReport", "ParityResult", "export_bundle", "export_onnx", "onnx_vs_torch"]
