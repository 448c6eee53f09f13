from __future__ import annotations

import math

import pytest

from sfu.bwe.aimd import AimdRateControl, RateControlState
from sfu.bwe.trendline import BandwidthUsage

NORMAL, OVER, UNDER = BandwidthUsage.NORMAL, BandwidthUsage.OVERUSING, BandwidthUsage.UNDERUSING


def _aimd(initial: float = 1e6) -> AimdRateControl:
    return AimdRateControl(initial_bps=initial, min_bps=50e3, max_bps=20e6)


def _run(
    aimd: AimdRateControl, usage: BandwidthUsage, acked: float | None, start: float, seconds: float
) -> float:
    """Feedback every 50 ms from `start` for `seconds`; returns the time after."""
    steps = round(seconds / 0.05)
    for i in range(steps):
        aimd.update(usage, acked, start + i * 0.05)
    return start + steps * 0.05


def test_it_holds_until_the_detector_says_normal() -> None:
    aimd = _aimd()
    states = [aimd.state]
    aimd.update(UNDER, 3e6, 0.0)
    states.append(aimd.state)
    aimd.update(NORMAL, 3e6, 0.05)
    states.append(aimd.state)
    assert states == [RateControlState.HOLD, RateControlState.HOLD, RateControlState.INCREASE]


def test_far_from_a_known_capacity_it_grows_8_percent_per_second() -> None:
    aimd = _aimd()
    _run(aimd, NORMAL, 3e6, 0.0, 2.05)
    # +1 kbit/s on the first step (no time has passed), then 1.08 per second.
    assert aimd.bps == pytest.approx(1.001e6 * 1.08**2, rel=1e-6)
    assert aimd.link_capacity_bps is None


def test_it_grows_at_most_to_1_5_times_the_acknowledged_rate_plus_10_kbps() -> None:
    aimd = _aimd(750e3)
    _run(aimd, NORMAL, 500e3, 0.0, 5.0)
    assert aimd.bps == pytest.approx(760e3)


def test_above_that_limit_it_neither_grows_nor_falls() -> None:
    # A sender that does not use its estimate learns nothing more about the path.
    aimd = _aimd(1e6)
    _run(aimd, NORMAL, 200e3, 0.0, 5.0)
    assert aimd.bps == 1e6


def test_overuse_goes_to_85_percent_of_the_acknowledged_rate_then_holds() -> None:
    aimd = _aimd(2e6)
    aimd.update(NORMAL, 1.5e6, 0.0)
    aimd.update(OVER, 1.2e6, 0.25)
    assert aimd.bps == pytest.approx(0.85 * 1.2e6)
    assert aimd.state is RateControlState.HOLD
    assert aimd.link_capacity_bps == pytest.approx(1.2e6)


def test_overuse_never_raises_the_rate() -> None:
    aimd = _aimd(1e6)
    aimd.update(OVER, 2e6, 0.0)
    assert aimd.bps == 1e6


def test_underuse_holds_the_rate_while_the_queue_drains() -> None:
    aimd = _aimd(1e6)
    _run(aimd, UNDER, 1e6, 0.0, 2.0)
    assert aimd.bps == 1e6
    assert aimd.state is RateControlState.HOLD


def test_near_the_capacity_it_adds_about_a_packet_per_response_time() -> None:
    aimd = _aimd(3e6)
    aimd.set_round_trip_time(0.1)
    aimd.update(OVER, 1.5e6, 0.0)  # capacity about 1.5 Mbit/s; rate 1.275 Mbit/s
    t = _run(aimd, NORMAL, 1.4e6, 0.05, 0.05)  # hold -> increase, no step yet
    start = aimd.bps
    _run(aimd, NORMAL, 1.4e6, t, 1.0)
    # 1.275 Mbit/s at 30 fps: 5 packets of 1062 bytes a frame; response time 200 ms.
    frame_bytes = start / 30 / 8
    packet_bits = 8 * frame_bytes / math.ceil(frame_bytes / 1200)
    assert packet_bits == pytest.approx(8500)
    assert aimd.bps - start == pytest.approx(packet_bits / 0.2, rel=0.02)


def test_throughput_beyond_the_capacity_estimate_returns_to_multiplicative() -> None:
    aimd = _aimd(2e6)
    aimd.update(OVER, 1e6, 0.0)
    assert aimd.link_capacity_bps == pytest.approx(1e6)
    _run(aimd, NORMAL, 1.2e6, 0.05, 0.1)  # beyond 1 Mbit/s + 3 deviations
    assert aimd.link_capacity_bps is None
    before = aimd.bps
    _run(aimd, NORMAL, 1.2e6, 0.15, 1.0)
    assert aimd.bps == pytest.approx(before * 1.08, rel=1e-3)


def test_a_further_decrease_waits_for_the_rtt() -> None:
    aimd = _aimd(2e6)
    aimd.set_round_trip_time(0.1)
    aimd.update(OVER, 1e6, 0.0)
    aimd.update(OVER, 900e3, 0.05)
    assert aimd.bps == pytest.approx(850e3)
    aimd.update(OVER, 900e3, 0.1)
    assert aimd.bps == pytest.approx(765e3)


def test_the_wait_between_decreases_is_at_most_200_ms() -> None:
    aimd = _aimd(2e6)
    aimd.set_round_trip_time(1.0)
    aimd.update(OVER, 1e6, 0.0)
    aimd.update(OVER, 900e3, 0.15)
    assert aimd.bps == pytest.approx(850e3)
    aimd.update(OVER, 900e3, 0.2)
    assert aimd.bps == pytest.approx(765e3)


def test_throughput_below_half_the_rate_decreases_at_once() -> None:
    aimd = _aimd(2e6)
    aimd.update(OVER, 1e6, 0.0)
    aimd.update(OVER, 400e3, 0.01)
    assert aimd.bps == pytest.approx(340e3)


def test_overuse_before_any_throughput_is_known_halves_every_200_ms() -> None:
    aimd = _aimd(1e6)
    aimd.update(OVER, None, 0.0)
    assert aimd.bps == 500e3
    aimd.update(OVER, None, 0.1)
    assert aimd.bps == 500e3
    aimd.update(OVER, None, 0.2)
    assert aimd.bps == 250e3


def test_the_rate_stays_within_its_bounds() -> None:
    low = AimdRateControl(initial_bps=100e3, min_bps=80e3, max_bps=200e3)
    low.update(OVER, 10e3, 0.0)
    assert low.bps == 80e3
    high = AimdRateControl(initial_bps=100e3, min_bps=80e3, max_bps=200e3)
    _run(high, NORMAL, 1e6, 0.0, 20.0)
    assert high.bps == 200e3
