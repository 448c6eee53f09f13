from __future__ import annotations

import pytest

from sfu.bwe.inter_arrival import GroupDelta
from sfu.bwe.trendline import BandwidthUsage, OveruseDetector, TrendlineFilter


def _run(
    extra_delay_per_group: list[float], send_delta: float = 0.01
) -> tuple[TrendlineFilter, OveruseDetector, list[BandwidthUsage]]:
    """Groups every `send_delta` whose one-way delay changes by the given amounts (s)."""
    trendline, detector = TrendlineFilter(), OveruseDetector()
    arrival = 100.0
    usages = []
    for extra in extra_delay_per_group:
        arrival += send_delta + extra
        delta = GroupDelta(send_delta, send_delta + extra, arrival)
        trend = trendline.update(delta)
        usages.append(detector.detect(trend, trendline.samples, send_delta, arrival))
    return trendline, detector, usages


def test_the_trend_is_the_slope_of_delay_against_arrival_time() -> None:
    # 1 ms more delay per group, a group every 11 ms of arrival: slope 1/11.
    trendline, _, _ = _run([0.001] * 200)
    assert trendline.trend == pytest.approx(1 / 11, rel=1e-3)


def test_the_trend_waits_for_a_full_window() -> None:
    trendline, _, usages = _run([0.005] * 19)
    assert trendline.trend == 0.0
    assert set(usages) == {BandwidthUsage.NORMAL}
    trendline, _, _ = _run([0.005] * 20)
    assert trendline.trend > 0


def test_a_steady_delay_is_normal() -> None:
    trendline, _, usages = _run([0.0] * 100)
    assert trendline.trend == 0.0
    assert set(usages) == {BandwidthUsage.NORMAL}


def test_a_growing_delay_is_overuse() -> None:
    _, _, usages = _run([0.0] * 30 + [0.002] * 30)
    assert usages[-1] is BandwidthUsage.OVERUSING
    assert BandwidthUsage.OVERUSING not in usages[:30]


def test_a_shrinking_delay_is_underuse() -> None:
    _, _, usages = _run([0.0] * 30 + [-0.002] * 30)
    assert usages[-1] is BandwidthUsage.UNDERUSING


def test_overuse_must_last_more_than_10_ms_and_two_groups() -> None:
    detector = OveruseDetector()
    for _ in range(60):
        detector.detect(0.0, 60, 0.01, 0.0)
    # Far above the threshold, in groups 4 ms apart; the first counts half (it may
    # have started midway): 2 ms, then 6 ms, then 10 ms, not yet more than 10 ...
    for _ in range(3):
        assert detector.detect(1.0, 60, 0.004, 0.0) is BandwidthUsage.NORMAL
    # ... and at 14 ms it is overuse.
    assert detector.detect(1.0, 60, 0.004, 0.0) is BandwidthUsage.OVERUSING


def test_overuse_is_not_declared_while_the_trend_falls() -> None:
    detector = OveruseDetector()
    detector.detect(0.0, 60, 0.01, 0.0)
    for trend in (1.0, 0.9, 0.8, 0.7):
        assert detector.detect(trend, 60, 0.01, 0.0) is BandwidthUsage.NORMAL
    assert detector.detect(0.7, 60, 0.01, 0.0) is BandwidthUsage.OVERUSING


def test_the_trend_counts_for_less_over_the_first_samples() -> None:
    # The trend is scaled by the gain (4) and the samples so far (at most 60).
    detector = OveruseDetector()
    assert detector.detect(0.1, 1, 0.01, 0.0) is BandwidthUsage.NORMAL  # under 2 samples
    assert detector.detect(-0.1, 2, 0.01, 0.0) is BandwidthUsage.NORMAL  # 2*4*-0.1 = -0.8
    assert detector.detect(-0.1, 60, 0.01, 0.0) is BandwidthUsage.UNDERUSING  # -24


def test_the_threshold_follows_a_lasting_trend_up_and_falls_back_faster() -> None:
    detector = OveruseDetector()
    now = 0.0
    for _ in range(100):  # 1 s at a scaled trend of 20 (= 60 * 4 * trend)
        now += 0.01
        detector.detect(20 / 240, 60, 0.01, now)
    assert 19 < detector.threshold < 20
    fall_steps = 0
    while detector.threshold > 6.0:
        now += 0.01
        fall_steps += 1
        detector.detect(0.0, 60, 0.01, now)
    assert fall_steps < 10  # k_down: about 0.4 per 10 ms, against k_up's 0.09


def test_the_threshold_stays_within_6_and_600() -> None:
    detector = OveruseDetector()
    now = 0.0
    for _ in range(3000):  # always 10 above the threshold: it keeps rising
        now += 0.01
        detector.detect((detector.threshold + 10) / 240, 60, 0.01, now)
    assert detector.threshold == 600.0


def test_a_spike_far_above_the_threshold_does_not_move_it() -> None:
    detector = OveruseDetector()
    detector.detect(0.0, 60, 0.01, 0.0)
    before = detector.threshold
    detector.detect(1.0, 60, 0.01, 0.05)  # scaled 240, far above 12.5 + 15
    assert detector.threshold == before
