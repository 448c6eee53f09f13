"""Growth trends of a soak's series: least-squares lines over time, after a warm-up.

A leak shows as a steady slope, noise as scatter around a flat line; the fit over every
sample after the warm-up tells the two apart better than comparing the first and last
sample. RSS is judged as a percentage of its level at the end of the warm-up per hour
(the soak's goal: at most 1 %/hour); counts (descriptors, objects) by their slope per
hour in their own units, since a count that should be flat may start at zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Fit:
    slope: float  # units per second
    intercept: float  # the line's value at t = 0
    points: int

    def at(self, t: float) -> float:
        return self.intercept + self.slope * t


def linear_fit(ts: Sequence[float], values: Sequence[float]) -> Fit | None:
    """Ordinary least squares of `values` on `ts`; None with fewer than 2 distinct times."""
    if len(ts) != len(values):
        raise ValueError("ts and values differ in length")
    n = len(ts)
    if n < 2:
        return None
    mean_t = math.fsum(ts) / n
    mean_v = math.fsum(values) / n
    var = math.fsum((t - mean_t) ** 2 for t in ts)
    if var == 0:
        return None
    cov = math.fsum((t - mean_t) * (v - mean_v) for t, v in zip(ts, values, strict=True))
    slope = cov / var
    return Fit(slope=slope, intercept=mean_v - slope * mean_t, points=n)


def after_warmup(
    ts: Sequence[float], values: Sequence[float], warmup: float
) -> tuple[list[float], list[float]]:
    """The samples taken at or after `warmup` seconds."""
    kept = [(t, v) for t, v in zip(ts, values, strict=True) if t >= warmup]
    return [t for t, _ in kept], [v for _, v in kept]


def trend(
    ts: Sequence[float], values: Sequence[float], *, warmup: float
) -> dict[str, float | int | None]:
    """The slope per hour of the samples after `warmup`, and as a percentage of the fitted
    level at the warm-up's end (None when that level is not positive)."""
    kept_t, kept_v = after_warmup(ts, values, warmup)
    fit = linear_fit(kept_t, kept_v)
    if fit is None:
        return {
            "per_hour": None,
            "pct_per_hour": None,
            "start": None,
            "end": None,
            "points": len(kept_t),
        }
    base = fit.at(kept_t[0])
    per_hour = fit.slope * 3600
    return {
        "per_hour": round(per_hour, 3),
        "pct_per_hour": round(per_hour * 100 / base, 3) if base > 0 else None,
        "start": round(base, 3),
        "end": round(fit.at(kept_t[-1]), 3),
        "points": fit.points,
    }
