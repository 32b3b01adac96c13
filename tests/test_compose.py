"""An anomaly bundle decides, a classifier bundle names the defect type of what it did not accept
(edge_sdk.compose, `predict --name-defects`): verdicts are the anomaly bundle's own, names are the
classifier runtime's own probabilities on exactly those images, accepted units are never named."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.onnxruntime

import edge_sdk  # noqa: E402
from edge_sdk.compose import DefectNaming  # noqa: E402
from edge_sdk.converters import export_bundle  # noqa: E402
from tests.bundle_helpers import classifier_model, classifier_thresholds, midway, ssim_parts  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("compose")
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (16, 48, 48, 3), dtype=np.uint8)
    images[:5] = rng.integers(100, 140, (5, 48, 48, 3), dtype=np.uint8)  # low-contrast: lower SSIM scores
    probe = export_bundle(ssim_parts(size=48, channels=3), tmp / "probe", model_type="resganad").bundle
    scores = edge_sdk.Runtime(probe, threads=1).predict(images).scores
    t = midway(scores)
    anomaly = export_bundle(ssim_parts(size=48, channels=3, calibration={"threshold": t, "min": t - 0.2, "max": t + 0.2}),
                            tmp / "anomaly", model_type="resganad").bundle
    model = classifier_model(("good", "crack", "spot"), size=48, seed=3)
    classifier_thresholds(model, model.predict(list(images)).probabilities)
    classifier = export_bundle(model.export_parts(), tmp / "classifier", model_type="classifier").bundle
    return anomaly, classifier, images


@pytest.mark.parametrize("name_review", [True, False])
def test_verdicts_are_the_anomaly_bundles_and_names_the_classifiers(bundles, name_review):
    anomaly, classifier, images = bundles
    named = DefectNaming(anomaly, classifier, threads=1, name_review=name_review).predict(images)
    alone = edge_sdk.Runtime(anomaly, threads=1).predict(images)
    np.testing.assert_array_equal(named.verdicts, alone.verdicts)
    np.testing.assert_array_equal(named.anomaly.scores, alone.scores)
    assert {"accept", "reject"} <= set(alone.verdicts)
    wanted = np.isin(alone.verdicts, ["reject", "review"] if name_review else ["reject"])
    cls = edge_sdk.Runtime(classifier, threads=1).predict(images[wanted])
    probs = cls.class_probabilities.astype(np.float64)
    best = 1 + np.argmax(probs[:, 1:], axis=1)  # good is class 0: the most probable defect class
    assert [named.defect_type[i] for i in np.flatnonzero(wanted)] == [cls.class_names[b] for b in best]
    np.testing.assert_array_equal(named.class_probabilities[wanted], cls.class_probabilities)
    np.testing.assert_array_equal(named.defect_probability[wanted], cls.class_probabilities[np.arange(len(best)), best])
    np.testing.assert_array_equal(named.classifier_agrees[wanted], np.argmax(probs, axis=1) != 0)
    # units the anomaly bundle accepted are never named, and the classifier did not run on them
    for i in np.flatnonzero(~wanted):
        assert named.defect_type[i] is None and np.isnan(named.class_probabilities[i]).all()
        assert not named.classifier_agrees[i]


def test_refusals_name_the_bundle(bundles):
    anomaly, classifier, _ = bundles
    with pytest.raises(ValueError, match="is a classifier bundle"):
        DefectNaming(classifier, classifier, threads=1)
    with pytest.raises(ValueError, match="is not a classifier bundle"):
        DefectNaming(anomaly, anomaly, threads=1)


def test_predict_names_defects_in_its_table(bundles, tmp_path):
    from PIL import Image

    anomaly, classifier, images = bundles
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"i{i:02d}.png")
    out = tmp_path / "v.csv"
    p = subprocess.run([sys.executable, "-m", "edge_sdk.cli", "predict", str(anomaly), str(folder), "--out", str(out),
                        "--name-defects", str(classifier), "--threads", "1"], cwd=REPO, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(out.open()))
    named = DefectNaming(anomaly, classifier, threads=1).predict(images)
    assert [r["verdict"] for r in rows] == list(named.verdicts)
    assert [r["defect_type"] or None for r in rows] == named.defect_type
    p = subprocess.run([sys.executable, "-m", "edge_sdk.cli", "predict", str(anomaly), str(folder), "--out",
                        str(tmp_path / "x.csv"), "--name-defects", str(anomaly)], cwd=REPO, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 2 and "--name-defects" in p.stderr and "not a classifier bundle" in p.stderr
