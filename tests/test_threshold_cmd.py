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


@pytest.mark.parametrize("level", ["strip", "run"])
def test_region_thresholds_retuned_for_the_strip_or_run_decision(tmp_path, level):
    """A region bundle (the vial-strip layout) with needlessly strict region thresholds: --level
    re-tunes them on labelled strips (masks give each region's label, file names each strip's
    product); the new bundle's runtime verdicts give the accuracy the lineage records, the old
    bundle is untouched, and every region moved by the same multiple of its spread."""
    pytest.importorskip("torch")
    from edge_sdk.converters import export_bundle
    from edge_sdk.data.vial_strip import make_vial_strip_dataset, region_layout
    from edge_sdk.data import load_dataset
    from edge_sdk.regions import RegionLayout, RegionPatches, product_ids
    from tests.bundle_helpers import ssim_parts

    root = make_vial_strip_dataset(str(tmp_path / "d"), count=1, products=6, acquisitions=10, region_size=16,
                                   seed=3, progress=False)
    lay = region_layout(16)
    frame = lay["frame"]
    probe = export_bundle(ssim_parts(size=16, channels=1, regions=[{**r, "threshold": 1.0} for r in lay["regions"]],
                                     frame=frame), tmp_path / "probe", model_type="resganad").bundle
    test = load_dataset(root, "mvtec", "test", gray=True)
    frames = [s.image for s in test]
    scores = edge_sdk.Runtime(probe, threads=1).predict(frames).regions.scores
    strict = scores.max(axis=0) + 1e-3  # nothing is ever rejected
    regions = [{**r, "threshold": float(t)} for r, t in zip(lay["regions"], strict)]
    bundle = export_bundle(ssim_parts(size=16, channels=1, regions=regions, frame=frame), tmp_path / "b",
                           model_type="resganad").bundle
    before = (Path(bundle) / "manifest.json").read_bytes()
    p = run(bundle, "--out", tmp_path / "b2", "--level", level, "--data", root, "--layout", "mvtec",
            "--reason", f"re-tuned for the {level} decision", "--threads", "1")
    assert p.returncode == 0, p.stderr
    assert (Path(bundle) / "manifest.json").read_bytes() == before
    m = json.loads((tmp_path / "b2" / "manifest.json").read_text())
    (entry,) = m["lineage"]
    method = entry["method"]
    assert method["kind"] == "retuned_for_level" and method["level"] == level
    assert entry["old"]["regions"] == {r["name"]: pytest.approx(r["threshold"]) for r in regions}
    new = np.array([r["threshold"] for r in m["regions"]])
    # the runtime's verdicts with the new thresholds, aggregated here
    res = edge_sdk.Runtime(tmp_path / "b2", threads=1).predict(frames)
    np.testing.assert_array_equal(res.regions.scores, scores)  # only the decision moved
    region_rej = res.regions.verdicts == "reject"
    np.testing.assert_array_equal(region_rej, scores >= new.astype(np.float32))
    labels = RegionPatches(test, RegionLayout.from_dict(lay)).labels.reshape(len(test), -1).astype(bool)
    strip_label, strip_rej = labels.any(axis=1), region_rej.any(axis=1)
    if level == "strip":
        acc = np.mean(strip_rej == strip_label)
    else:
        prod = product_ids(test.paths)
        ids = np.unique(prod)
        acc = np.mean([(strip_rej[prod == i].sum() >= 7) == strip_label[prod == i].any() for i in ids])
    assert method["after"]["accuracy"] == pytest.approx(acc)
    assert method["before"]["tpr"] == 0.0 and method["after"]["accuracy"] > method["before"]["accuracy"]
    # a bundle without regions is refused, naming the option
    p = run(FIXTURE, "--out", tmp_path / "n", "--level", level, "--data", root, "--layout", "mvtec", "--reason", "x")
    assert p.returncode == 2 and "no regions" in p.stderr
