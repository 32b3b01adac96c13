"""The one registry of model kinds. Each model class registers itself where it is defined:

    @register_model("padim", family="embedding")
    class PaDiM(EmbeddingModel): ...

(as timm registers its models). The name is the ``model`` field of a saved model's config.json,
the ``--model`` value of `edge-sdk train` and the bundle's model type; the family ("embedding", "reconstruction", or "supervised" for the
classifiers trained on labelled defects) tells the command line which training options apply.
"""

from __future__ import annotations

import importlib
import os

FAMILIES = ("embedding", "reconstruction", "supervised")

# Modules holding the built-in models, imported on the first look-up rather than with
# edge_sdk.models: they import torch, which `edge-sdk --help` or the runtime never need.
_BUILTIN_MODULES = ("padim", "patchcore", "mhbc", "resganad", "grdnet", "classifier")

_REGISTRY: dict[str, type] = {}


def register_model(name: str, *, family: str):
    """Class decorator: registers ``cls`` under ``name`` and sets ``cls.name`` / ``cls.family``."""
    if family not in FAMILIES:
        raise ValueError(f"register_model({name!r}): family must be one of {FAMILIES}, got {family!r}")

    def decorate(cls: type) -> type:
        known = _REGISTRY.get(name)
        if known is not None and known.__qualname__ != cls.__qualname__:
            raise ValueError(f"register_model: {name!r} is already {known.__module__}.{known.__qualname__}, "
                             f"cannot register {cls.__module__}.{cls.__qualname__} under it")
        cls.name, cls.family = name, family
        _REGISTRY[name] = cls
        return cls

    return decorate


def _load_builtin() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(f"edge_sdk.models.{module}")


def model_names(family: str | None = None) -> list[str]:
    """Registered model names (of one family when given), sorted."""
    _load_builtin()
    return sorted(n for n, c in _REGISTRY.items() if family is None or c.family == family)


def model_class(name: str) -> type:
    """The class registered as ``name``; ValueError listing the known names otherwise."""
    if name not in _REGISTRY:
        _load_builtin()
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(model_names())}")
    return _REGISTRY[name]


def load_model(model_dir: str | os.PathLike, **kw):
    """Reopens a model directory written by ``save``, by the kind its config.json records.
    Raises ModelFormatError (a ValueError) naming the directory when it is not a model or holds
    an unknown kind."""
    from edge_sdk.models.storage import ModelFormatError, read_config

    name = read_config(model_dir).get("model")
    try:
        cls = model_class(name)
    except ValueError as exc:
        raise ModelFormatError(f"{os.fspath(model_dir)}/config.json: {exc}") from exc
    return cls.load(model_dir, **kw)
