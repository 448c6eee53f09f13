from __future__ import annotations

import pytest

from sfu.bwe.acked_bitrate import AcknowledgedBitrate

# Packets every 1/128 s (exact in binary, so windows close where expected).
_STEP = 1 / 128


def _feed(acked: AcknowledgedBitrate, start: float, seconds: float, size: int) -> float:
    """`size`-byte packets every _STEP from `start` for `seconds`; returns the next time."""
    t = start
    for _ in range(round(seconds / _STEP)):
        acked.update(t, size)
        t += _STEP
    return t


def test_nothing_is_known_before_the_first_half_second() -> None:
    acked = AcknowledgedBitrate()
    _feed(acked, 0.0, 0.5, 1200)
    assert acked.bps is None
    acked.update(0.5, 1200)
    assert acked.bps == pytest.approx(1200 * 8 * 128)


def test_a_steady_rate_is_measured_within_a_packet_per_window() -> None:
    # 150 ms windows hold 19 or 20 of these packets: samples are 5 % apart.
    acked = AcknowledgedBitrate()
    _feed(acked, 0.0, 5.0, 1000)
    assert acked.bps == pytest.approx(1000 * 8 * 128, rel=0.05)


def test_a_drop_to_a_third_is_followed_within_about_a_second() -> None:
    acked = AcknowledgedBitrate()
    t = _feed(acked, 0.0, 3.0, 1200)  # 1.23 Mbit/s
    after_one_window = _feed(acked, t, 0.16, 400)
    first = acked.bps
    assert first is not None
    assert first > 0.8 * 1200 * 8 * 128  # one window does not convince it
    _feed(acked, after_one_window, 1.1, 400)
    assert acked.bps == pytest.approx(400 * 8 * 128, rel=0.1)


def test_one_bursty_window_moves_the_estimate_little() -> None:
    acked = AcknowledgedBitrate()
    t = _feed(acked, 0.0, 3.0, 1000)
    steady = acked.bps
    assert steady is not None
    t = _feed(acked, t, 0.15, 2000)  # one window at twice the rate
    t = _feed(acked, t, 0.02, 1000)
    bursty = acked.bps
    assert bursty is not None
    assert steady < bursty < 1.2 * steady


def test_bytes_before_a_silence_longer_than_a_window_are_dropped() -> None:
    acked = AcknowledgedBitrate()
    t = _feed(acked, 0.0, 1.0, 1000)
    for _ in range(5):  # 20 packets of 10 kB, then nothing for a second
        acked.update(t, 10_000)
    t += 1.0
    before = acked.bps
    t = _feed(acked, t, 0.16, 1000)
    assert acked.bps == pytest.approx(before, rel=0.01)


def test_arrivals_going_back_in_time_restart_the_window_without_failing() -> None:
    acked = AcknowledgedBitrate()
    _feed(acked, 100.0, 1.0, 1000)
    estimate = acked.bps
    _feed(acked, 10.0, 0.1, 1000)
    assert acked.bps == estimate  # no window has closed since
    _feed(acked, 10.1, 1.5, 500)
    assert acked.bps == pytest.approx(500 * 8 * 128, rel=0.1)
