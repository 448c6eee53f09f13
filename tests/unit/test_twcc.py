from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfu.rtp.rtcp import TransportFeedbackRaw, parse_compound, serialize
from sfu.rtp.twcc import (
    MAX_STATUS_COUNT,
    REFERENCE_TIME_PERIOD,
    TransportFeedback,
    build_feedback,
    parse_feedback,
)

_HEAD = struct.Struct("!HHI")


def _fci(base: int, count: int, reference: int, fb_count: int, body: bytes) -> bytes:
    return _HEAD.pack(base, count, (reference & 0xFFFFFF) << 8 | fb_count) + body


def _ticks(*deltas: int, reference: int = 0) -> list[float]:
    """Arrival times from a reference time (64 ms units) and 250 µs deltas."""
    out, ticks = [], reference * 256
    for delta in deltas:
        ticks += delta
        out.append(ticks / 4000)
    return out


def test_a_run_length_chunk_reports_a_run_of_one_status() -> None:
    # draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1.3's example chunk:
    # T=0, S=01 (received, small delta), run length 221.
    fci = _fci(0x1234, 221, 1, 7, b"\x20\xdd" + bytes([4]) * 221)
    feedback = parse_feedback(fci)
    assert feedback is not None
    assert (feedback.base_sequence, feedback.feedback_count) == (0x1234, 7)
    assert [seq for seq, _ in feedback.packets] == list(range(0x1234, 0x1234 + 221))
    assert [arrival for _, arrival in feedback.packets] == _ticks(*[4] * 221, reference=1)
    assert feedback.packets[0][1] == pytest.approx(0.065)


def test_a_run_length_chunk_of_lost_packets_needs_no_deltas() -> None:
    feedback = parse_feedback(_fci(10, 3, 0, 0, b"\x00\x03"))
    assert feedback == TransportFeedback(10, 0, ((10, None), (11, None), (12, None)))


def test_a_one_bit_status_vector_reports_received_or_not_per_packet() -> None:
    # §3.1.4's example: T=1, S=0, then 0 1 1 1 1 1 0 0 0 1 1 1 0 0.
    deltas = bytes([1, 2, 3, 4, 5, 6, 7, 8])
    feedback = parse_feedback(_fci(100, 14, 0, 0, b"\x9f\x1c" + deltas))
    assert feedback is not None
    received = [arrival is not None for _, arrival in feedback.packets]
    assert received == [False] + [True] * 5 + [False] * 3 + [True] * 3 + [False] * 2
    times = [arrival for _, arrival in feedback.packets if arrival is not None]
    assert times == _ticks(1, 2, 3, 4, 5, 6, 7, 8)


def test_a_two_bit_status_vector_carries_small_large_and_negative_deltas() -> None:
    # T=1, S=1, then 01 10 00 10 01 00 00: small, large, lost, large, small, lost, lost.
    deltas = bytes([10]) + struct.pack("!h", -8) + struct.pack("!h", 1000) + bytes([255])
    feedback = parse_feedback(_fci(7, 7, 0, 0, b"\xd8\x90" + deltas))
    assert feedback is not None
    assert [arrival for _, arrival in feedback.packets] == [
        10 / 4000,
        2 / 4000,  # 8 ticks (2 ms) before the previous: reordered on the way
        None,
        1002 / 4000,
        1257 / 4000,
        None,
        None,
    ]


def test_large_deltas_span_the_signed_16_bit_range() -> None:
    body = b"\x40\x02" + struct.pack("!hh", 0x7FFF, -0x8000)  # run of 2 "large"
    feedback = parse_feedback(_fci(0, 2, 1000, 0, body))
    assert feedback is not None
    assert [arrival for _, arrival in feedback.packets] == _ticks(0x7FFF, -0x8000, reference=1000)


@pytest.mark.parametrize(
    ("field", "seconds"),
    [
        (0x000000, 0.0),
        (0x7FFFFF, 0x7FFFFF * 0.064),
        (0x800000, -0x800000 * 0.064),  # the signed field wraps here
        (0xFFFFFF, -0.064),
    ],
)
def test_the_reference_time_is_a_signed_24_bit_count_of_64_ms(field: int, seconds: float) -> None:
    feedback = parse_feedback(_fci(0, 1, field, 0, b"\x20\x01\x00"))
    assert feedback is not None
    assert feedback.packets[0][1] == pytest.approx(seconds, abs=1e-9)


def test_the_reference_time_period_is_2_to_the_24_units_of_64_ms() -> None:
    assert pytest.approx(1_073_741.824) == REFERENCE_TIME_PERIOD


def test_surplus_symbols_in_the_last_chunk_are_ignored() -> None:
    # A one-bit vector covers 14 packets; the status count says 3.
    feedback = parse_feedback(_fci(0, 3, 0, 0, b"\xbf\xff\x01\x01\x01"))
    assert feedback is not None
    assert len(feedback.packets) == 3


def test_zero_padding_after_the_deltas_is_ignored() -> None:
    fci = _fci(0, 1, 0, 0, b"\x20\x01\x05")
    assert parse_feedback(fci + b"\x00\x00\x00") == parse_feedback(fci)


# A feedback packet laid out as libwebrtc's encoder writes it (Chromium's receive
# side): ten packets across the sequence wrap, one lost, one reordered. The first
# seven statuses hold a large (negative) delta, so they take a two-bit vector; the
# last three are all "small", a run length chunk. RTCP padding with the P bit.
CHROMIUM_SHAPED = bytes.fromhex(
    "afcd0008"  # V=2 P=1 FMT=15, PT=205 (RTPFB), length 8 words
    "fa17fa17"  # sender SSRC
    "00000000"  # media SSRC
    "fffc000a"  # base sequence 65532, status count 10
    "00a00005"  # reference time 40960 * 64 ms, feedback packet count 5
    "d465"  # 11|01 01 00 01 10 01 01: small small lost small large small small
    "2003"  # 0|01|3: three small
    "0c1418"  # +3 ms, +5 ms, +6 ms
    "fff8"  # -2 ms: sequence 0 arrived before 65535
    "28040404"  # +10 ms, +1 ms, +1 ms, +1 ms
    "00"  # +0
    "0002"  # RTCP padding, its count last
)


def test_a_chromium_shaped_packet_parses_through_the_rtcp_layer() -> None:
    (raw,) = parse_compound(CHROMIUM_SHAPED)
    assert isinstance(raw, TransportFeedbackRaw)
    assert raw.sender_ssrc == 0xFA17FA17
    feedback = parse_feedback(raw.fci)
    assert feedback is not None
    assert (feedback.base_sequence, feedback.feedback_count) == (65532, 5)
    reference = 40960 * 0.064
    expected_ms = [3, 8, None, 14, 12, 22, 23, 24, 25, 25]
    assert [seq for seq, _ in feedback.packets] == [65532, 65533, 65534, 65535, 0, 1, 2, 3, 4, 5]
    for (_, arrival), ms in zip(feedback.packets, expected_ms, strict=True):
        if ms is None:
            assert arrival is None
        else:
            assert arrival == pytest.approx(reference + ms / 1000, abs=1e-9)


def test_build_feedback_writes_the_chromium_shaped_packet_byte_for_byte() -> None:
    reference = 40960 * 0.064
    arrivals = [
        None if ms is None else reference + ms / 1000
        for ms in [3, 8, None, 14, 12, 22, 23, 24, 25, 25]
    ]
    fci = build_feedback(65532, 40960, arrivals, feedback_count=5)
    assert serialize(TransportFeedbackRaw(0xFA17FA17, 0, fci)) == CHROMIUM_SHAPED


@pytest.mark.parametrize(
    ("fci", "why"),
    [
        (b"", "empty"),
        (_HEAD.pack(0, 1, 0)[:7], "header cut short"),
        (_fci(0, 0, 0, 0, b"\x20\x01\x00"), "status count 0"),
        (_fci(0, MAX_STATUS_COUNT + 1, 0, 0, b"\x00\x00" * 5000), "absurd count"),
        (_fci(0, 5, 0, 0, b"\x20\x04\x01\x01\x01\x01"), "chunks cover 4 of 5"),
        (_fci(0, 3, 0, 0, b"\x20\x03\x01\x01"), "a small delta missing"),
        (_fci(0, 1, 0, 0, b"\x40\x01\x01"), "half a large delta"),
        (_fci(0, 2, 0, 0, b"\x60\x02"), "run of the reserved symbol"),
        (_fci(0, 2, 0, 0, b"\xf0\x00\x01"), "reserved symbol in a two-bit vector"),
    ],
)
def test_malformed_feedback_is_none(fci: bytes, why: str) -> None:
    assert parse_feedback(fci) is None, why


def test_a_zero_length_run_covers_nothing() -> None:
    feedback = parse_feedback(_fci(0, 1, 0, 0, b"\x20\x00\x20\x01\x09"))
    assert feedback is not None
    assert feedback.packets == ((0, 9 / 4000),)


def test_the_largest_report_round_trips() -> None:
    arrivals = _ticks(*[1] * MAX_STATUS_COUNT)
    feedback = parse_feedback(build_feedback(65535, 0, arrivals))
    assert feedback is not None
    assert [a for _, a in feedback.packets] == arrivals
    assert feedback.packets[-1][0] == (65535 + MAX_STATUS_COUNT - 1) & 0xFFFF


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_sequence": 65536}, "base_sequence"),
        ({"reference_time": 1 << 23}, "reference_time"),
        ({"reference_time": -(1 << 23) - 1}, "reference_time"),
        ({"feedback_count": 256}, "feedback_count"),
        ({"arrivals": []}, "covers"),
        ({"arrivals": [0.0] * (MAX_STATUS_COUNT + 1)}, "covers"),
        ({"arrivals": [0.0, 9.0]}, "too far"),
        ({"arrivals": [-9.0]}, "too far"),
    ],
)
def test_build_feedback_refuses_what_does_not_fit(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"base_sequence": 0, "reference_time": 0, "arrivals": [0.0]}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        build_feedback(**args)  # type: ignore[arg-type]


_statuses = st.lists(
    st.one_of(st.none(), st.integers(-0x8000, 0x7FFF), st.integers(0, 0xFF)),
    min_size=1,
    max_size=300,
)


@given(
    base=st.integers(0, 0xFFFF),
    reference=st.integers(-(1 << 23), (1 << 23) - 1),
    fb_count=st.integers(0, 255),
    statuses=_statuses,
)
def test_feedback_round_trips(
    base: int, reference: int, fb_count: int, statuses: list[int | None]
) -> None:
    ticks = reference * 256
    arrivals: list[float | None] = []
    for delta in statuses:
        if delta is None:
            arrivals.append(None)
        else:
            ticks += delta
            arrivals.append(ticks / 4000)
    fci = build_feedback(base, reference, arrivals, feedback_count=fb_count)
    feedback = parse_feedback(fci)
    assert feedback == TransportFeedback(
        base,
        fb_count,
        tuple(((base + i) & 0xFFFF, a) for i, a in enumerate(arrivals)),
    )
    # Every truncation that loses a chunk or a delta is refused, never misread.
    for cut in range(len(fci)):
        assert parse_feedback(fci[:cut]) is None


@given(st.binary(max_size=512))
def test_garbage_never_raises(data: bytes) -> None:
    feedback = parse_feedback(data)
    if feedback is not None:
        assert len(feedback.packets) == _HEAD.unpack_from(data)[1]


@given(
    statuses=_statuses,
    flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
)
def test_corrupted_feedback_never_raises(
    statuses: list[int | None], flips: list[tuple[int, int]]
) -> None:
    ticks, arrivals = 0, []
    for delta in statuses:
        ticks += delta or 0
        arrivals.append(None if delta is None else ticks / 4000)
    data = bytearray(build_feedback(0, 0, arrivals))
    for position, value in flips:
        data[position % len(data)] = value
    feedback = parse_feedback(bytes(data))
    assert feedback is None or 0 < len(feedback.packets) <= MAX_STATUS_COUNT
