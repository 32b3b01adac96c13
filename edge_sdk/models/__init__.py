"""Models trained in PyTorch on good images only (see docs/ARCHITECTURE.md, "Models").

Every model offers fit / predict / save / load / export_parts; ``ExportParts`` is what the
converter and the runtime consume. ``load_model(dir)`` reopens any saved model by the kind
recorded in its config.json.
"""

from __future__ import annotations

import importlib

from edge_sdk.models.export_parts import ExportParts

# model name (config.json "model") -> "module:class"; imported on use so that importing
# edge_sdk.models stays cheap.
MODEL_CLASSES = {
    "padim": "edge_sdk.models.padim:PaDiM",
    "patchcore": "edge_sdk.models.patchcore:PatchCore",
    "mhbc": "edge_sdk.models.mhbc:MhBC",
}
# reconstruction models (ResGANAD, GRD-Net): names kept in registry.py with their CLI options
from edge_sdk.models.registry import RECON_MODELS  # noqa: E402

MODEL_CLASSES.update(RECON_MODELS)


def model_class(name: str):
    if name not in MODEL_CLASSES:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODEL_CLASSES)}")
    module, cls = MODEL_CLASSES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def load_model(model_dir, **kw):
    """Reopens a model directory written by ``save`` (any registered model kind)."""
    from edge_sdk.models.storage import read_config

    return model_class(read_config(model_dir)["model"]).load(model_dir, **kw)


def __getattr__(name):
    lazy = {"PaDiM": "padim", "PatchCore": "patchcore", "MhBC": "mhbc", "ResGANAD": "resganad", "GRDNet": "grdnet"}
    if name in lazy:
        return model_class(lazy[name])
    if name == "Prediction":
        from edge_sdk.models.base import Prediction

        return Prediction
    raise AttributeError(name)


__all__ = ["ExportParts", "MODEL_CLASSES", "model_class", "load_model", "PaDiM", "PatchCore", "MhBC", "ResGANAD",
           "GRDNet", "Prediction"]
