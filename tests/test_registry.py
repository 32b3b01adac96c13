"""The model registry: classes register by decorator; names, families and look-ups come from it."""

import json

import pytest

pytest.importorskip("torch")

from edge_sdk.models import registry  # noqa: E402


def test_builtin_models_register_themselves():
    assert registry.model_names("embedding") == ["mhbc", "padim", "patchcore"]
    assert registry.model_names("reconstruction") == ["grdnet", "resganad"]
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
    with pytest.raises(ValueError, match="unknown model 'nope'; known: grdnet, mhbc, padim, patchcore, resganad"):
        registry.model_class("nope")
    from edge_sdk.models.storage import FORMAT, VERSION, ModelFormatError

    (tmp_path / "config.json").write_text(json.dumps({"format": FORMAT, "version": VERSION, "model": "nope"}))
    with pytest.raises(ModelFormatError, match=r"config.json: unknown model 'nope'"):
        registry.load_model(tmp_path)


def test_train_names_a_model_that_is_not_registered(capsys, tmp_path):
    from edge_sdk import cli

    rc = cli.main(["train", "--model", "nope", "--data", str(tmp_path), "--layout", "folder", "--out", str(tmp_path / "m")])
    assert rc == 2 and "unknown model 'nope'" in capsys.readouterr().err
