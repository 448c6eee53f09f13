from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfu.rtp.header import (
    ONE_BYTE_PROFILE,
    TWO_BYTE_PROFILE,
    RtpPacketView,
    audio_level,
    encode_extensions,
    iter_extensions,
    rewrite,
)
from tests.packets import make_rtp, parse_rtp

# -- parsing valid packets ---------------------------------------------------------


def test_fixed_header_fields_are_read() -> None:
    data = make_rtp(0xBEEF, 0xDEADBEEF, 0x01020304, 111, True, payload=b"hello")

    view = parse_rtp(data)

    assert view.sequence_number == 0xBEEF
    assert view.timestamp == 0xDEADBEEF
    assert view.ssrc == 0x01020304
    assert view.payload_type == 111
    assert view.marker is True
    assert view.payload == b"hello"
    assert view.payload_size == 5
    assert view.ext_start == view.ext_end == 12
    assert view.extensions() == []
    assert view.data is data


def test_marker_clear_and_payload_type_zero() -> None:
    view = parse_rtp(make_rtp(1, 2, 3, 0, False, payload=b"x"))
    assert view.marker is False
    assert view.payload_type == 0


def test_csrcs_are_skipped_to_reach_the_payload() -> None:
    data = make_rtp(1, 2, 3, 96, csrcs=(0xA, 0xB, 0xC), payload=b"after csrcs")

    view = parse_rtp(data)

    assert view.payload_start == 12 + 3 * 4
    assert view.payload == b"after csrcs"


def test_padding_is_excluded_from_the_payload() -> None:
    view = parse_rtp(make_rtp(1, 2, 3, 96, payload=b"media", padding=7))

    assert view.payload == b"media"
    assert view.payload_end == len(view.data) - 7


def test_packet_of_padding_only_has_an_empty_payload() -> None:
    view = parse_rtp(make_rtp(1, 2, 3, 96, payload=b"", padding=200))
    assert view.payload_size == 0


def test_empty_payload_is_valid() -> None:
    view = parse_rtp(make_rtp(1, 2, 3, 96, payload=b""))
    assert view.payload == b""


def test_one_byte_extensions_are_read_in_order() -> None:
    data = make_rtp(
        1, 2, 3, 96, extensions=[(1, b"0"), (2, b"\x85"), (14, bytes(range(16)))], payload=b"p"
    )

    view = parse_rtp(data)

    assert view.ext_profile == ONE_BYTE_PROFILE
    assert view.extensions() == [(1, b"0"), (2, b"\x85"), (14, bytes(range(16)))]
    assert view.extension(2) == b"\x85"
    assert view.extension(3) is None
    assert view.payload == b"p"


def test_one_byte_extensions_skip_padding_octets_between_elements() -> None:
    body = bytes([0x10]) + b"a" + b"\x00\x00" + bytes([0x21]) + b"bc"  # 1:"a", pad, 2:"bc"
    body += b"\x00" * (-len(body) % 4)
    block = struct.pack("!HH", ONE_BYTE_PROFILE, len(body) // 4) + body
    data = bytes([0x90, 96]) + struct.pack("!HII", 1, 2, 3) + block + b"payload"

    view = parse_rtp(data)

    assert view.extensions() == [(1, b"a"), (2, b"bc")]
    assert view.payload == b"payload"


def test_one_byte_id_15_stops_extension_processing() -> None:
    body = bytes([0x10]) + b"a" + bytes([0xF0]) + b"z" + bytes([0x20]) + b"b"
    body += b"\x00" * (-len(body) % 4)
    block = struct.pack("!HH", ONE_BYTE_PROFILE, len(body) // 4) + body
    data = bytes([0x90, 96]) + struct.pack("!HII", 1, 2, 3) + block

    assert parse_rtp(data).extensions() == [(1, b"a")]


def test_two_byte_extensions_allow_large_ids_and_long_or_empty_values() -> None:
    elements = [(1, b"m"), (200, bytes(range(40))), (17, b"")]
    data = make_rtp(1, 2, 3, 96, extensions=elements, two_byte=True, payload=b"p")

    view = parse_rtp(data)

    assert view.ext_profile & 0xFFF0 == TWO_BYTE_PROFILE
    assert view.extensions() == elements
    assert view.extension(200) == bytes(range(40))
    assert view.payload == b"p"


def test_extension_with_an_unknown_profile_has_no_elements_but_the_payload_is_found() -> None:
    block = struct.pack("!HH", 0xABCD, 1) + b"\x11\x22\x33\x44"
    data = bytes([0x90, 96]) + struct.pack("!HII", 1, 2, 3) + block + b"pay"

    view = parse_rtp(data)

    assert view.extensions() == []
    assert view.payload == b"pay"


def test_element_running_past_the_block_is_dropped_quietly() -> None:
    body = bytes([0x10]) + b"a" + bytes([0x2F]) + b"\x00"  # 2: claims 16 octets, has 1
    block = struct.pack("!HH", ONE_BYTE_PROFILE, len(body) // 4) + body
    data = bytes([0x90, 96]) + struct.pack("!HII", 1, 2, 3) + block + b"rest"

    view = parse_rtp(data)

    assert view.extensions() == [(1, b"a")]
    assert view.payload == b"rest"


# -- rejecting what is not RTP -------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x80" * 11, id="shorter-than-fixed-header"),
        pytest.param(bytes([0x40, 96]) + bytes(10), id="version-1"),
        pytest.param(bytes([0x00, 96]) + bytes(10), id="version-0"),
        pytest.param(bytes([0x83, 96]) + bytes(10) + bytes(8), id="csrc-count-beyond-data"),
        pytest.param(bytes([0x90, 96]) + bytes(10) + b"\xbe\xde", id="truncated-ext-header"),
        pytest.param(
            bytes([0x90, 96]) + bytes(10) + b"\xbe\xde\x00\x02" + bytes(4), id="ext-beyond-data"
        ),
        pytest.param(bytes([0xA0, 96]) + bytes(10) + b"ab\x00", id="padding-count-zero"),
        pytest.param(bytes([0xA0, 96]) + bytes(10) + b"ab\x09", id="padding-beyond-payload"),
    ],
)
def test_malformed_packets_parse_to_none(data: bytes) -> None:
    assert RtpPacketView.parse(data) is None


@given(st.binary(max_size=300))
def test_parse_never_raises_and_offsets_stay_inside_the_packet(data: bytes) -> None:
    view = RtpPacketView.parse(data)
    if view is None:
        return
    assert 12 <= view.ext_start <= view.ext_end <= view.payload_start
    assert view.payload_start <= view.payload_end <= len(data)
    for element_id, value in view.extensions():
        assert 0 < element_id < 256
        assert len(value) <= 255


@given(st.binary(min_size=12, max_size=200))
def test_any_bytes_with_version_2_parse_or_return_none_without_raising(data: bytes) -> None:
    data = bytes([0x80 | (data[0] & 0x3F)]) + data[1:]
    view = RtpPacketView.parse(data)
    if view is not None:
        view.extensions()
        audio_level(view, 1)


# -- round trips ---------------------------------------------------------------------

one_byte_elements = st.lists(
    st.tuples(st.integers(1, 14), st.binary(min_size=1, max_size=16)), max_size=8
)
two_byte_elements = st.lists(
    st.tuples(st.integers(1, 255), st.binary(max_size=255)), min_size=1, max_size=6
).filter(lambda els: not all(0 < i < 15 and 0 < len(v) <= 16 for i, v in els))


@given(
    seq=st.integers(0, 0xFFFF),
    ts=st.integers(0, 0xFFFF_FFFF),
    ssrc=st.integers(0, 0xFFFF_FFFF),
    pt=st.integers(0, 127),
    marker=st.booleans(),
    csrcs=st.lists(st.integers(0, 0xFFFF_FFFF), max_size=15),
    elements=one_byte_elements,
    payload=st.binary(max_size=100),
    padding=st.integers(0, 255),
)
def test_built_packets_parse_back_to_their_fields(
    seq: int,
    ts: int,
    ssrc: int,
    pt: int,
    marker: bool,
    csrcs: list[int],
    elements: list[tuple[int, bytes]],
    payload: bytes,
    padding: int,
) -> None:
    data = make_rtp(seq, ts, ssrc, pt, marker, elements, payload, csrcs=csrcs, padding=padding)

    view = parse_rtp(data)

    assert (view.sequence_number, view.timestamp, view.ssrc) == (seq, ts, ssrc)
    assert (view.payload_type, view.marker) == (pt, marker)
    assert view.extensions() == elements
    assert view.payload == payload


@given(st.one_of(one_byte_elements, two_byte_elements))
def test_encode_extensions_round_trips_through_the_parser(
    elements: list[tuple[int, bytes]],
) -> None:
    block = encode_extensions(elements)
    if not elements:
        assert block == b""
        return
    assert len(block) % 4 == 0
    profile, words = struct.unpack_from("!HH", block)
    assert words * 4 == len(block) - 4
    assert iter_extensions(block, profile, 4, len(block)) == elements

    header = bytes([0x90, 96]) + struct.pack("!HII", 1, 2, 3)
    view = parse_rtp(header + block + b"payload")
    assert view.extensions() == elements
    assert view.payload == b"payload"


def test_encode_extensions_prefers_the_one_byte_form() -> None:
    block = encode_extensions([(1, b"a"), (14, b"x" * 16)])
    assert struct.unpack_from("!H", block)[0] == ONE_BYTE_PROFILE


@pytest.mark.parametrize(
    "elements",
    [[(15, b"a")], [(1, b"")], [(1, b"x" * 17)], [(1, b"a"), (100, b"b")]],
    ids=["id-15", "empty-value", "value-17-octets", "one-large-id"],
)
def test_encode_extensions_falls_back_to_two_byte_form(elements: list[tuple[int, bytes]]) -> None:
    block = encode_extensions(elements)
    assert struct.unpack_from("!H", block)[0] == TWO_BYTE_PROFILE
    assert iter_extensions(block, TWO_BYTE_PROFILE, 4, len(block)) == elements


# -- rewrite -------------------------------------------------------------------------


def test_rewrite_sets_the_new_header_fields_and_keeps_the_payload() -> None:
    original = parse_rtp(
        make_rtp(10, 20, 30, 120, True, [(1, b"mid"), (2, b"\x80")], b"payload bytes")
    )
    block = encode_extensions([(4, b"7"), (1, b"\x85")])

    out = parse_rtp(
        rewrite(
            original,
            payload_type=96,
            sequence_number=65535,
            timestamp=0xFFFF_FFFF,
            ssrc=0xCAFEBABE,
            extension_block=block,
        )
    )

    assert out.payload_type == 96
    assert out.sequence_number == 65535
    assert out.timestamp == 0xFFFF_FFFF
    assert out.ssrc == 0xCAFEBABE
    assert out.marker is True
    assert out.extensions() == [(4, b"7"), (1, b"\x85")]
    assert out.payload == b"payload bytes"


def test_rewrite_without_extensions_clears_the_extension_bit() -> None:
    original = parse_rtp(make_rtp(1, 2, 3, 100, False, [(1, b"x")], b"data"))

    data = rewrite(
        original, payload_type=100, sequence_number=5, timestamp=6, ssrc=7, extension_block=b""
    )

    assert data[0] & 0x10 == 0
    out = parse_rtp(data)
    assert out.extensions() == []
    assert out.payload == b"data"
    assert len(data) == 12 + 4


def test_rewrite_drops_csrcs_and_keeps_padding() -> None:
    original = parse_rtp(make_rtp(1, 2, 3, 100, csrcs=(1, 2), payload=b"media", padding=3))

    data = rewrite(
        original, payload_type=101, sequence_number=9, timestamp=9, ssrc=9, extension_block=b""
    )

    out = parse_rtp(data)
    assert data[0] & 0x0F == 0
    assert out.payload == b"media"
    assert out.payload_end == len(data) - 3


@given(
    marker=st.booleans(),
    csrcs=st.lists(st.integers(0, 0xFFFF_FFFF), max_size=4),
    old_elements=st.one_of(one_byte_elements, two_byte_elements),
    new_elements=st.one_of(one_byte_elements, two_byte_elements),
    payload=st.binary(max_size=64),
    padding=st.integers(0, 32),
    seq=st.integers(0, 0xFFFF),
    ts=st.integers(0, 0xFFFF_FFFF),
    ssrc=st.integers(0, 0xFFFF_FFFF),
    pt=st.integers(0, 127),
)
def test_rewrite_output_always_parses_back_with_the_new_fields(
    marker: bool,
    csrcs: list[int],
    old_elements: list[tuple[int, bytes]],
    new_elements: list[tuple[int, bytes]],
    payload: bytes,
    padding: int,
    seq: int,
    ts: int,
    ssrc: int,
    pt: int,
) -> None:
    two_byte = bool(old_elements) and not all(
        0 < i < 15 and 0 < len(v) <= 16 for i, v in old_elements
    )
    original = parse_rtp(
        make_rtp(
            1,
            2,
            3,
            100,
            marker,
            old_elements,
            payload,
            csrcs=csrcs,
            padding=padding,
            two_byte=two_byte,
        )
    )

    out = parse_rtp(
        rewrite(
            original,
            payload_type=pt,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            extension_block=encode_extensions(new_elements),
        )
    )

    assert (out.payload_type, out.sequence_number, out.timestamp, out.ssrc) == (pt, seq, ts, ssrc)
    assert out.marker is marker
    assert out.extensions() == new_elements
    assert out.payload == payload


# -- audio level ----------------------------------------------------------------------


def test_audio_level_ignores_the_voice_activity_bit() -> None:
    loud = parse_rtp(make_rtp(1, 2, 3, 111, extensions=[(1, bytes([0x80 | 5]))]))
    quiet = parse_rtp(make_rtp(1, 2, 3, 111, extensions=[(1, bytes([127]))]))
    none = parse_rtp(make_rtp(1, 2, 3, 111))

    assert audio_level(loud, 1) == 5
    assert audio_level(quiet, 1) == 127
    assert audio_level(none, 1) is None
