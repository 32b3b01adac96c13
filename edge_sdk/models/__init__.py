"""Models trained in PyTorch on good images only (see docs/ARCHITECTURE.md, "Models"), and the
supervised defect classifier trained on labelled defects (classifier.py).

Every model follows one contract (fit / predict / calibrate / save / load / export_parts) and
registers itself with ``@register_model`` (registry.py); ``ExportParts`` is what the converter
and the runtime consume. ``load_model(dir)`` reopens any saved model by the kind recorded in its
config.json.
"""

from __future__ import annotations

from edge_sdk.models.export_parts import ExportParts
from edge_sdk.models.registry import load_model, model_class, model_names, register_model


def __getattr__(name):
    # Model classes resolve on use so that importing edge_sdk.models does not import torch.
    lazy = {"PaDiM": "padim", "PatchCore": "patchcore", "MhBC": "mhbc", "ResGANAD": "resganad", "GRDNet": "grdnet",
            "DefectClassifier": "classifier"}
    if name in lazy:
        return model_class(lazy[name])
    if name == "Prediction":
        from edge_sdk.models.base import Prediction

        return Prediction
    raise AttributeError(name)


__all__ = ["ExportParts", "model_class", "model_names", "load_model", "register_model", "PaDiM", "PatchCore", "MhBC",
           "ResGANAD", "GRDNet", "DefectClassifier", "Prediction"]
