from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfu.rtp.nack import NackGenerator


def feed(gen: NackGenerator, seqs: list[int], now: float = 0.0) -> None:
    for seq in seqs:
        gen.on_packet(seq, now)


def test_in_order_stream_has_nothing_to_nack() -> None:
    gen = NackGenerator()
    feed(gen, list(range(100, 200)))
    assert gen.due(0.0) == []
    assert gen.missing == []


def test_gap_is_nacked_immediately() -> None:
    gen = NackGenerator()
    feed(gen, [1, 2, 5])
    assert gen.missing == [3, 4]
    assert gen.due(0.0) == [3, 4]


def test_packet_filling_a_gap_is_recovered_and_not_nacked() -> None:
    gen = NackGenerator()
    feed(gen, [1, 2, 5])
    gen.on_packet(3, 0.01)
    assert gen.recovered == 1
    assert gen.due(0.01) == [4]


def test_reordered_packet_arriving_before_due_is_never_nacked() -> None:
    gen = NackGenerator()
    feed(gen, [10, 12, 11])
    assert gen.due(0.0) == []
    assert gen.recovered == 1


def test_duplicates_and_late_non_missing_packets_change_nothing() -> None:
    gen = NackGenerator()
    feed(gen, [10, 11, 12, 12, 11])
    assert gen.missing == []
    assert gen.recovered == 0


def test_gap_across_the_wrap_is_detected() -> None:
    gen = NackGenerator()
    feed(gen, [65533, 65534, 1])
    assert gen.missing == [65535, 0]
    assert gen.due(0.0) == [65535, 0]
    gen.on_packet(0, 0.01)
    assert gen.missing == [65535]


def test_missing_seq_is_renacked_at_most_once_per_retry_interval() -> None:
    gen = NackGenerator(retry_interval=0.05)
    feed(gen, [1, 3])
    assert gen.due(0.0) == [2]
    assert gen.due(0.02) == []
    assert gen.due(0.049) == []
    assert gen.due(0.06) == [2]
    assert gen.due(0.08) == []


def test_missing_seq_is_dropped_and_counted_lost_after_max_retries() -> None:
    gen = NackGenerator(max_retries=3, retry_interval=0.05, max_age=10.0)
    feed(gen, [1, 3])
    sent = [gen.due(0.06 * k) for k in range(6)]
    assert sent == [[2], [2], [2], [], [], []]
    assert gen.lost == 1
    assert gen.missing == []


def test_missing_seq_is_dropped_and_counted_lost_after_max_age() -> None:
    gen = NackGenerator(max_retries=100, retry_interval=0.05, max_age=1.0)
    feed(gen, [1, 3])
    gen.due(0.0)
    assert gen.due(1.01) == []
    assert gen.lost == 1
    assert gen.missing == []


def test_late_arrival_after_giving_up_is_not_counted_recovered() -> None:
    gen = NackGenerator(max_age=0.5)
    feed(gen, [1, 3])
    gen.due(0.6)
    gen.on_packet(2, 0.7)
    assert gen.recovered == 0
    assert gen.lost == 1


def test_single_huge_jump_is_ignored_as_a_stray_packet() -> None:
    gen = NackGenerator(max_missing=500)
    feed(gen, [1, 2, 3])
    gen.on_packet(3000, 0.0)
    gen.on_packet(4, 0.0)
    assert gen.missing == []
    gen.on_packet(6, 0.0)
    assert gen.missing == [5]


def test_confirmed_huge_jump_resets_instead_of_marking_thousands_missing() -> None:
    gen = NackGenerator(max_missing=500)
    feed(gen, [1, 2, 4])
    feed(gen, [3000, 3001])
    assert gen.missing == []
    assert gen.lost == 1  # seq 3 was outstanding and is abandoned
    gen.on_packet(3003, 0.0)
    assert gen.missing == [3002]


def test_confirmed_huge_backwards_jump_restarts_the_stream() -> None:
    gen = NackGenerator(max_missing=500)
    feed(gen, [40000, 40001])
    feed(gen, [100, 101, 103])
    assert gen.missing == [102]


def test_outstanding_list_is_capped_at_max_missing_dropping_oldest() -> None:
    gen = NackGenerator(max_missing=10)
    feed(gen, [0, 8, 16])  # 14 missing in two gaps, each gap within the limit
    assert gen.missing == list(range(5, 8)) + list(range(9, 16))
    assert gen.lost == 4


def test_reset_forgets_the_stream_but_keeps_counters() -> None:
    gen = NackGenerator()
    feed(gen, [1, 2, 5])
    gen.on_packet(3, 0.0)
    gen.reset()
    feed(gen, [9000, 9001])
    assert gen.missing == []
    assert gen.recovered == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: NackGenerator(max_retries=0),
        lambda: NackGenerator(retry_interval=0.0),
        lambda: NackGenerator(max_age=0.0),
        lambda: NackGenerator(max_missing=0),
        lambda: NackGenerator(max_missing=40000),
    ],
)
def test_constructor_rejects_invalid_arguments(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()


@given(
    start=st.integers(0, 65535),
    dropped=st.sets(st.integers(1, 298)),
)
def test_exactly_the_dropped_packets_are_nacked_whatever_the_start(
    start: int, dropped: set[int]
) -> None:
    gen = NackGenerator(max_missing=500)
    for i in range(300):
        if i not in dropped:
            gen.on_packet((start + i) & 0xFFFF, 0.0)
    assert gen.due(0.0) == [(start + i) & 0xFFFF for i in sorted(dropped)]
