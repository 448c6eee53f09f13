"""Zero-copy view of an RTP packet and the byte-level rewrite used per consumer.

RFC 3550 §5.1 fixed header, RFC 8285 header extensions (one-byte 0xBEDE and
two-byte 0x100X forms). Parsing happens once per incoming packet; consumers
only patch the fixed header and prepend their own extension block.
"""

from __future__ import annotations

import struct

_FIXED = struct.Struct("!BBHII")
_HEADER_REST = struct.Struct("!HII")  # seq, timestamp, ssrc after the first two bytes
_U16 = struct.Struct("!H")

ONE_BYTE_PROFILE = 0xBEDE
TWO_BYTE_PROFILE_MASK = 0xFFF0
TWO_BYTE_PROFILE = 0x1000


class RtpPacketView:
    """Offsets and fixed-header fields of one RTP packet; `data` is never copied.

    `parse` returns None for anything that is not a well-formed RTP packet
    (callers drop and count); it never raises.
    """

    __slots__ = (
        "data",
        "ext_end",
        "ext_profile",
        "ext_start",
        "marker",
        "payload_end",
        "payload_start",
        "payload_type",
        "sequence_number",
        "ssrc",
        "timestamp",
    )

    data: bytes
    payload_type: int
    marker: bool
    sequence_number: int
    timestamp: int
    ssrc: int
    ext_profile: int
    ext_start: int
    ext_end: int
    payload_start: int
    payload_end: int

    @classmethod
    def parse(cls, data: bytes) -> RtpPacketView | None:
        size = len(data)
        if size < 12:
            return None
        b0, b1, seq, ts, ssrc = _FIXED.unpack_from(data)
        if b0 >> 6 != 2:
            return None
        pos = 12 + 4 * (b0 & 0x0F)
        if pos > size:
            return None
        view = cls()
        view.data = data
        view.payload_type = b1 & 0x7F
        view.marker = bool(b1 & 0x80)
        view.sequence_number = seq
        view.timestamp = ts
        view.ssrc = ssrc
        if b0 & 0x10:
            if pos + 4 > size:
                return None
            view.ext_profile = _U16.unpack_from(data, pos)[0]
            length = _U16.unpack_from(data, pos + 2)[0] * 4
            view.ext_start = pos + 4
            view.ext_end = pos + 4 + length
            pos = view.ext_end
            if pos > size:
                return None
        else:
            view.ext_profile = 0
            view.ext_start = view.ext_end = pos
        end = size
        if b0 & 0x20:  # padding: last octet counts padding octets, itself included
            pad = data[-1]
            if pad == 0 or end - pad < pos:
                return None
            end -= pad
        view.payload_start = pos
        view.payload_end = end
        return view

    @property
    def payload(self) -> bytes:
        return self.data[self.payload_start : self.payload_end]

    @property
    def payload_size(self) -> int:
        return self.payload_end - self.payload_start

    def extensions(self) -> list[tuple[int, bytes]]:
        """All header extension elements as (id, value), in packet order."""
        return list(iter_extensions(self.data, self.ext_profile, self.ext_start, self.ext_end))

    def extension(self, ext_id: int) -> bytes | None:
        for element_id, value in iter_extensions(
            self.data, self.ext_profile, self.ext_start, self.ext_end
        ):
            if element_id == ext_id:
                return value
        return None


def iter_extensions(data: bytes, profile: int, start: int, end: int) -> list[tuple[int, bytes]]:
    """RFC 8285 §4.2/§4.3 elements; stops quietly at the first malformed one."""
    out: list[tuple[int, bytes]] = []
    pos = start
    if profile == ONE_BYTE_PROFILE:
        while pos < end:
            b = data[pos]
            if b == 0:  # padding
                pos += 1
                continue
            element_id = b >> 4
            if element_id == 15:  # reserved: stop processing (RFC 8285 §4.2)
                break
            length = (b & 0x0F) + 1
            value_end = pos + 1 + length
            if value_end > end:
                break
            out.append((element_id, data[pos + 1 : value_end]))
            pos = value_end
    elif profile & TWO_BYTE_PROFILE_MASK == TWO_BYTE_PROFILE:
        while pos + 1 < end:
            element_id = data[pos]
            if element_id == 0:
                pos += 1
                continue
            length = data[pos + 1]
            value_end = pos + 2 + length
            if value_end > end:
                break
            out.append((element_id, data[pos + 2 : value_end]))
            pos = value_end
    return out


def encode_extensions(elements: list[tuple[int, bytes]]) -> bytes:
    """Encode elements as an RFC 8285 block (profile word included), 32-bit padded.

    One-byte form when every id is 1..14 and every value 1..16 octets,
    otherwise the two-byte form. An empty list encodes to b"".
    """
    if not elements:
        return b""
    one_byte = all(0 < i < 15 and 0 < len(v) <= 16 for i, v in elements)
    body = bytearray()
    if one_byte:
        for element_id, value in elements:
            body.append((element_id << 4) | (len(value) - 1))
            body += value
        profile = ONE_BYTE_PROFILE
    else:
        for element_id, value in elements:
            body.append(element_id)
            body.append(len(value))
            body += value
        profile = TWO_BYTE_PROFILE
    body += b"\x00" * (-len(body) % 4)
    return _U16.pack(profile) + _U16.pack(len(body) // 4) + bytes(body)


def audio_level(view: RtpPacketView, ext_id: int) -> int | None:
    """RFC 6464 level (0 loudest .. 127 silence) or None; the V bit is ignored on purpose.

    Chromium sets the voice-activity bit on every packet, silence included.
    """
    value = view.extension(ext_id)
    if not value:
        return None
    return value[0] & 0x7F


def rewrite(
    view: RtpPacketView,
    *,
    payload_type: int,
    sequence_number: int,
    timestamp: int,
    ssrc: int,
    extension_block: bytes,
) -> bytes:
    """A new packet with this consumer's header fields and extension block.

    The payload (and any padding) is copied unchanged; CSRCs are dropped since
    the SFU is not a mixer. `extension_block` comes from encode_extensions().
    """
    data = view.data
    b0 = 0x80 | (data[0] & 0x20) | (0x10 if extension_block else 0)
    b1 = payload_type | (0x80 if view.marker else 0)
    return (
        _FIXED.pack(b0, b1, sequence_number, timestamp, ssrc)
        + extension_block
        + data[view.payload_start :]
    )
