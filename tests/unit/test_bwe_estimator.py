"""The estimator alone, then on a simulated bottleneck (tests/bottleneck.py): a FIFO
draining at the capacity behind a 64 kB buffer, 25 ms one way, feedback every
50 ms, a sender at the estimate + 5 %, 1200-byte packets, all in virtual time."""

from __future__ import annotations

import itertools
import math

import pytest

from sfu.bwe.estimator import BandwidthEstimator
from sfu.bwe.results import PacketResult
from sfu.bwe.trendline import BandwidthUsage
from tests.bottleneck import Path, Sample, estimate_at, simulate


def _constant(bps: float) -> Path:
    return Path(capacity_bps=lambda _: bps)


def test_bounds_are_checked() -> None:
    for kwargs in (
        {"min_bps": 0},
        {"initial_bps": 10_000},
        {"initial_bps": 30_000_000},
        {"min_bps": 2_000_000, "max_bps": 1_000_000},
    ):
        with pytest.raises(ValueError):
            BandwidthEstimator(**kwargs)


@pytest.mark.parametrize("rtt", [-0.1, math.nan, math.inf])
def test_a_meaningless_rtt_is_refused(rtt: float) -> None:
    with pytest.raises(ValueError):
        BandwidthEstimator().on_round_trip_time(rtt)


@pytest.mark.parametrize("bps", [-1.0, math.nan, math.inf])
def test_a_meaningless_remb_is_refused(bps: float) -> None:
    with pytest.raises(ValueError):
        BandwidthEstimator().on_remb(bps)


def test_it_starts_at_the_initial_rate_knowing_nothing() -> None:
    estimator = BandwidthEstimator(initial_bps=800_000)
    estimator.on_packet_results([], 1.0)
    assert estimator.estimate_bps == 800_000
    assert estimator.acknowledged_bps is None
    assert estimator.usage is BandwidthUsage.NORMAL
    assert estimator.loss_fraction == 0.0


def test_remb_caps_the_estimate_until_a_higher_one_comes() -> None:
    estimator = BandwidthEstimator(initial_bps=1_000_000)
    estimator.on_remb(300_000)
    assert estimator.estimate_bps == 300_000
    estimator.on_remb(10)
    assert estimator.estimate_bps == 50_000  # never below the minimum
    estimator.on_remb(5_000_000)
    assert estimator.estimate_bps == 1_000_000


def _batch(
    first: int, count: int, send_start: float, delay: float, growth: float
) -> list[PacketResult]:
    """`count` packets 10 ms apart; one-way delay `delay`, growing `growth` per packet."""
    return [
        PacketResult(
            first + i, send_start + i * 0.01, 1200, send_start + i * 0.01 + delay + i * growth
        )
        for i in range(count)
    ]


def test_overuse_seen_before_2_s_of_silence_is_not_acted_on_after_it() -> None:
    estimator = BandwidthEstimator()
    delay = 0.02
    for k in range(20):  # the queue grows 2 ms per packet: overuse
        estimator.on_packet_results(_batch(5 * k, 5, k * 0.05, delay, 0.002), k * 0.05 + 0.1)
        delay += 5 * 0.002
    usages = [estimator.usage]
    before = estimator.delay_based_bps
    # One packet after the silence says nothing about the queue now.
    estimator.on_packet_results(_batch(100, 1, 4.0, 0.02, 0.0), 4.1)
    usages.append(estimator.usage)
    assert usages == [BandwidthUsage.OVERUSING, BandwidthUsage.NORMAL]
    assert estimator.delay_based_bps >= before


def test_feedback_with_every_packet_lost_still_counts_the_loss() -> None:
    estimator = BandwidthEstimator(initial_bps=1_000_000)
    lost = [PacketResult(i, i * 0.01, 1200, None) for i in range(100)]
    estimator.on_packet_results(lost[:50], 0.5)
    estimator.on_packet_results(lost[50:], 1.5)
    assert estimator.loss_fraction == 1.0
    assert estimator.estimate_bps == 500_000


def _within(samples: list[Sample], start: float, end: float) -> list[float]:
    return [s.estimate_bps / s.capacity_bps for s in samples if start <= s.time <= end]


@pytest.mark.parametrize("capacity", [700_000, 2_000_000, 5_000_000])
def test_it_converges_to_the_capacity_within_15_s(capacity: int) -> None:
    samples = simulate(BandwidthEstimator(), _constant(capacity), duration=25.0)
    ratios = _within(samples, 15.0, 25.0)
    assert min(ratios) >= 0.6
    assert max(ratios) <= 1.1


def test_it_follows_the_capacity_down_and_back_up() -> None:
    def capacity(t: float) -> float:
        return 1e6 if 20.0 <= t < 35.0 else 3e6

    samples = simulate(BandwidthEstimator(), Path(capacity_bps=capacity), duration=50.0)
    assert estimate_at(samples, 19.9) > 2.4e6
    fell = next(s.time for s in samples if s.time > 20.0 and s.estimate_bps < 1.1e6)
    assert fell < 22.0
    assert min(_within(samples, 22.0, 35.0)) > 0.6  # not below 600 kbit/s meanwhile
    rose = next(s.time for s in samples if s.time > 35.0 and s.estimate_bps > 2e6)
    assert rose < 50.0


def test_random_loss_of_5_percent_holds_the_estimate() -> None:
    path = Path(capacity_bps=lambda _: 100e6, loss=0.05)
    samples = simulate(BandwidthEstimator(), path, duration=15.0, seed=7)
    estimates = [s.estimate_bps for s in samples]
    assert min(estimates) > 0.8e6
    assert max(estimates) < 1.25e6
    # The path itself has room: the delay-based rate went on growing.
    assert samples[-1].delay_based_bps > 1.4 * samples[-1].estimate_bps


def test_random_loss_of_20_percent_decreases_the_estimate() -> None:
    path = Path(capacity_bps=lambda _: 100e6, loss=0.20)
    samples = simulate(BandwidthEstimator(), path, duration=10.0, seed=7)
    assert estimate_at(samples, 10.0) < 0.6e6
    assert samples[-1].loss_fraction == pytest.approx(0.2, abs=0.08)
    assert [estimate_at(samples, t) for t in (2, 4, 6, 8, 10)] == sorted(
        (estimate_at(samples, t) for t in (2, 4, 6, 8, 10)), reverse=True
    )


def test_jitter_alone_causes_no_repeated_decreases() -> None:
    path = Path(capacity_bps=lambda _: 100e6, jitter=0.005)
    samples = simulate(BandwidthEstimator(), path, duration=30.0, seed=11)
    decreases = sum(
        1 for a, b in itertools.pairwise(samples) if b.estimate_bps < 0.95 * a.estimate_bps
    )
    assert decreases <= 1
    assert samples[-1].estimate_bps > 5e6  # it kept growing the whole time


def test_the_same_inputs_give_the_same_estimates() -> None:
    def run() -> list[Sample]:
        path = Path(capacity_bps=lambda _: 2e6, loss=0.02, jitter=0.003)
        return simulate(BandwidthEstimator(), path, duration=8.0)

    assert run() == run()


def test_the_viewers_reference_time_wrapping_changes_nothing() -> None:
    # The viewer's signed 24-bit reference time wraps 5 s into the run.
    just_before_wrap = (1 << 23) * 0.064 - 5.0
    plain = simulate(BandwidthEstimator(), _constant(2e6), duration=12.0)
    wrapped = simulate(
        BandwidthEstimator(), _constant(2e6), duration=12.0, viewer_clock_offset=just_before_wrap
    )
    assert [s.estimate_bps for s in wrapped] == [s.estimate_bps for s in plain]
