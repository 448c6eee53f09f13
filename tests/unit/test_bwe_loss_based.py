from __future__ import annotations

import math

import pytest

from sfu.bwe.loss_based import LossBasedControl
from sfu.bwe.results import PacketResult


class _Viewer:
    """Numbers packets and reports them received or lost."""

    def __init__(self) -> None:
        self.next = 0

    def report(self, received: int, lost: int = 0) -> list[PacketResult]:
        out = []
        for i in range(received + lost):
            seq = self.next + i
            out.append(PacketResult(seq, seq * 0.001, 1200, None if i < lost else seq * 0.001))
        self.next += received + lost
        return out


def _control(initial: float = 1e6) -> LossBasedControl:
    return LossBasedControl(initial_bps=initial, min_bps=50e3, max_bps=20e6)


def test_without_loss_it_grows_8_percent_a_second_from_last_seconds_lowest() -> None:
    control, viewer = _control(), _Viewer()
    for step in range(41):  # feedback every 50 ms for 2 s
        now = step * 0.05
        control.add(viewer.report(10), now)
        control.update(now, math.inf)
    # Steps of 8 % (+1 kbit/s) at 0 s, 1 s and 2 s: each from the rate a second ago.
    expected = 1e6
    for _ in range(3):
        expected = expected * 1.08 + 1000
    assert control.bps == pytest.approx(expected)
    assert control.loss_fraction == 0.0


def test_it_never_exceeds_its_cap() -> None:
    control = _control()
    assert control.update(0.0, 700e3) == 700e3
    assert control.update(0.05, 5e6) == pytest.approx(700e3 * 1.08 + 1000)


def test_loss_between_2_and_10_percent_holds_the_rate() -> None:
    control, viewer = _control(), _Viewer()
    control.add(viewer.report(95, lost=5), 0.0)
    control.add(viewer.report(95, lost=5), 1.0)  # the window closes: 10 of 200
    for step in range(40):
        control.update(1.0 + step * 0.05, math.inf)
    assert control.loss_fraction == pytest.approx(0.05)
    assert control.bps == 1e6


def test_loss_above_10_percent_cuts_by_half_the_loss_once_per_window() -> None:
    control, viewer = _control(), _Viewer()
    control.add(viewer.report(80, lost=20), 0.0)
    control.add(viewer.report(20), 1.0)  # 20 lost of 120
    control.update(1.0, math.inf)
    assert control.loss_fraction == pytest.approx(1 / 6)
    assert control.bps == pytest.approx(1e6 * (1 - 1 / 12))
    for step in range(1, 15):  # the same loss is not answered twice
        control.update(1.0 + step * 0.05, math.inf)
    assert control.bps == pytest.approx(1e6 * (1 - 1 / 12))


def test_each_new_lossy_window_cuts_again() -> None:
    control, viewer = _control(), _Viewer()
    control.add(viewer.report(80, lost=20), 1.0)
    control.add(viewer.report(80, lost=20), 2.0)
    control.update(2.0, math.inf)
    control.add(viewer.report(80, lost=20), 3.0)
    control.update(3.0, math.inf)
    assert control.bps == pytest.approx(1e6 * 0.9 * 0.9)


def test_cuts_are_at_least_300_ms_plus_the_rtt_apart() -> None:
    control, viewer = _control(), _Viewer()
    control.set_round_trip_time(1.0)
    control.add(viewer.report(80, lost=20), 0.0)
    control.add(viewer.report(80, lost=20), 1.0)
    control.update(1.0, math.inf)
    control.add(viewer.report(80, lost=20), 2.0)
    control.update(2.0, math.inf)  # 1 s since the last cut: too soon
    assert control.bps == pytest.approx(1e6 * 0.9)
    control.update(2.35, math.inf)
    assert control.bps == pytest.approx(1e6 * 0.9 * 0.9)


def test_a_window_needs_20_packets() -> None:
    control, viewer = _control(), _Viewer()
    control.add(viewer.report(5, lost=5), 0.0)
    control.add(viewer.report(0, lost=0), 1.5)
    assert control.loss_fraction == 0.0
    control.add(viewer.report(10), 1.6)  # 20 now: 5 lost
    assert control.loss_fraction == pytest.approx(0.25)


def test_a_packet_reported_lost_then_received_counts_as_received() -> None:
    control, viewer = _control(), _Viewer()
    first = viewer.report(90, lost=10)
    control.add(first, 0.0)
    late = [PacketResult(r.sequence, r.send_time, r.size, 5.0) for r in first[:8]]
    control.add(late, 0.5)
    control.add(viewer.report(0), 1.0)
    assert control.loss_fraction == pytest.approx(2 / 100)


def test_the_rate_stays_within_its_bounds() -> None:
    control, viewer = _control(60e3), _Viewer()
    control.add(viewer.report(0, lost=50), 0.0)
    control.add(viewer.report(0, lost=50), 1.0)
    assert control.update(1.0, math.inf) == 50e3
    high = LossBasedControl(initial_bps=1e6, min_bps=50e3, max_bps=1.05e6)
    assert high.update(0.0, math.inf) == 1.05e6
