"""RTCP packets the SFU reads and writes, as frozen values, with a never-raising parser.

RFC 3550 §6.4-6.6 (SR, RR, SDES, BYE), RFC 4585 §6.2.1/§6.3.1 (generic NACK,
PLI), RFC 5104 §4.3.1 (FIR), draft-alvestrand-rmcat-remb-03 §2.2 (REMB) and
draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1 (kept opaque here;
`sfu.rtp.twcc` reads its FCI).
Anything else is kept as `UnknownRtcp` so it can be relayed unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeAlias, assert_never

SR, RR, SDES, BYE, RTPFB, PSFB = 200, 201, 202, 203, 205, 206
FMT_NACK, FMT_TWCC = 1, 15
FMT_PLI, FMT_FIR, FMT_AFB = 1, 4, 15
_CNAME = 1
_REMB_ID = b"REMB"
_NTP_EPOCH_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01 (RFC 5905 §6)

_HEADER = struct.Struct("!BBH")
_U32 = struct.Struct("!I")
_TWO_U32 = struct.Struct("!II")
_SR_INFO = struct.Struct("!IQIII")
_BLOCK = struct.Struct("!IIIIII")
_NACK_ITEM = struct.Struct("!HH")
_FIR_ITEM = struct.Struct("!IB3x")
_REMB_HEAD = struct.Struct("!4sBBH")


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """RFC 3550 §6.4.1 reception report; packets_lost is a signed 24-bit count."""

    ssrc: int
    fraction_lost: int
    packets_lost: int
    highest_sequence: int
    jitter: int
    last_sr: int
    delay_since_last_sr: int


@dataclass(frozen=True, slots=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """(ssrc, CNAME) per chunk; other SDES items and chunks without a CNAME are skipped."""

    chunks: tuple[tuple[int, str], ...]


@dataclass(frozen=True, slots=True)
class Bye:
    ssrcs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PictureLossIndication:
    sender_ssrc: int
    media_ssrc: int


@dataclass(frozen=True, slots=True)
class FullIntraRequest:
    """entries are (ssrc, command sequence number); media_ssrc SHALL be 0 (RFC 5104 §4.3.1.2)."""

    sender_ssrc: int
    media_ssrc: int
    entries: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class GenericNack:
    """lost holds every missing sequence number; the wire PID/BLP form is built on serialize."""

    sender_ssrc: int
    media_ssrc: int
    lost: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Remb:
    """Receiver estimated maximum bitrate; exact up to an 18-bit mantissa."""

    sender_ssrc: int
    bitrate_bps: int
    ssrcs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TransportFeedbackRaw:
    sender_ssrc: int
    media_ssrc: int
    fci: bytes


@dataclass(frozen=True, slots=True)
class UnknownRtcp:
    """Any other packet; data is everything after the 4-octet header, padding removed."""

    packet_type: int
    fmt: int
    data: bytes


RtcpPacket: TypeAlias = (
    SenderReport
    | ReceiverReport
    | SourceDescription
    | Bye
    | PictureLossIndication
    | FullIntraRequest
    | GenericNack
    | Remb
    | TransportFeedbackRaw
    | UnknownRtcp
)


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4 demultiplexing: version 2 and a second octet in 192..223."""
    return len(data) >= 2 and data[0] >> 6 == 2 and 192 <= data[1] <= 223


def ntp_from_unix(seconds: float) -> int:
    """64-bit NTP timestamp (RFC 3550 §4): 32.32 fixed point seconds since 1900."""
    whole = int(seconds // 1)
    frac = min(int((seconds - whole) * 4294967296.0), 0xFFFFFFFF)
    return (((whole + _NTP_EPOCH_OFFSET) & 0xFFFFFFFF) << 32) | frac


def ntp_middle_32(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp, as used for LSR (RFC 3550 §6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Every packet of a compound RTCP datagram (RFC 3550 §6.1), in order.

    Never raises: parsing stops at the first malformed packet (bad version,
    length beyond the datagram, bad padding, truncated body) and returns the
    packets before it, since the length field after a bad one is not trusted.
    """
    out: list[RtcpPacket] = []
    pos = 0
    size = len(data)
    while pos + 4 <= size:
        b0, packet_type, words = _HEADER.unpack_from(data, pos)
        end = pos + 4 + words * 4
        if b0 >> 6 != 2 or end > size:
            break
        body_end = end
        if b0 & 0x20:  # RFC 3550 §6.4.1 P: last octet counts the padding, itself included
            pad = data[end - 1]
            if pad == 0 or pad > words * 4:
                break
            body_end -= pad
        packet = _parse_one(packet_type, b0 & 0x1F, data[pos + 4 : body_end])
        if packet is None:
            break
        out.append(packet)
        pos = end
    return out


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket | None:
    size = len(body)
    if packet_type == SR:
        if size < 24 + 24 * count:
            return None
        ssrc, ntp, rtp_ts, packets, octets = _SR_INFO.unpack_from(body)
        return SenderReport(ssrc, ntp, rtp_ts, packets, octets, _blocks(body, 24, count))
    if packet_type == RR:
        if size < 4 + 24 * count:
            return None
        return ReceiverReport(_U32.unpack_from(body)[0], _blocks(body, 4, count))
    if packet_type == SDES:
        return _parse_sdes(body, count)
    if packet_type == BYE:
        if size < 4 * count:
            return None
        return Bye(tuple(v for (v,) in _U32.iter_unpack(body[: 4 * count])))
    if packet_type in (RTPFB, PSFB):
        if size < 8:
            return None
        sender, media = _TWO_U32.unpack_from(body)
        fci = body[8:]
        if packet_type == RTPFB and count == FMT_NACK:
            return GenericNack(sender, media, _parse_nack(fci))
        if packet_type == RTPFB and count == FMT_TWCC:
            return TransportFeedbackRaw(sender, media, fci)
        if packet_type == PSFB and count == FMT_PLI:
            return PictureLossIndication(sender, media)
        if packet_type == PSFB and count == FMT_FIR:
            items = tuple(_FIR_ITEM.iter_unpack(fci[: len(fci) - len(fci) % 8]))
            return FullIntraRequest(sender, media, items)
        if packet_type == PSFB and count == FMT_AFB and fci[:4] == _REMB_ID:
            return _parse_remb(sender, fci)
    return UnknownRtcp(packet_type, count, body)


def _blocks(body: bytes, start: int, count: int) -> tuple[ReportBlock, ...]:
    blocks = []
    for i in range(count):
        ssrc, lost_word, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(body, start + 24 * i)
        lost = lost_word & 0xFFFFFF
        if lost & 0x800000:
            lost -= 0x1000000
        blocks.append(ReportBlock(ssrc, lost_word >> 24, lost, highest, jitter, lsr, dlsr))
    return tuple(blocks)


def _parse_sdes(body: bytes, count: int) -> SourceDescription | None:
    chunks: list[tuple[int, str]] = []
    pos = 0
    size = len(body)
    for _ in range(count):
        if pos + 4 > size:
            return None
        ssrc = _U32.unpack_from(body, pos)[0]
        pos += 4
        cname: str | None = None
        while True:
            if pos >= size:
                return None
            item = body[pos]
            if item == 0:  # end of chunk: skip nulls to the next 32-bit boundary
                pos = (pos + 4) & ~3
                break
            if pos + 2 > size or pos + 2 + body[pos + 1] > size:
                return None
            length = body[pos + 1]
            if item == _CNAME and cname is None:
                cname = body[pos + 2 : pos + 2 + length].decode("utf-8", "replace")
            pos += 2 + length
        if cname is not None:
            chunks.append((ssrc, cname))
    return SourceDescription(tuple(chunks))


def _parse_nack(fci: bytes) -> tuple[int, ...]:
    lost: list[int] = []
    for pid, blp in _NACK_ITEM.iter_unpack(fci[: len(fci) - len(fci) % 4]):
        lost.append(pid)
        for bit in range(16):
            if blp >> bit & 1:
                lost.append((pid + bit + 1) & 0xFFFF)
    return tuple(lost)


def _parse_remb(sender: int, fci: bytes) -> Remb | None:
    if len(fci) < 8:
        return None
    _, num, exp_mantissa_hi, mantissa_lo = _REMB_HEAD.unpack_from(fci)
    if len(fci) < 8 + 4 * num:
        return None
    bitrate = (((exp_mantissa_hi & 0x03) << 16) | mantissa_lo) << (exp_mantissa_hi >> 2)
    return Remb(sender, bitrate, tuple(v for (v,) in _U32.iter_unpack(fci[8 : 8 + 4 * num])))


def serialize(packet: RtcpPacket) -> bytes:
    """Wire form of one packet; ValueError for fields that do not fit their wire format."""
    try:
        return _serialize(packet)
    except struct.error as exc:
        raise ValueError("RTCP field out of range") from exc


def compound(packets: Iterable[RtcpPacket]) -> bytes:
    """Concatenate packets into one compound datagram (RFC 3550 §6.1)."""
    return b"".join(serialize(p) for p in packets)


def _serialize(packet: RtcpPacket) -> bytes:
    match packet:
        case SenderReport():
            info = _SR_INFO.pack(
                packet.ssrc,
                packet.ntp_timestamp,
                packet.rtp_timestamp,
                packet.packet_count,
                packet.octet_count,
            )
            return _wrap(SR, len(packet.reports), info + _pack_blocks(packet.reports))
        case ReceiverReport():
            body = _U32.pack(packet.ssrc) + _pack_blocks(packet.reports)
            return _wrap(RR, len(packet.reports), body)
        case SourceDescription():
            return _wrap(SDES, len(packet.chunks), _pack_sdes(packet.chunks))
        case Bye():
            return _wrap(BYE, len(packet.ssrcs), _pack_u32s(packet.ssrcs))
        case PictureLossIndication():
            return _feedback(PSFB, FMT_PLI, packet.sender_ssrc, packet.media_ssrc, b"")
        case FullIntraRequest():
            fci = b"".join([_FIR_ITEM.pack(ssrc, seq) for ssrc, seq in packet.entries])
            return _feedback(PSFB, FMT_FIR, packet.sender_ssrc, packet.media_ssrc, fci)
        case GenericNack():
            fci = b"".join([_NACK_ITEM.pack(pid, blp) for pid, blp in pack_nack(packet.lost)])
            return _feedback(RTPFB, FMT_NACK, packet.sender_ssrc, packet.media_ssrc, fci)
        case Remb():
            return _feedback(PSFB, FMT_AFB, packet.sender_ssrc, 0, _pack_remb(packet))
        case TransportFeedbackRaw():
            return _feedback(RTPFB, FMT_TWCC, packet.sender_ssrc, packet.media_ssrc, packet.fci)
        case UnknownRtcp():
            if not 0 <= packet.fmt <= 31 or not 0 <= packet.packet_type <= 255:
                raise ValueError("UnknownRtcp packet_type or fmt out of range")
            return _wrap(packet.packet_type, packet.fmt, packet.data)
        case _:
            assert_never(packet)


def _wrap(packet_type: int, count: int, body: bytes) -> bytes:
    if count > 31:
        raise ValueError("at most 31 items fit in one RTCP packet")
    pad = -len(body) % 4
    if pad:  # RFC 3550 §6.4.1: padding octets end with their count
        body += b"\x00" * (pad - 1) + bytes([pad])
    b0 = 0x80 | (0x20 if pad else 0) | count
    return _HEADER.pack(b0, packet_type, len(body) // 4) + body


def _feedback(packet_type: int, fmt: int, sender: int, media: int, fci: bytes) -> bytes:
    """RFC 4585 §6.1 common feedback format: sender SSRC, media SSRC, FCI."""
    return _wrap(packet_type, fmt, _TWO_U32.pack(sender, media) + fci)


def _pack_blocks(blocks: tuple[ReportBlock, ...]) -> bytes:
    out = b""
    for b in blocks:
        lost = max(-0x800000, min(0x7FFFFF, b.packets_lost)) & 0xFFFFFF
        out += _BLOCK.pack(
            b.ssrc,
            (b.fraction_lost << 24) | lost,
            b.highest_sequence,
            b.jitter,
            b.last_sr,
            b.delay_since_last_sr,
        )
    return out


def _pack_sdes(chunks: tuple[tuple[int, str], ...]) -> bytes:
    out = b""
    for ssrc, cname in chunks:
        text = cname.encode()
        if len(text) > 255:
            raise ValueError("CNAME longer than 255 octets")
        chunk = _U32.pack(ssrc) + bytes([_CNAME, len(text)]) + text + b"\x00"
        out += chunk + b"\x00" * (-len(chunk) % 4)
    return out


def pack_nack(lost: Iterable[int]) -> list[tuple[int, int]]:
    """(PID, BLP) pairs covering `lost` (RFC 4585 §6.2.1), wraparound aware.

    The run starts after the widest circular gap between lost numbers, so a
    loss burst spanning 65535 -> 0 packs into one PID with its BLP bits.
    """
    seqs = sorted({s & 0xFFFF for s in lost})
    if not seqs:
        return []
    widest, start = -1, 0
    for i, seq in enumerate(seqs):
        gap = (seq - seqs[i - 1]) & 0xFFFF or 0x10000  # i == 0 compares with the last
        if gap > widest:
            widest, start = gap, i
    items: list[tuple[int, int]] = []
    pid, blp = seqs[start], 0
    for seq in seqs[start + 1 :] + seqs[:start]:
        offset = (seq - pid) & 0xFFFF
        if offset <= 16:
            blp |= 1 << (offset - 1)
        else:
            items.append((pid, blp))
            pid, blp = seq, 0
    items.append((pid, blp))
    return items


def _pack_remb(packet: Remb) -> bytes:
    if packet.bitrate_bps < 0:
        raise ValueError("REMB bitrate must not be negative")
    mantissa, exp = packet.bitrate_bps, 0
    while mantissa > 0x3FFFF:
        mantissa >>= 1
        exp += 1
    if exp > 63:
        raise ValueError("REMB bitrate too large")
    ssrcs = packet.ssrcs
    head = _REMB_HEAD.pack(_REMB_ID, len(ssrcs), (exp << 2) | (mantissa >> 16), mantissa & 0xFFFF)
    return head + _pack_u32s(ssrcs)


def _pack_u32s(values: tuple[int, ...]) -> bytes:
    return b"".join([_U32.pack(v) for v in values])
