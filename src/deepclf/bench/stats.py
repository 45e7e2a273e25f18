"""Latency statistics: one documented percentile method, and the summary every report row carries.

Percentiles use **linear interpolation between closest ranks** (Hyndman & Fan type 7, numpy's default
``method="linear"``): for ``n`` sorted samples ``x[0..n-1]`` the ``q``-th percentile sits at the fractional index
``h = (n - 1) * q / 100`` and is ``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``. So for the
samples 1..100, p50 is 50.5, p90 is 90.1 and p99 is 99.01; a single sample is every percentile of itself. We compute
it ourselves (not through ``np.percentile``) so the definition cannot change under us with a numpy release::

    percentile([1, 2, 3, 4], 50)          # 2.5
    s = summarize([12.1, 11.8, 30.2])      # LatencySummary(count=3, p50=12.1, ...), all in the unit given
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: The percentiles every report shows (MLPerf single-stream reports p90, server p99; we show them all).
PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0, 99.9)


def percentile(values: Iterable[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by linear interpolation (see module docstring).

    Returns ``nan`` for no values; raises ``ValueError`` for ``q`` outside 0..100.
    """
    x = np.sort(np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64))
    return _sorted_percentile(x, q)


def _sorted_percentile(x: np.ndarray, q: float) -> float:
    """``percentile`` of samples ``x`` that are already sorted (float64)."""
    if not 0.0 <= float(q) <= 100.0 or math.isnan(float(q)):
        raise ValueError(f"percentile must be within 0..100, got {q!r}")
    n = x.size
    if n == 0:
        return float("nan")
    h = (n - 1) * float(q) / 100.0
    lo = math.floor(h)
    hi = min(lo + 1, n - 1)
    return float(x[lo] + (h - lo) * (x[hi] - x[lo]))


def percentiles(values: Sequence[float] | np.ndarray, qs: Iterable[float] = PERCENTILES) -> dict[float, float]:
    """Several percentiles of the same samples in one sort."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    return {float(q): _sorted_percentile(x, q) for q in qs}


@dataclass(frozen=True)
class LatencySummary:
    """Summary of latency samples, in whatever unit they were given (reports use milliseconds)."""

    count: int
    mean: float
    std: float
    min: float
    max: float
    p50: float
    p90: float
    p95: float
    p99: float
    p999: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize(values: Sequence[float] | np.ndarray) -> LatencySummary:
    """Count, mean, population std, min, max and the ``PERCENTILES`` of ``values`` (``nan`` when empty)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        nan = float("nan")
        return LatencySummary(0, nan, nan, nan, nan, nan, nan, nan, nan, nan)
    p = percentiles(x)
    return LatencySummary(
        count=int(x.size),
        mean=float(x.mean()),
        std=float(x.std()),
        min=float(x.min()),
        max=float(x.max()),
        p50=p[50.0],
        p90=p[90.0],
        p95=p[95.0],
        p99=p[99.0],
        p999=p[99.9],
    )
