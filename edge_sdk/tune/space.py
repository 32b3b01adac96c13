"""The declared search space of the automatic choice of settings (``edge-sdk train --auto``).

A candidate is one embedding model with one backbone setting (input normalization, antialiased
resize), one set of EfficientNet-Lite0 taps and, for PaDiM, one channel count d; each candidate is
scored with both image scores at once (max of the raw grid, max of the blurred map), which cost one
scoring. Candidates of one backbone setting share its features: the taps of all of them are
computed once per image (edge_sdk.tune.search).

The space is small on purpose: every point is scored on validation images, and a few hundred
images cannot rank thousands of settings without the choice fitting them by chance.

- input_norm: fixed, per_image, per_image_highpass;  antialias: on, off
- taps: stride 8 + 16 (the default), stride 8 + blocks.7 + stride 16, blocks.7 + stride 16
- padim: d = 100 (the default) or every channel of the taps;  mhbc: K as given (default 4)
- patchcore: stride 8 + 16 only, its other options as given: its coreset and k-NN scoring cost
  several times a Gaussian model's, so its taps are not searched
- image score: max_raw, max_blurred

Reconstruction models (ResGANAD, GRD-Net) have a space of their own (recon.py): each of their
settings is a training of its own (minutes to hours), with no features to share between candidates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

INPUT_NORMS = ("fixed", "per_image", "per_image_highpass")
ANTIALIAS = (True, False)
TAPS = (("stride8", "stride16"), ("stride8", "blocks.7", "stride16"), ("blocks.7", "stride16"))
PADIM_D = (100, None)  # None: every channel of the taps
IMAGE_SCORES = ("max_raw", "max_blurred")
MODELS = ("padim", "mhbc", "patchcore")  # searched in this order: cheapest to train and run first
MODEL_TAPS = {"padim": TAPS, "mhbc": TAPS, "patchcore": TAPS[:1]}
# Settings the search chooses; the other model options (input size, seed, eps, K, coreset ratio, ...)
# are the same for every candidate.
SEARCHED = ("model", "layers", "d", "input_norm", "antialias", "image_score")
MAX_CANDIDATES = 256  # bound on the candidates of one search (the full space has 60)


@dataclass(frozen=True)
class Candidate:
    """One point of the space without its image score (both are scored from one fit)."""

    model: str
    layers: tuple[str, ...]
    input_norm: str
    antialias: bool
    d: int | None = None  # padim only; None = every channel of the taps

    def settings(self) -> dict:
        """Keyword arguments of the model class for this candidate."""
        out = {"layers": list(self.layers), "input_norm": self.input_norm, "antialias": self.antialias}
        if self.model == "padim":
            out["d"] = self.d
        return out

    def backbone_key(self) -> tuple[str, bool]:
        """What the network input depends on: candidates with the same key share their taps."""
        return self.input_norm, self.antialias

    def describe(self) -> dict:
        return {"model": self.model, "layers": list(self.layers), "input_norm": self.input_norm,
                "antialias": self.antialias, **({"d": self.d if self.d is not None else "all"}
                                                if self.model == "padim" else {})}


def check_models(models: Sequence[str]) -> tuple[str, ...]:
    """The model names to search, in the search order; ValueError naming the argument otherwise."""
    models = tuple(models)
    if not models:
        raise ValueError("models: at least one model to search")
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        from edge_sdk.models import model_class

        families = []
        for m in unknown:
            try:
                families.append(f"{m} ({model_class(m).family})")
            except ValueError:
                families.append(f"{m} (unknown)")
        raise ValueError(f"models: {', '.join(families)} cannot be searched with the embedding models "
                         f"{', '.join(MODELS)}; the reconstruction models (resganad, grdnet) are searched on their "
                         f"own, in a smaller space (each setting is a training from scratch)")
    return tuple(m for m in MODELS if m in models)


def candidates(models: Sequence[str] = MODELS) -> list[Candidate]:
    """Every candidate of the space for ``models``, grouped by backbone setting (the defaults'
    setting first), cheapest model first within a setting; the very first is the default
    configuration of the first model, so a search stopped by its budget has scored at least it."""
    models = check_models(models)
    out = []
    for norm in INPUT_NORMS:
        for aa in ANTIALIAS:
            for m in models:
                for taps in MODEL_TAPS[m]:
                    for d in (PADIM_D if m == "padim" else (None,)):
                        out.append(Candidate(m, taps, norm, aa, d))
    if len(out) > MAX_CANDIDATES:
        raise AssertionError(f"the declared space has {len(out)} candidates, more than {MAX_CANDIDATES}")
    return out


def declared(models: Sequence[str] = MODELS) -> dict:
    """The space as recorded in the model directory."""
    models = check_models(models)
    return {"models": list(models), "input_norm": list(INPUT_NORMS), "antialias": list(ANTIALIAS),
            "layers": {m: [list(t) for t in MODEL_TAPS[m]] for m in models},
            **({"padim_d": [d if d is not None else "all" for d in PADIM_D]} if "padim" in models else {}),
            "image_score": list(IMAGE_SCORES),
            "candidates": len(candidates(models)) * len(IMAGE_SCORES)}
