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
