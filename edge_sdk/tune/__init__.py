"""Settings chosen without the test split (``edge-sdk train --auto``).

    from edge_sdk.tune import auto_search, auto_train
    result = auto_search(train, models=("padim", "mhbc"), budget_minutes=20)
    print(table(result)); result.chosen            # the winning candidate and its figures
    model = auto_train(train)                       # search, then train the choice on every image

A seeded share of the good training images is held out and given synthetic anomalies
(validation.py); every candidate of a small declared space (space.py) is fitted on the rest and
scored on them (search.py); the winner is trained on all good images and calibrated as `fit` does.
Reconstruction models (resganad, grdnet) are searched on their own, over a smaller space of
trainings (recon.py). The test split is never read.
"""

from __future__ import annotations

from typing import Callable, Sequence

from edge_sdk.tune import space
from edge_sdk.tune.search import SearchResult, run_search, select, table
from edge_sdk.tune.validation import SYNTHESES, ValidationSet, hold_out, load_defect_folder

__all__ = ["auto_search", "auto_train", "SearchResult", "ValidationSet", "table", "select", "space",
           "load_defect_folder", "SYNTHESES"]


def _check_options(common: dict | None, options: dict | None) -> tuple[dict, dict]:
    common, options = dict(common or {}), {k: dict(v) for k, v in (options or {}).items()}
    searched = set(space.SEARCHED) | {"image_score", "seed", "bottleneck", "filters"}
    for where, opts in [("common", common)] + [(f"options[{m!r}]", o) for m, o in options.items()]:
        clash = sorted(searched & set(opts))
        if clash:
            raise ValueError(f"{where}: {clash} are chosen by the search (seed: give seed=); leave them out")
    return common, options


def auto_search(train, *, models: Sequence[str] = space.MODELS, common: dict | None = None,
                options: dict | None = None, holdout: float = 0.2, seed: int = 0,
                kinds: Sequence[str] = SYNTHESES, defect_library=None, labelled=None,
                budget_minutes: float | None = 60.0, progress: bool = True, report_sets: dict | None = None,
                log: Callable[[str], None] | None = None) -> SearchResult:
    """Searches the space for ``models`` on ``train`` (good images only; the test split is never
    needed). common: options of every model (input_size, batch_size, blur_sigma, highpass_window,
    device); options: {model: its own options} (e.g. {"mhbc": {"k": 4}}); holdout: share of the good
    images held out to validate on (seeded); kinds: synthesis kinds (perlin, cutpaste, scratch);
    defect_library: an edge_sdk.synthesis.DefectLibrary to paste from; labelled: a labelled data set
    used beside the synthetic anomalies; report_sets: see run_search (studies only)."""
    from edge_sdk.models import model_class
    from edge_sdk.tune import validation

    from edge_sdk.tune import recon

    reconstruction = bool(models) and set(models) <= set(recon.MODELS)
    models = recon.check_models(models) if reconstruction else space.check_models(models)
    common, options = _check_options(common, options)
    fit_idx, held = hold_out(len(train), holdout, seed)
    val = validation.build(train, held, seed, kinds=kinds, library=defect_library, labelled=labelled)
    if reconstruction:
        def make_recon(name: str, settings: dict):
            return model_class(name)(**{**common, **options.get(name, {}), **settings, "seed": seed})

        result = recon.run_search(train, fit_idx, val, make_model=make_recon, models=models, seed=seed,
                                  budget_minutes=budget_minutes, progress=progress, log=log)
        result.validation["holdout"] = holdout
        return result

    def make_model(c: space.Candidate):
        return model_class(c.model)(**{**common, **options.get(c.model, {}), **c.settings(), "seed": seed})

    result = run_search(train, fit_idx, val, make_model=make_model, models=models, seed=seed,
                        budget_minutes=budget_minutes, progress=progress, report_sets=report_sets, log=log)
    result.validation["holdout"] = holdout
    return result


def auto_train(train, *, val_dataset=None, models: Sequence[str] = space.MODELS, common: dict | None = None,
               options: dict | None = None, seed: int = 0, val_fraction: float = 0.1,
               threshold_method: str | None = None, quantile: float = 0.99, progress: bool = True, **search):
    """auto_search (``val_dataset``, a labelled set, is used beside the synthetic anomalies), then
    the chosen configuration trained on every good image of ``train`` and calibrated as
    ``AnomalyModel.fit`` does; the search's record is in ``model.training_info["auto"]``."""
    from edge_sdk.models import model_class

    result = auto_search(train, models=models, common=common, options=options, seed=seed, labelled=val_dataset,
                         progress=progress, **search)
    common, options = _check_options(common, options)
    name = result.chosen["model"]
    model = model_class(name)(**{**common, **options.get(name, {}), **result.chosen_settings(), "seed": seed})
    model.fit(train, val_dataset=val_dataset, val_fraction=val_fraction, threshold_method=threshold_method,
              quantile=quantile, progress=progress)
    model.training_info["auto"] = result.record()
    return model
