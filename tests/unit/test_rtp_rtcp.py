from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfu.rtp.rtcp import (
    Bye,
    FullIntraRequest,
    GenericNack,
    PictureLossIndication,
    ReceiverReport,
    Remb,
    ReportBlock,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    TransportFeedbackRaw,
    UnknownRtcp,
    compound,
    is_rtcp,
    ntp_from_unix,
    ntp_middle_32,
    pack_nack,
    parse_compound,
    serialize,
)

BLOCK = ReportBlock(
    ssrc=0x11223344,
    fraction_lost=25,
    packets_lost=-3,
    highest_sequence=0x0001FFFF,
    jitter=120,
    last_sr=0xAABBCCDD,
    delay_since_last_sr=65536,
)

SAMPLES: list[RtcpPacket] = [
    SenderReport(0x01020304, 0xE0000000_80000000, 123456, 10, 1000, (BLOCK,)),
    SenderReport(1, 2, 3, 4, 5),
    ReceiverReport(0x0A0B0C0D, (BLOCK, BLOCK)),
    ReceiverReport(7),
    SourceDescription(((0x1234, "user@host"), (0x5678, "abc"))),
    SourceDescription(((9, "é-ünïcode"),)),
    SourceDescription(((9, ""),)),
    Bye((1, 2, 3)),
    Bye(()),
    PictureLossIndication(1, 0xDEADBEEF),
    FullIntraRequest(1, 0, ((0xCAFEBABE, 7), (0x0BADF00D, 255))),
    GenericNack(1, 2, (100, 101, 116)),
    Remb(5, 300_000, (0x1111, 0x2222)),
    Remb(5, 0, ()),
    TransportFeedbackRaw(3, 4, bytes(range(12))),
    TransportFeedbackRaw(3, 4, b"\x01\x02\x03"),
    UnknownRtcp(204, 3, b"\x00\x00\x00\x01NAMEdata"),
    UnknownRtcp(205, 3, b"\x00\x00\x00\x01\x00\x00\x00\x02\x05"),
    UnknownRtcp(206, 15, b"\x00\x00\x00\x01\x00\x00\x00\x00XXXX"),
    UnknownRtcp(207, 0, b"\x00\x00\x00\x01"),
]


@pytest.mark.parametrize("packet", SAMPLES, ids=lambda p: type(p).__name__)
def test_every_packet_type_round_trips(packet: RtcpPacket) -> None:
    data = serialize(packet)
    assert len(data) % 4 == 0
    assert parse_compound(data) == [packet]
    assert serialize(parse_compound(data)[0]) == data


def test_compound_of_all_samples_parses_in_order() -> None:
    assert parse_compound(compound(SAMPLES)) == SAMPLES


def test_sender_report_wire_layout() -> None:
    sr = SenderReport(0x01020304, 0x0102030405060708, 9, 10, 11)
    assert serialize(sr) == bytes.fromhex(
        "80c80006 01020304 0102030405060708 00000009 0000000a 0000000b"
    )


def test_compound_sender_report_and_sdes() -> None:
    sr = SenderReport(0xAABBCCDD, ntp_from_unix(1_700_000_000.25), 90000, 50, 60000, (BLOCK,))
    sdes = SourceDescription(((0xAABBCCDD, "{3b5e7f20-publisher}"),))
    data = compound([sr, sdes])
    assert data[1] == 200
    assert data[len(serialize(sr)) + 1] == 202
    assert parse_compound(data) == [sr, sdes]


def test_report_block_negative_cumulative_loss_is_sign_extended() -> None:
    data = serialize(ReceiverReport(1, (BLOCK,)))
    assert data[12:16] == bytes([25, 0xFF, 0xFF, 0xFD])
    parsed = parse_compound(data)[0]
    assert isinstance(parsed, ReceiverReport)
    assert parsed.reports[0].packets_lost == -3


def test_report_block_cumulative_loss_is_clamped_to_24_bits() -> None:
    big = ReportBlock(1, 0, 10_000_000, 0, 0, 0, 0)
    parsed = parse_compound(serialize(ReceiverReport(1, (big,))))[0]
    assert isinstance(parsed, ReceiverReport)
    assert parsed.reports[0].packets_lost == 0x7FFFFF


def test_sdes_skips_other_items_and_chunks_without_cname() -> None:
    chunk1 = struct.pack("!I", 1) + b"\x02\x03bob" + b"\x01\x02cn" + b"\x00\x00\x00"
    chunk2 = struct.pack("!I", 2) + b"\x02\x02xy" + b"\x00\x00\x00\x00"
    body = chunk1 + chunk2
    data = struct.pack("!BBH", 0x82, 202, len(body) // 4) + body
    assert parse_compound(data) == [SourceDescription(((1, "cn"),))]


def test_sdes_invalid_utf8_is_replaced_not_raised() -> None:
    body = struct.pack("!I", 1) + b"\x01\x02\xff\xfe" + b"\x00\x00\x00\x00"
    data = struct.pack("!BBH", 0x81, 202, len(body) // 4) + body
    assert parse_compound(data) == [SourceDescription(((1, "\ufffd\ufffd"),))]


def test_bye_with_reason_keeps_the_ssrcs() -> None:
    body = struct.pack("!I", 42) + b"\x03bye"
    data = struct.pack("!BBH", 0x81, 203, len(body) // 4) + body
    assert parse_compound(data) == [Bye((42,))]


def test_nack_packs_consecutive_losses_into_one_pid_and_blp() -> None:
    assert pack_nack([10, 11, 12, 26]) == [(10, 0b1000_0000_0000_0011)]
    assert pack_nack([10, 27]) == [(10, 0), (27, 0)]
    assert pack_nack([]) == []


def test_nack_packing_across_65535_to_0_uses_one_item() -> None:
    assert pack_nack([0, 1, 65534, 65535]) == [(65534, 0b111)]
    nack = GenericNack(1, 2, (65534, 65535, 0, 1))
    data = serialize(nack)
    assert len(data) == 16  # header, two SSRCs, a single FCI item
    assert parse_compound(data) == [nack]


def test_nack_duplicates_are_packed_once() -> None:
    assert pack_nack([5, 5, 6]) == [(5, 1)]


@given(st.sets(st.integers(0, 65535), max_size=200))
def test_nack_packing_covers_exactly_the_lost_set(lost: set[int]) -> None:
    parsed = parse_compound(serialize(GenericNack(1, 2, tuple(lost))))
    assert len(parsed) == 1
    assert isinstance(parsed[0], GenericNack)
    assert sorted(parsed[0].lost) == sorted(lost)


@pytest.mark.parametrize("bitrate", [300_000, 5_000_000, 5_000_001, 262_143, 1, 123_456_789])
def test_remb_encodes_bitrate_within_mantissa_precision(bitrate: int) -> None:
    parsed = parse_compound(serialize(Remb(1, bitrate, (9,))))[0]
    assert isinstance(parsed, Remb)
    assert parsed.bitrate_bps <= bitrate
    assert bitrate - parsed.bitrate_bps < bitrate / 2**17 + 1


def test_remb_300_kbps_and_5_mbps_are_exact() -> None:
    for bitrate in (300_000, 5_000_000):
        parsed = parse_compound(serialize(Remb(1, bitrate, ())))[0]
        assert isinstance(parsed, Remb)
        assert parsed.bitrate_bps == bitrate


def test_remb_wire_layout() -> None:
    data = serialize(Remb(0x01020304, 300_000, (0x0A0B0C0D,)))
    # exp 1, mantissa 150000 = 0x249F0
    assert data == bytes.fromhex("8fce0005 01020304 00000000 52454d42 01 06 49f0 0a0b0c0d")


def test_fir_wire_layout() -> None:
    data = serialize(FullIntraRequest(1, 0, ((0xCAFEBABE, 7),)))
    assert data == bytes.fromhex("84ce0004 00000001 00000000 cafebabe 07000000")


def test_pli_wire_layout() -> None:
    assert serialize(PictureLossIndication(1, 2)) == bytes.fromhex("81ce0002 00000001 00000002")


def test_padding_is_removed_on_parse() -> None:
    rr = serialize(ReceiverReport(5))
    padded = bytes([rr[0] | 0x20, rr[1]]) + struct.pack("!H", 2) + rr[4:] + b"\x00\x00\x00\x04"
    bye = serialize(Bye((5,)))
    assert parse_compound(padded + bye) == [ReceiverReport(5), Bye((5,))]


def test_unaligned_unknown_payload_is_sent_with_rtcp_padding() -> None:
    data = serialize(UnknownRtcp(204, 0, b"abcde"))
    assert data[0] & 0x20
    assert data[-1] == 3
    assert parse_compound(data) == [UnknownRtcp(204, 0, b"abcde")]


@pytest.mark.parametrize(
    "bad",
    [
        b"\x80\xc9\x00\x01\x00\x00\x00\x07" + b"\x40\xc9\x00\x01\x00\x00\x00\x07",  # version 1
        b"\x80\xc9\x00\x01\x00\x00\x00\x07" + b"\x80\xc9\x00\x05\x00\x00\x00\x07",  # too long
        b"\x80\xc9\x00\x01\x00\x00\x00\x07" + b"\xa0\xc9\x00\x01\x00\x00\x00\x00",  # pad 0
        b"\x80\xc9\x00\x01\x00\x00\x00\x07" + b"\xa0\xc9\x00\x01\x00\x00\x00\x09",  # pad > len
        b"\x80\xc9\x00\x01\x00\x00\x00\x07" + b"\x81\xc9\x00\x01\x00\x00\x00\x07",  # RC=1, no block
        b"\x80\xc9\x00\x01\x00\x00\x00\x07" + b"\x81\xca\x00\x01\x00\x00\x00\x07",  # SDES no end
        b"\x80\xc9\x00\x01\x00\x00\x00\x07" + b"\x8f\xce\x00\x03\x00\x00\x00\x01\x00\x00\x00\x00"
        b"REMB",  # REMB without its bitrate word
    ],
)
def test_parsing_stops_at_the_first_malformed_packet(bad: bytes) -> None:
    assert parse_compound(bad) == [ReceiverReport(7)]


@pytest.mark.parametrize("data", [b"", b"\x80", b"\x80\xc9\x00", b"\x00" * 3])
def test_truncated_headers_give_nothing(data: bytes) -> None:
    assert parse_compound(data) == []


def test_feedback_too_short_for_its_ssrcs_stops_parsing() -> None:
    assert parse_compound(b"\x81\xce\x00\x01\x00\x00\x00\x01") == []


@given(st.binary(max_size=256))
def test_parse_compound_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    packets = parse_compound(data)
    for packet in packets:
        serialize(packet)  # everything parsed can be written back


@given(
    packet_type=st.integers(200, 207),
    count=st.integers(0, 31),
    padded=st.booleans(),
    body=st.binary(max_size=120).map(lambda b: b[: len(b) - len(b) % 4]),
)
def test_parse_compound_never_raises_on_well_framed_garbage(
    packet_type: int, count: int, padded: bool, body: bytes
) -> None:
    b0 = 0x80 | (0x20 if padded else 0) | count
    data = struct.pack("!BBH", b0, packet_type, len(body) // 4) + body
    for packet in parse_compound(data):
        # NACK items may overlap on the wire; one write normalises them.
        written = serialize(packet)
        assert compound(parse_compound(written)) == written


@given(st.lists(st.sampled_from(SAMPLES), max_size=6), st.integers(0, 40))
def test_truncated_compound_returns_the_complete_prefix(
    packets: list[RtcpPacket], cut: int
) -> None:
    data = compound(packets)
    truncated = data[: max(0, len(data) - cut)]
    parsed = parse_compound(truncated)
    assert parsed == packets[: len(parsed)]
    assert compound(parsed) == truncated[: len(compound(parsed))]


def test_serialize_rejects_out_of_range_fields() -> None:
    with pytest.raises(ValueError):
        serialize(Bye(tuple(range(32))))
    with pytest.raises(ValueError):
        serialize(PictureLossIndication(2**32, 0))
    with pytest.raises(ValueError):
        serialize(SourceDescription(((1, "x" * 256),)))
    with pytest.raises(ValueError):
        serialize(Remb(1, -1, ()))


def test_is_rtcp_per_rfc_5761() -> None:
    assert is_rtcp(b"\x80\xc8")  # SR
    assert is_rtcp(b"\x81\xcd\x00\x03")  # RTPFB
    assert is_rtcp(b"\x80\xdf")  # 223
    assert not is_rtcp(b"\x80\x60")  # RTP payload type 96
    assert not is_rtcp(b"\x80\xe0")  # RTP PT 96 with marker
    assert not is_rtcp(b"\x80\xbf")  # 191
    assert not is_rtcp(b"\x40\xc8")  # version 1
    assert not is_rtcp(b"\x80")
    assert not is_rtcp(b"")


def test_ntp_from_unix_epoch_and_fraction() -> None:
    assert ntp_from_unix(0.0) == 2_208_988_800 << 32
    assert ntp_from_unix(1.5) == ((2_208_988_801 << 32) | 0x80000000)


def test_ntp_from_unix_keeps_sub_microsecond_precision_for_current_dates() -> None:
    ntp = ntp_from_unix(1_700_000_000.123456)
    frac = (ntp & 0xFFFFFFFF) / 2**32
    assert (ntp >> 32) == 1_700_000_000 + 2_208_988_800
    assert abs(frac - 0.123456) < 1e-6


def test_ntp_middle_32_bits_for_lsr() -> None:
    assert ntp_middle_32(0x0102030405060708) == 0x03040506
