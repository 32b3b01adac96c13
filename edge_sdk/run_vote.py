"""The run vote of a product acquired n times, in the C++ core (cpp/src/runtime/run_vote.cpp), the
same rule the C ABI applies: rejected when at least k acquisitions were rejected; accepted only when
all n were judged and fewer than k rejected; otherwise (an acquisition missing or sent to review)
review. Thread-safe; at most ``max_open`` runs are open at once (a new product beyond that raises
RunCapacityError; open runs are never dropped); a decided run is forgotten."""

from __future__ import annotations

from dataclasses import dataclass

from edge_sdk._native import core as _core
from edge_sdk.runtime import VERDICTS

RunCapacityError = _core.RunCapacityError
DEFAULT_RULE: tuple[int, int] = tuple(_core.RUN_VOTE_DEFAULT)  # (k, n) of a bundle without decision.run


@dataclass(frozen=True)
class RunStatus:
    decided: bool
    verdict: str  # "review" until decided
    judged: int
    rejects: int
    accepts: int
    reviews: int
    missing: int


def _status(d: dict) -> RunStatus:
    return RunStatus(**{**d, "verdict": VERDICTS[d["verdict"]]})


class RunVote:
    """``RunVote(k=7, n=10)`` (the defaults: DEFAULT_RULE); ``add(product, index, verdict)`` with verdict "accept" / "reject" /
    "review" (or the Runtime's result verdicts) returns the run's status, decided when its n-th
    acquisition arrives; ``close(product)`` decides it early with what it has."""

    def __init__(self, k: int = DEFAULT_RULE[0], n: int = DEFAULT_RULE[1], *, max_open: int = 4096):
        for name, v in (("k", k), ("n", n), ("max_open", max_open)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{name}: expected an int, got {v!r}")
        self.k, self.n = k, n
        self._vote = _core.RunVote(k, n, max_open)

    def add(self, product: str, index: int, verdict: str) -> RunStatus:
        if verdict not in VERDICTS:
            raise ValueError(f"verdict: expected one of {VERDICTS}, got {verdict!r}")
        return _status(self._vote.add(str(product), int(index), VERDICTS.index(verdict)))

    def close(self, product: str) -> RunStatus:
        return _status(self._vote.close(str(product)))

    @classmethod
    def for_manifest(cls, manifest: dict, *, max_open: int = 4096) -> "RunVote":
        """The run vote of a bundle's rule (decision.run, else DEFAULT_RULE)."""
        run = (manifest.get("decision") or {}).get("run") or {}
        return cls(run.get("k", DEFAULT_RULE[0]), run.get("n", DEFAULT_RULE[1]), max_open=max_open)

    @property
    def open(self) -> int:
        """Runs open now."""
        return self._vote.open()
