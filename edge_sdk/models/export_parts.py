"""What a trained model hands to the converter: networks, arrays and the recipe around them.

The runtime reproduces a model's ``predict`` from these parts alone (parity to 1e-4 relative), so
everything that shapes a score lives here: the network(s) that go into ONNX, the arrays the
post-processing kernels consume, the preprocessing, the post-processing recipe and the calibration.
See CONTRACTS.md ("Models") for the agreed layout; fields beyond it are optional and defaulted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

POSTPROCESS_KINDS = ("mahalanobis", "knn", "mhbc", "ssim", "mask", "classifier")
ARRAY_DTYPES = (np.float32, np.float16, np.int64)


@dataclass
class ExportParts:
    """Parts of a trained model, as the converter and the runtime consume them.

    networks: name -> (torch.nn.Module, input names, output names). Each module takes the
        preprocessed float32 (N, C, H, W) tensor(s) and returns exactly what the kernels consume.
    arrays: name -> np.ndarray (float32 / float16 / int64), C-contiguous, for the kernels.
    preprocess: dict(height, width, channels, mean, std, scale, resize="bilinear", antialias=False),
        the arguments of ``edge_sdk.kernels.preprocess``.
    postprocess: dict with "kind" in POSTPROCESS_KINDS plus kind-specific keys (which network output
        holds the features, the feature grid (h, w), k, reweighting, map upsampling "bilinear",
        blur sigma, where the image score is taken: "max_raw" or "max_blurred").
    calibration: dict(threshold, min, max): raw-score threshold and normalization statistics for
        ``edge_sdk.kernels.calibrated_normalize``.
    regions: optional list of dict(name, x, y, width, height, threshold).
    tiling: optional ``input.tiling`` dict(tile, stride, merge) plus ``frame`` dict(width, height)
        (edge_sdk.tiling.Tiling.to_dict); set by the exporter from the model's training record.
    metadata: optional free-form, JSON-serializable description (model name, training settings);
        never needed to reproduce a score.
    tolerances: optional network output name -> the ONNX-vs-PyTorch parity tolerance of that output
        (relative to its largest magnitude) where the converter's default does not fit it.
    """

    networks: dict[str, tuple[Any, list[str], list[str]]]
    arrays: dict[str, np.ndarray]
    preprocess: dict[str, Any]
    postprocess: dict[str, Any]
    calibration: dict[str, float]
    regions: list[dict[str, Any]] | None = None
    tiling: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    tolerances: dict[str, float] = field(default_factory=dict)

    def validate(self) -> "ExportParts":
        """Checks the structure (not the numbers); raises ValueError naming the offending field."""
        if not isinstance(self.networks, dict):
            raise ValueError("ExportParts.networks must be a dict name -> (module, inputs, outputs)")
        for name, entry in self.networks.items():
            if not (isinstance(entry, tuple) and len(entry) == 3):
                raise ValueError(f"ExportParts.networks[{name!r}] must be (module, input_names, output_names)")
            module, inputs, outputs = entry
            if not callable(module):
                raise ValueError(f"ExportParts.networks[{name!r}][0] is not a callable module")
            for what, names in (("input", inputs), ("output", outputs)):
                if not names or not all(isinstance(n, str) and n for n in names):
                    raise ValueError(f"ExportParts.networks[{name!r}] {what} names must be non-empty strings")
        for name, arr in self.arrays.items():
            if not isinstance(arr, np.ndarray):
                raise ValueError(f"ExportParts.arrays[{name!r}] is not a numpy array")
            if arr.dtype.type not in ARRAY_DTYPES:
                raise ValueError(f"ExportParts.arrays[{name!r}] has dtype {arr.dtype}; allowed: float32, float16, int64")
            if not arr.flags.c_contiguous:
                raise ValueError(f"ExportParts.arrays[{name!r}] is not C-contiguous")
        for key in ("height", "width", "channels", "mean", "std", "scale"):
            if key not in self.preprocess:
                raise ValueError(f"ExportParts.preprocess lacks {key!r}")
        if self.postprocess.get("kind") not in POSTPROCESS_KINDS:
            raise ValueError(f"ExportParts.postprocess['kind'] must be one of {POSTPROCESS_KINDS}, "
                             f"got {self.postprocess.get('kind')!r}")
        for key in ("threshold", "min", "max"):
            if key not in self.calibration:
                raise ValueError(f"ExportParts.calibration lacks {key!r}")
        for i, region in enumerate(self.regions or []):
            for key in ("name", "x", "y", "width", "height", "threshold"):
                if key not in region:
                    raise ValueError(f"ExportParts.regions[{i}] lacks {key!r}")
        outputs = {o for _, _, outs in self.networks.values() for o in outs}
        for name, tol in self.tolerances.items():
            if name not in outputs:
                raise ValueError(f"ExportParts.tolerances[{name!r}]: not an output of any network")
            if not (isinstance(tol, (int, float)) and 0 < tol <= 1e-2):
                raise ValueError(f"ExportParts.tolerances[{name!r}]: expected a number in (0, 0.01], got {tol!r}")
        return self
