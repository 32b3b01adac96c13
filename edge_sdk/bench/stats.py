"""Statistics of latency samples: percentile summaries, the cycle-budget verdict, and bootstrap
confidence intervals for comparing two runs.

Percentiles use NumPy's default (linear interpolation between order statistics), so a reader can
recompute every figure of a record from its stored samples with ``numpy.percentile``."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

SUMMARY_PERCENTILES = {"p25": 25.0, "p50": 50.0, "p75": 75.0, "p90": 90.0, "p99": 99.0}


def _as_samples(samples: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(samples, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError(f"{what}: no samples")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: non-finite sample(s)")
    return a


def summarize(samples: Sequence[float] | np.ndarray, what: str = "samples") -> dict[str, float]:
    """min, mean, p25, p50, p75, p90, p99, max and count of the samples."""
    a = _as_samples(samples, what)
    out = {"count": int(a.size), "min": float(a.min()), "mean": float(a.mean())}
    for name, q in SUMMARY_PERCENTILES.items():
        out[name] = float(np.percentile(a, q))
    out["max"] = float(a.max())
    return out


def cycle_latencies(call_ms: Sequence[float], calls_per_cycle: int) -> np.ndarray:
    """Cycle times from consecutive call times: non-overlapping groups of ``calls_per_cycle``
    consecutive calls, summed (an incomplete last group is dropped)."""
    if calls_per_cycle < 1:
        raise ValueError(f"calls_per_cycle: expected >= 1, got {calls_per_cycle}")
    a = np.asarray(call_ms, dtype=np.float64)
    n = a.size // calls_per_cycle
    return a[: n * calls_per_cycle].reshape(n, calls_per_cycle).sum(axis=1)


def budget_verdict(cycle_ms: Sequence[float] | np.ndarray, budget_ms: float, units_per_cycle: int,
                   required_fraction: float = 0.99) -> dict:
    """Does the work of one cycle (``units_per_cycle`` units) fit in ``budget_ms``?

    - ``fraction_within_budget``: share of measured cycles with time <= budget;
    - ``fits``: that share is at least ``required_fraction``;
    - ``max_units_per_minute``: the fastest line rate whose cycle period the machine still meets
      in ``required_fraction`` of cycles: units_per_cycle * 60000 / quantile(cycle_ms,
      required_fraction) (cycles back to back, no other load);
    - ``line_units_per_minute``: the rate the budget itself stands for (units_per_cycle * 60000 /
      budget_ms), so fits <=> max_units_per_minute >= line_units_per_minute up to the quantile's
      interpolation.
    """
    if not (budget_ms > 0 and math.isfinite(budget_ms)):
        raise ValueError(f"budget_ms: expected a positive number of milliseconds, got {budget_ms}")
    if units_per_cycle < 1:
        raise ValueError(f"units_per_cycle: expected >= 1, got {units_per_cycle}")
    if not 0 < required_fraction <= 1:
        raise ValueError(f"required_fraction: expected a fraction in (0, 1], got {required_fraction}")
    a = _as_samples(cycle_ms, "cycle_ms")
    within = float(np.mean(a <= budget_ms))
    q = float(np.quantile(a, required_fraction))
    return {
        "budget_ms": float(budget_ms),
        "units_per_cycle": int(units_per_cycle),
        "required_fraction": float(required_fraction),
        "cycles": int(a.size),
        "cycles_within_budget": int(np.sum(a <= budget_ms)),
        "fraction_within_budget": within,
        "fits": bool(within >= required_fraction),
        "cycle_ms_at_required_fraction": q,
        "max_units_per_minute": float(units_per_cycle * 60000.0 / q) if q > 0 else math.inf,
        "line_units_per_minute": float(units_per_cycle * 60000.0 / budget_ms),
    }


def bootstrap_ratio_ci(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                       statistic: Callable[[np.ndarray], np.ndarray], *, level: float = 0.95,
                       resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(ratio, low, high): statistic(b) / statistic(a) and its percentile-bootstrap confidence
    interval, each sample set resampled with replacement independently. ``statistic`` maps a
    (R, n) array to (R,) values along axis 1 (e.g. ``lambda x: np.median(x, axis=1)``)."""
    a = _as_samples(a, "a")
    b = _as_samples(b, "b")
    rng = np.random.default_rng(seed)
    ratio = float(statistic(b[None, :])[0] / statistic(a[None, :])[0])
    # Chunked so that (resamples x n) index arrays stay small for long runs.
    chunk = max(1, int(4_000_000 // max(a.size, b.size)))
    ratios = []
    for start in range(0, resamples, chunk):
        r = min(chunk, resamples - start)
        sa = statistic(a[rng.integers(0, a.size, (r, a.size))])
        sb = statistic(b[rng.integers(0, b.size, (r, b.size))])
        ratios.append(sb / sa)
    all_r = np.concatenate(ratios)
    tail = (1.0 - level) / 2.0
    return ratio, float(np.quantile(all_r, tail)), float(np.quantile(all_r, 1.0 - tail))


def iqr_overlap(a_p25: float, a_p75: float, b_p25: float, b_p75: float) -> bool:
    """True when the inter-quartile ranges [p25, p75] of two runs overlap (then a difference of
    their medians is within the run-to-run spread)."""
    return max(a_p25, b_p25) <= min(a_p75, b_p75)
