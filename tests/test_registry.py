"""The model registry: classes register by decorator; names, families and look-ups come from it."""

import json

import numpy as np

import pytest

pytest.importorskip("torch")

from edge_sdk.models import registry  # noqa: E402


def test_builtin_models_register_themselves():
    assert registry.model_names("embedding") == ["mhbc", "padim", "patchcore"]
    assert registry.model_names("reconstruction") == ["grdnet", "resganad"]
    assert registry.model_names("supervised") == ["classifier"]
    for name in registry.model_names():
        cls = registry.model_class(name)
        assert cls.name == name and cls.__module__ == f"edge_sdk.models.{name}"


def test_register_model_refuses_a_taken_name_and_an_unknown_family():
    with pytest.raises(ValueError, match="'padim' is already edge_sdk.models.padim.PaDiM"):
        @registry.register_model("padim", family="embedding")
        class Other:
            pass
    with pytest.raises(ValueError, match="family must be one of"):
        registry.register_model("x", family="gan")
    assert registry.model_class("padim").__name__ == "PaDiM"


def test_unknown_names_are_refused_with_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown model 'nope'; known: classifier, grdnet, mhbc, padim, patchcore, resganad"):
        registry.model_class("nope")
    from edge_sdk.models.storage import FORMAT, VERSION, ModelFormatError

    (tmp_path / "config.json").write_text(json.dumps({"format": FORMAT, "version": VERSION, "model": "nope"}))
    with pytest.raises(ModelFormatError, match=r"config.json: unknown model 'nope'"):
        registry.load_model(tmp_path)


def test_train_names_a_model_that_is_not_registered(capsys, tmp_path):
    from edge_sdk import cli

    rc = cli.main(["train", "--model", "nope", "--data", str(tmp_path), "--layout", "folder", "--out", str(tmp_path / "m")])
    assert rc == 2 and "unknown model 'nope'" in capsys.readouterr().err


def test_every_model_follows_one_contract_with_one_fit_and_one_calibration():
    from edge_sdk.models.contract import AnomalyModel

    for name in registry.model_names():
        cls = registry.model_class(name)
        assert issubclass(cls, AnomalyModel), name
        if cls.family == "supervised":
            # trained on labelled classes: its own fit (a split stratified by class, early stopping)
            # and calibration (accept / reject thresholds on class probabilities), once for the family
            shared, own = ("score_dataset",), ("fit", "calibrate", "predict", "save", "export_parts", "is_fitted")
        else:
            # fit / calibrate / score_dataset are the contract's own, never a family's copy
            shared, own = ("fit", "calibrate", "score_dataset"), ("_train", "predict", "save", "export_parts", "is_fitted")
        for name_ in shared:
            assert getattr(cls, name_) is getattr(AnomalyModel, name_), (name, name_)
        for name_ in own:
            assert getattr(cls, name_) is not getattr(AnomalyModel, name_), (name, name_)
        assert cls.load.__func__ is not AnomalyModel.load.__func__, name


def test_calibrate_scores_is_the_threshold_of_both_families(rng):
    from edge_sdk.calibration import calibrate_scores

    good, bad = rng.normal(0, 1, 50), rng.normal(4, 1, 10)
    scores, labels = np.concatenate([good, bad]), np.array([0] * 50 + [1] * 10)
    cal, found = calibrate_scores(scores, labels, source="validation")
    assert cal["method"] == "f1" and good.max() > cal["threshold"] - 3 and found["image_auroc"] > 0.9
    assert set(found) >= {"image_auroc", "auprc", "f1", "source"}
    cal, found = calibrate_scores(good, np.zeros(50), quantile=0.9)
    assert cal["method"] == "quantile" and cal["threshold"] == pytest.approx(np.quantile(good.astype(np.float32), 0.9))
    assert found == {}
    with pytest.raises(ValueError, match="'f1' needs validation data with good and anomalous"):
        calibrate_scores(good, np.zeros(50), "f1")
