"""Soak trends: least-squares lines after a warm-up, as slopes per hour."""

from __future__ import annotations

import pytest

from benchmarks import trend


def test_a_fit_recovers_a_straight_line_exactly() -> None:
    ts = [0.0, 10.0, 20.0, 30.0]
    fit = trend.linear_fit(ts, [5.0 + 0.5 * t for t in ts])
    assert fit is not None
    assert fit.slope == pytest.approx(0.5)
    assert fit.intercept == pytest.approx(5.0)
    assert fit.at(100.0) == pytest.approx(55.0)
    assert fit.points == 4


def test_a_fit_needs_two_distinct_times() -> None:
    assert trend.linear_fit([], []) is None
    assert trend.linear_fit([1.0], [2.0]) is None
    assert trend.linear_fit([1.0, 1.0], [2.0, 3.0]) is None
    with pytest.raises(ValueError, match="length"):
        trend.linear_fit([1.0, 2.0], [1.0])


def test_noise_around_a_flat_line_has_no_slope() -> None:
    ts = [float(t) for t in range(0, 3600, 60)]
    values = [100.0 + (1.0 if i % 2 else -1.0) for i in range(len(ts))]
    result = trend.trend(ts, values, warmup=0.0)
    assert result["per_hour"] == pytest.approx(0.0, abs=0.1)
    assert result["pct_per_hour"] == pytest.approx(0.0, abs=0.1)


def test_the_warm_up_is_left_out_of_the_fit() -> None:
    # A steep climb for the first 10 minutes, then 2 MB/hour from 300 MB.
    ts = [float(t) for t in range(0, 3600, 60)]
    values = [t / 2 if t < 600 else 300.0 + 2.0 * (t - 600) / 3600 for t in ts]
    result = trend.trend(ts, values, warmup=600.0)
    assert result["per_hour"] == pytest.approx(2.0)
    assert result["pct_per_hour"] == pytest.approx(2.0 * 100 / 300, abs=0.001)
    assert result["start"] == pytest.approx(300.0)
    assert result["points"] == 50
    per_hour_with_warm_up = trend.trend(ts, values, warmup=0.0)["per_hour"]
    assert per_hour_with_warm_up is not None and per_hour_with_warm_up > 100


def test_a_series_that_starts_at_zero_has_a_slope_but_no_percentage() -> None:
    result = trend.trend([0.0, 1800.0, 3600.0], [0.0, 1.0, 2.0], warmup=0.0)
    assert result["per_hour"] == pytest.approx(2.0)
    assert result["pct_per_hour"] is None


def test_too_few_samples_after_the_warm_up_give_no_trend() -> None:
    result = trend.trend([0.0, 60.0, 120.0], [1.0, 2.0, 3.0], warmup=100.0)
    assert result == {
        "per_hour": None,
        "pct_per_hour": None,
        "start": None,
        "end": None,
        "points": 1,
    }
