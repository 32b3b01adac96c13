"""Synthetic anomalies for training and calibration: Perlin-noise anomalies (DRAEM style) and
pasting of real defects cut by their masks."""

from edge_sdk.synthesis.paste import Defect, DefectLibrary, paste_defect
from edge_sdk.synthesis.perlin import PerlinAnomaly, perlin_anomaly, perlin_batch, perlin_mask, perlin_noise

__all__ = ["Defect", "DefectLibrary", "paste_defect", "PerlinAnomaly", "perlin_anomaly", "perlin_batch",
           "perlin_mask", "perlin_noise"]
