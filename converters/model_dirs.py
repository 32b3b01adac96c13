"""Reopening a saved model directory (config.json + safetensors) through the models' own ``load``,
whatever kind it holds (embedding models and reconstruction models)."""

from __future__ import annotations

import importlib
import os


def load_trained_model(model_dir: str | os.PathLike, *, device: str = "cpu"):
    """The model saved in ``model_dir``, via its class's ``load``. Raises ValueError naming the
    directory for an unknown kind or a directory that is not a model."""
    from edge_sdk.models.registry import RECON_MODELS
    from edge_sdk.models.storage import read_config

    name = read_config(model_dir).get("model")
    models = importlib.import_module("edge_sdk.models")
    classes = dict(getattr(models, "MODEL_CLASSES", {}))
    classes.update(RECON_MODELS)
    if name not in classes:
        raise ValueError(f"{model_dir}: config.json names model {name!r}; this SDK knows {sorted(classes)}")
    module, cls = classes[name].split(":")
    return getattr(importlib.import_module(module), cls).load(model_dir, device=device)
