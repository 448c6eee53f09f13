"""RTP and RTCP builders that can lie: any header field, extension element or length.

RFC 3550 §5.1 (RTP header), RFC 8285 (one-byte 0xBEDE and two-byte 0x100X header
extensions), RFC 3550 §6 and RFC 4585 §6 (RTCP packets). Unlike a correct encoder,
every length here can be given explicitly, so the parser sees lengths that disagree
with the bytes that follow.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

ONE_BYTE_PROFILE = 0xBEDE
TWO_BYTE_PROFILE = 0x1000


def rtp(
    *,
    seq: int,
    ts: int,
    ssrc: int,
    pt: int,
    marker: bool = False,
    csrcs: Sequence[int] = (),
    csrc_count: int | None = None,
    extension: bytes | None = None,
    payload: bytes = b"\x00",
    padding: int = 0,
    pad_count: int | None = None,
    version: int = 2,
) -> bytes:
    """An RTP packet; `extension` is a whole block (profile, length, body) or None.

    `csrc_count` and `pad_count` override the CC field and the last padding octet.
    """
    cc = len(csrcs) if csrc_count is None else csrc_count
    b0 = (version & 3) << 6 | (0x20 if padding else 0) | (0x10 if extension is not None else 0)
    b0 |= cc & 0x0F
    header = struct.pack(
        "!BBHII",
        b0,
        (pt & 0x7F) | (0x80 if marker else 0),
        seq & 0xFFFF,
        ts & 0xFFFFFFFF,
        ssrc & 0xFFFFFFFF,
    )
    header += b"".join(struct.pack("!I", c & 0xFFFFFFFF) for c in csrcs)
    tail = b""
    if padding:
        count = padding if pad_count is None else pad_count
        tail = b"\x00" * (padding - 1) + bytes([count & 0xFF])
    return header + (extension or b"") + payload + tail


def extension_block(profile: int, body: bytes, words: int | None = None) -> bytes:
    """A header extension block; `words` overrides its length field (in 32-bit words)."""
    padded = body + b"\x00" * (-len(body) % 4)
    length = len(padded) // 4 if words is None else words
    return struct.pack("!HH", profile & 0xFFFF, length & 0xFFFF) + padded


def one_byte_element(element_id: int, value: bytes, length: int | None = None) -> bytes:
    """RFC 8285 §4.2: 4-bit id, 4-bit (length - 1); id 15 stops parsing, id 0 is padding."""
    declared = len(value) if length is None else length
    return bytes([(element_id & 0x0F) << 4 | ((declared - 1) & 0x0F)]) + value


def two_byte_element(element_id: int, value: bytes, length: int | None = None) -> bytes:
    """RFC 8285 §4.3: 8-bit id, 8-bit length (0 allowed)."""
    declared = len(value) if length is None else length
    return bytes([element_id & 0xFF, declared & 0xFF]) + value


# -- RTCP ----------------------------------------------------------------------------
SR, RR, SDES, BYE, APP, RTPFB, PSFB, XR = 200, 201, 202, 203, 204, 205, 206, 207


def rtcp(
    pt: int,
    count: int,
    body: bytes,
    *,
    words: int | None = None,
    padding: bool = False,
    version: int = 2,
) -> bytes:
    """One RTCP packet; `words` overrides the length field (32-bit words minus one)."""
    padded = body + b"\x00" * (-len(body) % 4)
    length = (len(padded) + 4) // 4 - 1 if words is None else words
    b0 = (version & 3) << 6 | (0x20 if padding else 0) | (count & 0x1F)
    return struct.pack("!BBH", b0, pt & 0xFF, length & 0xFFFF) + padded


def report_block(
    ssrc: int, *, lost: int = 0, highest: int = 0, jitter: int = 0, lsr: int = 0, dlsr: int = 0
) -> bytes:
    return struct.pack(
        "!IIIIII",
        ssrc & 0xFFFFFFFF,
        lost & 0xFFFFFFFF,
        highest & 0xFFFFFFFF,
        jitter & 0xFFFFFFFF,
        lsr & 0xFFFFFFFF,
        dlsr & 0xFFFFFFFF,
    )


def sender_report(
    ssrc: int, blocks: Sequence[bytes], *, count: int | None = None, words: int | None = None
) -> bytes:
    info = struct.pack("!IIIIII", ssrc & 0xFFFFFFFF, 0xE0000000, 0, 0, 0, 0)
    return rtcp(SR, len(blocks) if count is None else count, info + b"".join(blocks), words=words)


def receiver_report(
    ssrc: int, blocks: Sequence[bytes], *, count: int | None = None, words: int | None = None
) -> bytes:
    body = struct.pack("!I", ssrc & 0xFFFFFFFF) + b"".join(blocks)
    return rtcp(RR, len(blocks) if count is None else count, body, words=words)


def feedback(
    pt: int, fmt: int, sender: int, media: int, fci: bytes = b"", *, words: int | None = None
) -> bytes:
    """RFC 4585 §6.1 feedback: NACK (205/1), PLI (206/1), FIR (206/4), REMB (206/15)."""
    return rtcp(
        pt, fmt, struct.pack("!II", sender & 0xFFFFFFFF, media & 0xFFFFFFFF) + fci, words=words
    )


def nack_fci(pid: int, blp: int) -> bytes:
    return struct.pack("!HH", pid & 0xFFFF, blp & 0xFFFF)


def fir_fci(ssrc: int, seq: int) -> bytes:
    return struct.pack("!IB3x", ssrc & 0xFFFFFFFF, seq & 0xFF)


def remb_fci(exponent: int, mantissa: int, ssrcs: Sequence[int], count: int | None = None) -> bytes:
    n = len(ssrcs) if count is None else count
    value = (exponent & 0x3F) << 18 | (mantissa & 0x3FFFF)
    return (
        b"REMB"
        + bytes([n & 0xFF])
        + value.to_bytes(3, "big")
        + b"".join(struct.pack("!I", s & 0xFFFFFFFF) for s in ssrcs)
    )
