from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfu.rtp.seq import OutputSequencer, SequenceExtender, seq_diff, seq_is_newer


def test_seq_diff_is_plain_subtraction_for_close_numbers() -> None:
    assert seq_diff(10, 3) == 7
    assert seq_diff(3, 10) == -7
    assert seq_diff(5, 5) == 0


def test_seq_diff_crosses_the_wrap() -> None:
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(2, 65530) == 8


def test_seq_diff_half_space_is_negative() -> None:
    assert seq_diff(32768, 0) == -32768
    assert seq_diff(32767, 0) == 32767


@given(st.integers(0, 65535), st.integers(0, 65535))
def test_seq_diff_stays_in_signed_16_bit_range_and_is_consistent(a: int, b: int) -> None:
    d = seq_diff(a, b)
    assert -32768 <= d <= 32767
    assert (b + d) % 65536 == a


def test_seq_is_newer_across_wrap() -> None:
    assert seq_is_newer(0, 65535)
    assert not seq_is_newer(65535, 0)
    assert not seq_is_newer(7, 7)
    assert seq_is_newer(100, 50)


def test_extender_first_packet_maps_to_itself() -> None:
    ext = SequenceExtender()
    assert ext.highest is None
    assert ext.extend(1234) == 1234
    assert ext.highest == 1234


def test_sequence_wraps_from_65535_to_0_into_next_cycle() -> None:
    ext = SequenceExtender()
    assert ext.extend(65534) == 65534
    assert ext.extend(65535) == 65535
    assert ext.extend(0) == 65536
    assert ext.extend(1) == 65537


def test_extender_tolerates_reordering_across_the_wrap() -> None:
    ext = SequenceExtender()
    ext.extend(65535)
    assert ext.extend(1) == 65537
    assert ext.extend(0) == 65536  # late, still placed correctly
    assert ext.highest == 65537


def test_extender_reset_forgets_history() -> None:
    ext = SequenceExtender()
    ext.extend(65535)
    ext.extend(0)
    ext.reset()
    assert ext.extend(5) == 5


def test_first_packet_gets_initial_seq_and_timestamp() -> None:
    s = OutputSequencer(90000, initial_seq=100, initial_timestamp=5000)
    assert s.map(40000, 123456789, 0.0) == (100, 5000)
    assert s.last_output_seq == 100
    assert s.last_output_timestamp == 5000


def test_within_epoch_output_follows_input_by_fixed_offset() -> None:
    s = OutputSequencer(90000, initial_seq=100, initial_timestamp=5000)
    s.map(40000, 1000, 0.0)
    assert s.map(40001, 4000, 0.033) == (101, 8000)
    assert s.map(40002, 4000, 0.034) == (102, 8000)


def test_gaps_in_input_stay_gaps_in_output() -> None:
    s = OutputSequencer(90000, initial_seq=0, initial_timestamp=0)
    s.map(10, 0, 0.0)
    assert s.map(13, 0, 0.01) == (3, 0)
    assert s.last_output_seq == 3


def test_late_packet_maps_to_its_own_output_seq_and_does_not_move_highest() -> None:
    s = OutputSequencer(90000, initial_seq=0, initial_timestamp=0)
    s.map(10, 0, 0.0)
    s.map(13, 3000, 0.1)
    assert s.map(11, 0, 0.2) == (1, 0)
    assert s.last_output_seq == 3
    assert s.last_output_timestamp == 3000


def test_input_sequence_wraps_within_epoch() -> None:
    s = OutputSequencer(48000, initial_seq=500, initial_timestamp=0)
    s.map(65534, 0, 0.0)
    assert s.map(65535, 960, 0.02) == (501, 960)
    assert s.map(0, 1920, 0.04) == (502, 1920)
    assert s.map(1, 2880, 0.06) == (503, 2880)


def test_output_sequence_and_timestamp_wrap() -> None:
    s = OutputSequencer(48000, initial_seq=65535, initial_timestamp=0xFFFFFE00)
    s.map(100, 0, 0.0)
    assert s.map(101, 960, 0.02) == (0, (0xFFFFFE00 + 960) & 0xFFFFFFFF)
    assert s.last_output_seq == 0
    assert s.last_output_timestamp == 960 - 0x200


def test_pause_and_resume_continues_seq_and_advances_timestamp_by_elapsed_time() -> None:
    s = OutputSequencer(90000, initial_seq=1000, initial_timestamp=0)
    s.map(1, 0, 10.0)
    s.map(2, 3000, 10.1)
    s.resync()
    # Same source resumes after 2.4 s with its own counters having moved on.
    assert s.map(500, 999999, 12.5) == (1002, 3000 + round(2.4 * 90000))
    assert s.map(501, 999999 + 3000, 12.533) == (1003, 3000 + round(2.4 * 90000) + 3000)


def test_switching_to_unrelated_source_keeps_output_continuous() -> None:
    s = OutputSequencer(48000, initial_seq=7, initial_timestamp=100)
    s.map(30000, 4_000_000_000, 0.0)
    s.map(30001, 4_000_000_960, 0.02)
    s.resync()
    assert s.map(12, 55, 0.04) == (9, 100 + 960 + 960)
    assert s.map(13, 55 + 960, 0.06) == (10, 100 + 960 + 960 + 960)


def test_new_epoch_timestamp_advances_at_least_one_tick() -> None:
    s = OutputSequencer(48000, initial_seq=0, initial_timestamp=0)
    s.map(1, 0, 5.0)
    s.resync()
    assert s.map(900, 77, 5.0) == (1, 1)


def test_packets_from_before_the_epoch_start_are_dropped() -> None:
    s = OutputSequencer(90000, initial_seq=0, initial_timestamp=0)
    s.map(100, 0, 0.0)
    s.map(101, 0, 0.0)
    s.resync()
    s.map(5000, 0, 1.0)
    assert s.map(4999, 0, 1.01) is None
    assert s.map(101, 0, 1.01) is None
    assert s.map(5001, 0, 1.02) == (3, round(1.0 * 90000))


def test_packets_before_the_first_epoch_start_across_wrap_are_dropped() -> None:
    s = OutputSequencer(90000, initial_seq=0, initial_timestamp=0)
    s.map(0, 0, 0.0)
    assert s.map(65535, 0, 0.0) is None


def test_resync_before_any_packet_still_uses_initial_values() -> None:
    s = OutputSequencer(90000, initial_seq=42, initial_timestamp=9)
    s.resync()
    assert s.map(1, 1, 3.0) == (42, 9)


def test_input_sequence_inverts_the_mapping_within_the_epoch() -> None:
    s = OutputSequencer(90000, initial_seq=65534, initial_timestamp=0)
    s.map(1000, 0, 0.0)
    s.map(1003, 0, 0.1)
    assert s.input_sequence(65534) == 1000
    assert s.input_sequence(0) == 1002  # output wrapped, the gap is still answerable
    assert s.input_sequence(1) == 1003


def test_input_sequence_is_none_outside_what_the_epoch_sent() -> None:
    s = OutputSequencer(90000, initial_seq=100, initial_timestamp=0)
    assert s.input_sequence(100) is None  # nothing sent yet
    s.map(5000, 0, 0.0)
    s.map(5001, 0, 0.0)
    assert s.input_sequence(99) is None  # before the epoch
    assert s.input_sequence(102) is None  # not sent yet
    s.resync()
    assert s.input_sequence(101) is None  # an old packet must not open the new epoch
    s.map(7, 0, 1.0)
    assert s.input_sequence(102) == 7
    assert s.input_sequence(101) is None


def test_output_timestamp_translates_into_the_current_epoch() -> None:
    s = OutputSequencer(48000, initial_seq=0, initial_timestamp=1000)
    assert s.output_timestamp(5) is None
    s.map(1, 2**32 - 10, 0.0)
    assert s.output_timestamp(2**32 - 10 + 960) == 1960
    assert s.output_timestamp(5) == 1015  # input wrapped
    s.resync()
    assert s.output_timestamp(5) is None


@pytest.mark.parametrize(
    ("clock_rate", "seq", "ts"), [(0, 0, 0), (90000, -1, 0), (90000, 65536, 0), (90000, 0, 2**32)]
)
def test_constructor_rejects_out_of_range_arguments(clock_rate: int, seq: int, ts: int) -> None:
    with pytest.raises(ValueError):
        OutputSequencer(clock_rate, seq, ts)


@given(
    start=st.integers(0, 65535),
    initial=st.integers(0, 65535),
    steps=st.lists(st.integers(1, 200), min_size=1, max_size=400),
)
def test_output_increments_equal_input_increments_within_an_epoch(
    start: int, initial: int, steps: list[int]
) -> None:
    s = OutputSequencer(90000, initial_seq=initial, initial_timestamp=0)
    first = s.map(start, 0, 0.0)
    assert first is not None
    prev_in, prev_out = start, first[0]
    for i, step in enumerate(steps):
        seq = (prev_in + step) & 0xFFFF
        mapped = s.map(seq, 0, 0.001 * i)
        assert mapped is not None
        assert (mapped[0] - prev_out) & 0xFFFF == step
        assert s.last_output_seq == mapped[0]
        prev_in, prev_out = seq, mapped[0]
