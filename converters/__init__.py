"""Converters from a trained model to deployable artifacts: ONNX export, precision variants
(precision.py), TensorRT engines (trt_builder.py)."""
