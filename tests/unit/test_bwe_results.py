from __future__ import annotations

import pytest

from sfu.bwe.results import FeedbackResolver, PacketResult
from sfu.rtp.twcc import REFERENCE_TIME_PERIOD, TransportFeedback


class _History:
    """A send history: 16-bit sequence -> (send time, size), seq * 10 ms, 1000 + seq bytes."""

    def __init__(self, sent: range | list[int]) -> None:
        self.sent = {s & 0xFFFF: (s * 0.01, 1000 + (s & 0xFFFF)) for s in sent}

    def __call__(self, seq: int) -> tuple[float, int] | None:
        return self.sent.get(seq)


def _feedback(*packets: tuple[int, float | None], count: int = 0) -> TransportFeedback:
    return TransportFeedback(packets[0][0], count, tuple(packets))


def test_each_packet_gets_its_send_time_and_size() -> None:
    resolver = FeedbackResolver(_History(range(10)))
    results = resolver.resolve(_feedback((3, 100.0), (4, None), (5, 100.02)))
    assert results == [
        PacketResult(3, 0.03, 1003, 100.0),
        PacketResult(4, 0.04, 1004, None),
        PacketResult(5, 0.05, 1005, 100.02),
    ]
    assert [r.received for r in results] == [True, False, True]


def test_packets_never_sent_are_skipped() -> None:
    resolver = FeedbackResolver(_History([1, 3]))
    results = resolver.resolve(_feedback((1, 5.0), (2, 5.1), (3, 5.2)))
    assert [r.sequence for r in results] == [1, 3]


def test_sequence_numbers_unwrap_across_feedback() -> None:
    resolver = FeedbackResolver(_History(range(65530, 65540)))
    first = resolver.resolve(_feedback((65533, 1.0), (65534, 1.1), (65535, 1.2)))
    second = resolver.resolve(_feedback((0, 1.3), (1, 1.4)))
    assert [r.sequence for r in first + second] == [65533, 65534, 65535, 65536, 65537]
    assert second[0].send_time == pytest.approx(655.36)


def test_feedback_about_unknown_packets_does_not_move_the_unwrapping() -> None:
    # 40000 was never sent: were it taken as the newest packet, 65535 would unwrap
    # to below zero.
    resolver = FeedbackResolver(_History([5, 6, 65535]))
    resolver.resolve(_feedback((5, 1.0), (6, 1.1)))
    resolver.resolve(_feedback((40000, 1.2)))
    (late,) = resolver.resolve(_feedback((65535, 0.9)))
    assert late.sequence == -1


def test_a_packet_received_is_reported_once() -> None:
    resolver = FeedbackResolver(_History(range(10)))
    resolver.resolve(_feedback((1, 1.0), (2, 1.1)))
    again = resolver.resolve(_feedback((1, 1.0), (2, 1.1), (3, 1.2)))
    assert [r.sequence for r in again] == [3]


def test_a_packet_lost_is_reported_once_until_it_turns_up() -> None:
    resolver = FeedbackResolver(_History(range(10)))
    first = resolver.resolve(_feedback((1, 1.0), (2, None), (3, 1.2)))
    second = resolver.resolve(_feedback((2, None), (3, 1.2), (4, 1.3)))
    third = resolver.resolve(_feedback((2, 1.25), (3, 1.2), (4, 1.3)))
    assert [(r.sequence, r.received) for r in first] == [(1, True), (2, False), (3, True)]
    assert [(r.sequence, r.received) for r in second] == [(4, True)]
    assert third == [PacketResult(2, 0.02, 1002, 1.25)]


def test_reports_older_than_the_duplicate_window_are_ignored() -> None:
    resolver = FeedbackResolver(_History([0, 1, 20_000]))
    resolver.resolve(_feedback((0, 1.0)))
    resolver.resolve(_feedback((20_000, 2.0)))
    assert resolver.resolve(_feedback((0, 1.0), (1, 1.1))) == []


def test_a_slot_reused_after_the_window_moves_on_is_fresh() -> None:
    # Sequence 16384 takes the slot of 0 (2**14 apart): its report must not be
    # mistaken for a duplicate of 0's.
    resolver = FeedbackResolver(_History([0, 10_000, 16_384]))
    resolver.resolve(_feedback((0, 1.0)))
    resolver.resolve(_feedback((10_000, 2.0)))
    (result,) = resolver.resolve(_feedback((16_384, 3.0)))
    assert result.sequence == 16_384


def test_arrival_times_stay_continuous_when_the_reference_time_wraps() -> None:
    # The signed 24-bit reference time goes from its largest value to its smallest
    # between two reports 64 ms apart.
    top = (1 << 23) * 0.064
    resolver = FeedbackResolver(_History(range(10)))
    (before,) = resolver.resolve(_feedback((1, top - 0.064 + 0.001)))
    (after,) = resolver.resolve(_feedback((2, -top + 0.001)))
    (later,) = resolver.resolve(_feedback((3, -top + 0.065)))
    assert before.arrival_time is not None
    assert after.arrival_time is not None
    assert later.arrival_time is not None
    assert after.arrival_time - before.arrival_time == pytest.approx(0.064)
    assert later.arrival_time - after.arrival_time == pytest.approx(0.064)
    assert after.arrival_time == pytest.approx(-top + 0.001 + REFERENCE_TIME_PERIOD)


def test_arrival_times_unwrap_backwards_too() -> None:
    # A report delayed across the wrap arrives after one taken beyond it.
    top = (1 << 23) * 0.064
    resolver = FeedbackResolver(_History(range(10)))
    (after,) = resolver.resolve(_feedback((2, -top + 0.010)))
    (before,) = resolver.resolve(_feedback((1, top - 0.010)))
    assert after.arrival_time is not None
    assert before.arrival_time is not None
    assert after.arrival_time - before.arrival_time == pytest.approx(0.020)
