"""Synthetic anomalies for training, calibration and the automatic choice of settings: Perlin-noise
anomalies (DRAEM style), pasting of real defects cut by their masks, CutPaste patches and thin
scratches."""

from edge_sdk.synthesis.cutpaste import cutpaste
from edge_sdk.synthesis.paste import Defect, DefectLibrary, paste_defect
from edge_sdk.synthesis.perlin import PerlinAnomaly, perlin_anomaly, perlin_batch, perlin_mask, perlin_noise
from edge_sdk.synthesis.scratch import scratch

__all__ = ["Defect", "DefectLibrary", "paste_defect", "PerlinAnomaly", "perlin_anomaly", "perlin_batch",
           "perlin_mask", "perlin_noise", "cutpaste", "scratch"]
