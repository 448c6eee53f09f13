from __future__ import annotations

from collections.abc import Callable

import pytest

from sfu.rtp.retransmission import RetransmissionBuffer


def test_stored_packet_is_returned_for_its_seq() -> None:
    buf = RetransmissionBuffer()
    buf.store(10, b"ten", 0.0)
    assert buf.get(10, 0.1) == b"ten"


def test_never_stored_seq_returns_none() -> None:
    buf = RetransmissionBuffer()
    buf.store(10, b"ten", 0.0)
    assert buf.get(11, 0.1) is None
    assert buf.get(10 + 1024, 0.1) is None  # same slot, different seq


def test_overwritten_slot_returns_none_for_the_old_seq() -> None:
    buf = RetransmissionBuffer(capacity=4)
    buf.store(1, b"one", 0.0)
    buf.store(5, b"five", 0.01)
    assert buf.get(1, 0.02) is None
    assert buf.get(5, 0.02) == b"five"


def test_packet_older_than_max_age_returns_none() -> None:
    buf = RetransmissionBuffer(max_age=2.0)
    buf.store(3, b"x", 10.0)
    assert buf.get(3, 12.0001) is None


def test_packet_exactly_max_age_old_is_still_returned() -> None:
    buf = RetransmissionBuffer(max_age=2.0)
    buf.store(3, b"x", 10.0)
    assert buf.get(3, 12.0) == b"x"


def test_sequence_wraps_from_65535_to_0() -> None:
    buf = RetransmissionBuffer(capacity=1000)  # does not divide 65536
    buf.store(65535, b"last", 0.0)
    buf.store(0, b"first", 0.02)
    buf.store(1, b"second", 0.04)
    assert buf.get(65535, 0.1) == b"last"
    assert buf.get(0, 0.1) == b"first"
    assert buf.get(1, 0.1) == b"second"


def test_same_seq_one_wrap_later_replaces_the_old_packet() -> None:
    buf = RetransmissionBuffer(capacity=1024)
    buf.store(7, b"old", 0.0)
    buf.store(7, b"new", 1.0)
    assert buf.get(7, 1.1) == b"new"


def test_seq_outside_16_bits_is_masked() -> None:
    buf = RetransmissionBuffer()
    buf.store(65536 + 9, b"nine", 0.0)
    assert buf.get(9, 0.0) == b"nine"


def test_repeat_request_within_min_interval_is_refused() -> None:
    buf = RetransmissionBuffer(min_interval=0.05)
    buf.store(1, b"p", 0.0)
    assert buf.get(1, 0.1) == b"p"
    assert buf.get(1, 0.12) is None
    assert buf.get(1, 0.16) == b"p"


def test_packet_is_resent_at_most_max_retransmits_times() -> None:
    buf = RetransmissionBuffer(max_retransmits=3, min_interval=0.05)
    buf.store(1, b"p", 0.0)
    sent = [buf.get(1, 0.1 * k) for k in range(1, 7)]
    assert sent == [b"p", b"p", b"p", None, None, None]


def test_storing_again_resets_the_retransmit_count() -> None:
    buf = RetransmissionBuffer(max_retransmits=1)
    buf.store(1, b"a", 0.0)
    assert buf.get(1, 0.1) == b"a"
    assert buf.get(1, 0.2) is None
    buf.store(1, b"b", 0.3)
    assert buf.get(1, 0.3) == b"b"


def test_clear_forgets_everything() -> None:
    buf = RetransmissionBuffer()
    for seq in range(10):
        buf.store(seq, bytes([seq]), 0.0)
    buf.clear()
    assert all(buf.get(seq, 0.0) is None for seq in range(10))
    buf.store(3, b"again", 1.0)
    assert buf.get(3, 1.0) == b"again"


def test_full_ring_keeps_the_latest_capacity_packets() -> None:
    buf = RetransmissionBuffer(capacity=16)
    for seq in range(65530, 65530 + 40):
        buf.store(seq, seq.to_bytes(4, "big"), 0.0)
    latest = [(seq & 0xFFFF) for seq in range(65530 + 40 - 16, 65530 + 40)]
    assert all(buf.get(seq, 0.0) is not None for seq in latest)
    assert buf.get((65530 + 40 - 17) & 0xFFFF, 0.0) is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: RetransmissionBuffer(capacity=0),
        lambda: RetransmissionBuffer(capacity=65537),
        lambda: RetransmissionBuffer(max_age=0.0),
        lambda: RetransmissionBuffer(max_retransmits=0),
        lambda: RetransmissionBuffer(min_interval=-1.0),
    ],
)
def test_constructor_rejects_invalid_arguments(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        make()
