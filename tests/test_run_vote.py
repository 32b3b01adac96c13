"""The run vote through Python against the k-of-n rule of edge_sdk.calibration (an independent
NumPy implementation) on random runs, with the fail-safe side for unjudged acquisitions."""

import itertools
import threading

import numpy as np
import pytest

from edge_sdk.calibration import k_of_n_decision
from edge_sdk.run_vote import RunCapacityError, RunVote


def test_matches_k_of_n_on_random_runs(rng):
    vote = RunVote(7, 10)
    for p in range(300):
        verdicts = rng.choice(["accept", "reject", "review"], 10, p=[0.45, 0.45, 0.1])
        for i in rng.permutation(10):
            s = vote.add(f"p{p}", int(i), str(verdicts[i]))
        assert s.decided and vote.open == 0
        rejected = bool(k_of_n_decision(verdicts == "reject", 7, 10))
        if rejected:
            assert s.verdict == "reject"
        elif (verdicts == "review").any():
            assert s.verdict == "review"  # never accepted with an acquisition not judged
        else:
            assert s.verdict == "accept"
        assert (s.rejects, s.accepts, s.reviews) == tuple(int((verdicts == v).sum()) for v in ("reject", "accept", "review"))


def test_early_close_bounds_and_errors():
    vote = RunVote(2, 3, max_open=1)
    assert not vote.add("a", 0, "accept").decided
    with pytest.raises(RunCapacityError, match="max_open"):
        vote.add("b", 0, "accept")
    s = vote.close("a")
    assert s.verdict == "review" and s.missing == 2
    with pytest.raises(ValueError, match="no open run 'a'"):
        vote.close("a")
    vote.add("c", 0, "reject")
    with pytest.raises(ValueError, match="given twice"):
        vote.add("c", 0, "reject")
    with pytest.raises(ValueError, match="index: expected 0 to 2"):
        vote.add("c", 3, "reject")
    with pytest.raises(ValueError, match="verdict: expected one of"):
        vote.add("c", 1, "good")
    with pytest.raises(ValueError, match="k: expected 1 to n"):
        RunVote(4, 3)


def test_threads():
    vote = RunVote(7, 10, max_open=64)
    out = []

    def worker(t):
        for p, i in itertools.product(range(40), range(t, 10, 4)):
            s = vote.add(f"p{p}", i, "reject" if p % 2 and i < 7 else "accept")
            if s.decided:
                out.append((p, s.verdict))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(out) == [(p, "reject" if p % 2 else "accept") for p in range(40)]


def test_bundle_rule_from_export_to_the_runtime(tmp_path):
    """--run-vote K/N is written to decision.run, read back by the C++ manifest reader (a bad rule
    refuses the bundle) and applied by Runtime.run_vote; a bundle without it uses 7 of 10."""
    import json

    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    import edge_sdk
    from edge_sdk.bundle.schema import BundleError, build_manifest
    from edge_sdk.converters import export_bundle
    from edge_sdk.run_vote import DEFAULT_RULE
    from tests.bundle_helpers import embedding_parts

    def bundle(name, **kw):
        return export_bundle(embedding_parts("mahalanobis", size=(16, 16), features=4), tmp_path / name,
                             model_type="padim", **kw).bundle

    plain = bundle("plain")
    vote = edge_sdk.Runtime(plain, threads=1).run_vote()
    assert (vote.k, vote.n) == DEFAULT_RULE == (7, 10)
    voted = bundle("voted", run_vote=(2, 3))
    m = json.loads((voted / "manifest.json").read_text())
    assert m["decision"]["run"] == {"k": 2, "n": 3}
    vote = edge_sdk.Runtime(voted, threads=1).run_vote()
    assert (vote.k, vote.n) == (2, 3)
    for i, v in enumerate(("reject", "accept", "reject")):
        s = vote.add("p", i, v)
    assert s.decided and s.verdict == "reject"
    with pytest.raises(BundleError, match="decision.run"):
        build_manifest(model_type="x", input={}, networks=[], arrays={}, postprocess={"kind": "mahalanobis"},
                       calibration={"threshold": 1.0, "min": 0.0, "max": 2.0}, run_vote=(4, 3))
    # the C++ reader checks it too: a hand-edited rule is refused when the bundle opens
    m["decision"]["run"] = {"k": 5, "n": 3}
    (voted / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(Exception, match=r"decision\.run\.k"):
        edge_sdk.Runtime(voted, threads=1)
