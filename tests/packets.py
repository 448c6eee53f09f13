"""Packet factories for tests: RTP packets and VP8 payloads built by hand, captured
H.264 parameter sets, and helpers that read what the SFU sends back out."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import TypeVar

from sfu.rtp import rtcp
from sfu.rtp.header import RtpPacketView

_FIXED = struct.Struct("!BBHII")
_P = TypeVar("_P")


def make_rtp(
    seq: int,
    ts: int,
    ssrc: int,
    pt: int = 96,
    marker: bool = False,
    extensions: Sequence[tuple[int, bytes]] = (),
    payload: bytes = b"\x00",
    *,
    csrcs: Sequence[int] = (),
    padding: int = 0,
    two_byte: bool = False,
) -> bytes:
    """One RTP packet (RFC 3550 §5.1) with optional RFC 8285 header extensions.

    `extensions` are (id, value) elements, written in the one-byte form
    (0xBEDE) unless `two_byte` is set. `padding` adds that many padding
    octets (the last one holds the count) and sets the P bit.
    """
    if not 0 <= padding <= 255:
        raise ValueError("padding must be 0..255")
    if len(csrcs) > 15:
        raise ValueError("at most 15 CSRCs")
    b0 = 0x80 | len(csrcs)
    if padding:
        b0 |= 0x20
    block = b""
    if extensions:
        b0 |= 0x10
        block = _extension_block(extensions, two_byte=two_byte)
    b1 = (pt & 0x7F) | (0x80 if marker else 0)
    header = _FIXED.pack(b0, b1, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc & 0xFFFFFFFF)
    header += b"".join(struct.pack("!I", c) for c in csrcs)
    tail = b"\x00" * (padding - 1) + bytes([padding]) if padding else b""
    return header + block + payload + tail


def _extension_block(extensions: Sequence[tuple[int, bytes]], *, two_byte: bool) -> bytes:
    body = bytearray()
    if two_byte:
        profile = 0x1000
        for element_id, value in extensions:
            body += bytes([element_id, len(value)]) + value
    else:
        profile = 0xBEDE
        for element_id, value in extensions:
            if not 0 < element_id < 15 or not 0 < len(value) <= 16:
                raise ValueError("one-byte extensions need id 1..14 and 1..16 octets")
            body.append((element_id << 4) | (len(value) - 1))
            body += value
    body += b"\x00" * (-len(body) % 4)
    return struct.pack("!HH", profile, len(body) // 4) + bytes(body)


def make_vp8_payload(keyframe: bool, *, start: bool = True, body: bytes = b"frame") -> bytes:
    """A VP8 RTP payload (RFC 7741 §4.2 descriptor, §4.3 payload header).

    `start` marks the first packet of a frame (S=1, PID=0); only such a
    packet says whether the frame is a key frame (inverse P bit clear).
    """
    descriptor = bytes([0x10 if start else 0x00])
    if not start:
        return descriptor + body
    # Frame tag: P bit (lowest of the first octet) is 0 on a key frame.
    tag = bytes([0x00 if keyframe else 0x01, 0x00, 0x00])
    start_code = b"\x9d\x01\x2a" if keyframe else b""
    return descriptor + tag + start_code + body


# What libx264 (constrained baseline, 640x360 cropped from 368 rows) wrote before an
# IDR: its SPS and PPS NAL units, header byte first.
H264_SPS_640X360 = bytes.fromhex("6742c01eda0280bfe584000003000400000300f23c58ba80")
H264_PPS = bytes.fromhex("68ce3c80")


def make_rtx(
    seq: int,
    ts: int,
    ssrc: int,
    pt: int,
    original_seq: int,
    payload: bytes,
    extensions: Sequence[tuple[int, bytes]] = (),
) -> bytes:
    """An RFC 4588 §4 retransmission: the original sequence number, then the payload."""
    return make_rtp(
        seq, ts, ssrc, pt, extensions=extensions, payload=struct.pack("!H", original_seq) + payload
    )


def parse_rtp(data: bytes) -> RtpPacketView:
    """Parse a packet the test expects to be valid RTP."""
    view = RtpPacketView.parse(data)
    if view is None:
        raise AssertionError(f"not a valid RTP packet: {data[:16].hex()}")
    return view


def parse_all(packets: Iterable[bytes]) -> list[RtpPacketView]:
    return [parse_rtp(p) for p in packets]


def rtcp_of(datagrams: Iterable[bytes], kind: type[_P]) -> list[_P]:
    """Every RTCP packet of type `kind` in the captured datagrams, in send order."""
    return [p for d in datagrams for p in rtcp.parse_compound(d) if isinstance(p, kind)]
