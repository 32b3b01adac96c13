"""`edge-sdk threshold`: a new bundle version with another threshold / review band, its lineage, and
thresholds meeting a target false-accept or false-reject rate (checked against brute force)."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from edge_sdk.bundle.revise import threshold_for_rate

pytestmark = pytest.mark.onnxruntime

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "data" / "gpu_fixtures" / "mahalanobis.bundle"


def run(*args):
    p = subprocess.run([sys.executable, "-m", "edge_sdk.cli", "threshold", *map(str, args)], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def _brute(good, bad, far=None, frr=None):
    """The threshold a brute-force search over every candidate picks: for a false-accept target the
    highest that meets it (fewest good units rejected), for a false-reject target the lowest (most
    defects caught)."""
    cands = np.unique(np.concatenate([good, bad, np.nextafter(np.concatenate([good, bad]), np.inf)]))
    ok = [t for t in cands if (far is None or np.mean(bad < t) <= far) and (frr is None or np.mean(good >= t) <= frr)]
    return max(ok) if far is not None else min(ok)


@pytest.mark.parametrize("target", [0.0, 0.05, 0.2, 0.5])
def test_threshold_for_rate_against_brute_force(rng, target):
    good = rng.normal(0, 1, 200)
    bad = rng.normal(2, 1, 37)
    t, rates = threshold_for_rate(good, bad, false_accept=target)
    assert rates["false_accept_rate"] <= target and t == _brute(good, bad, far=target)
    t, rates = threshold_for_rate(good, bad, false_reject=target)
    assert rates["false_reject_rate"] <= target and t == _brute(good, bad, frr=target)


def test_value_and_review_band_make_a_new_version_with_lineage(tmp_path, rng):
    src = tmp_path / "v1"
    shutil.copytree(FIXTURE, src)
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    images = rng.integers(0, 256, (12, 32, 40, 3), dtype=np.uint8)
    scores = edge_sdk.Runtime(src, threads=1).predict(images).scores.astype(np.float64)
    new_t = float(np.median(scores))
    p = run(src, "--out", tmp_path / "v2", "--value", new_t, "--review-band", "0.1", "--reason", "fewer false rejects")
    assert p.returncode == 0, p.stderr
    assert {q.name: q.read_bytes() for q in src.iterdir()} == before  # the old version is untouched
    m = json.loads((tmp_path / "v2" / "manifest.json").read_text())
    (entry,) = m["lineage"]
    assert entry["previous_manifest_sha256"] == hashlib.sha256(before["manifest.json"]).hexdigest()
    assert entry["reason"] == "fewer false rejects" and entry["new"]["threshold"] == pytest.approx(new_t)
    assert entry["old"]["threshold"] == json.loads(before["manifest.json"])["calibration"]["threshold"]
    res = edge_sdk.Runtime(tmp_path / "v2", threads=1).predict(images)
    np.testing.assert_array_equal(res.scores, scores)  # the same model; only the decision moved
    norm = np.clip((scores - new_t) / (m["calibration"]["max"] - m["calibration"]["min"]) + 0.5, 0, 1)
    expect = np.where(np.abs(norm - 0.5) < 0.1, "review", np.where(scores >= new_t, "reject", "accept"))
    np.testing.assert_array_equal(res.verdicts, expect)
    # a second revision appends to the lineage
    assert run(tmp_path / "v2", "--out", tmp_path / "v3", "--review-band", "0", "--reason", "band off").returncode == 0
    lineage = json.loads((tmp_path / "v3" / "manifest.json").read_text())["lineage"]
    assert [e["reason"] for e in lineage] == ["fewer false rejects", "band off"]


def test_false_accept_target_on_labelled_data(tmp_path):
    torch = pytest.importorskip("torch")
    from edge_sdk.converters import export_bundle
    from edge_sdk.data import load_dataset
    from edge_sdk.data.synthetic import make_dataset
    from edge_sdk.models import PaDiM

    torch.set_num_threads(1)
    root = make_dataset(tmp_path / "d", kind="tile", n_train=12, n_test=24, size=64, seed=2)
    model = PaDiM(d=32, input_size=64, batch_size=8, seed=0).fit(load_dataset(root, "mvtec", "train"), progress=False)
    bundle = export_bundle(model.export_parts(), tmp_path / "b", model_type=model.name).bundle
    p = run(bundle, "--out", tmp_path / "b2", "--false-accept", "0.1", "--data", root, "--layout", "mvtec",
            "--reason", "at most 10 % of defects accepted", "--threads", "1")
    assert p.returncode == 0, p.stderr
    test = load_dataset(root, "mvtec", "test")
    rt = edge_sdk.Runtime(tmp_path / "b2", threads=1)
    res = rt.predict([s.image for s in test])
    labels = np.asarray(test.labels)
    far = np.mean(res.verdicts[labels == 1] == "accept")
    assert far <= 0.1
    entry = json.loads((tmp_path / "b2" / "manifest.json").read_text())["lineage"][0]
    assert entry["method"]["kind"] == "target_rate" and entry["method"]["at"]["false_accept_rate"] == pytest.approx(far)


def test_refusals_name_the_problem(tmp_path):
    src = tmp_path / "v1"
    shutil.copytree(FIXTURE, src)
    p = run(src, "--out", src, "--value", "1", "--reason", "x")
    assert p.returncode == 2 and "exists" in p.stderr
    p = run(src, "--out", tmp_path / "n", "--value", "1")
    assert p.returncode == 2 and "--reason" in p.stderr
    p = run(src, "--out", tmp_path / "n", "--reason", "x")
    assert p.returncode == 2 and "nothing to change" in p.stderr
    p = run(src, "--out", tmp_path / "n", "--false-accept", "0.1", "--reason", "x")
    assert p.returncode == 2 and "--data" in p.stderr
    p = run(src, "--out", tmp_path / "n", "--value", "1e39", "--reason", "x")
    assert p.returncode == 2 and "--value" in p.stderr
    assert not (tmp_path / "n").exists()
