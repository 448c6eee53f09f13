"""The VP8 payload descriptor's picture numbering (RFC 7741 §4.2), read and rewritten
in place, without decoding.

A viewer's decoder finds frame references by PictureID and TL0PICIDX. When the
SFU switches a viewer between simulcast encodings (or resumes it after a pause)
each encoding numbers its pictures on its own, so the viewer would see the
numbers jump; the fan-out shifts them per viewer so that they continue instead,
as mediasoup's and LiveKit's VP8 forwarders do.

     0 1 2 3 4 5 6 7
    |X|R|N|S|R| PID |   required
    |I|L|T|K| RSV   |   X: which optional fields follow
    |M| PictureID   |   I: 7 bits, or 15 with M set
    | PictureID     |
    |   TL0PICIDX   |   L
    |TID|Y| KEYIDX  |   T or K
"""

from __future__ import annotations

from typing import NamedTuple

from .codecs import Payload

PICTURE_ID_MASK = 0x7FFF
PICTURE_ID_MASK_NARROW = 0x7F
TL0_MASK = 0xFF


class PictureNumbering(NamedTuple):
    """Where the numbering sits in a payload (offsets from the payload's start; -1 absent)."""

    picture_id_at: int
    picture_id_wide: bool  # 15-bit PictureID (M set), else 7-bit
    picture_id: int
    tl0_at: int
    tl0: int
    temporal_id: int  # -1 without T
    layer_sync: bool  # Y: the frame references only TID 0 frames (an up-switch point)


NO_NUMBERING = PictureNumbering(-1, False, 0, -1, 0, -1, False)


def picture_numbering(payload: Payload) -> PictureNumbering:
    """The descriptor's PictureID, TL0PICIDX, TID and Y bit; NO_NUMBERING when it has
    none or is truncated."""
    size = len(payload)
    if size < 2 or not payload[0] & 0x80:
        return NO_NUMBERING
    ext = payload[1]
    pos = 2
    picture_id_at, wide, picture_id = -1, False, 0
    if ext & 0x80:
        if pos >= size:
            return NO_NUMBERING
        wide = bool(payload[pos] & 0x80)
        if wide:
            if pos + 1 >= size:
                return NO_NUMBERING
            picture_id = ((payload[pos] & 0x7F) << 8) | payload[pos + 1]
        else:
            picture_id = payload[pos]
        picture_id_at = pos
        pos += 2 if wide else 1
    tl0_at, tl0 = -1, 0
    if ext & 0x40:
        if pos >= size:
            return NO_NUMBERING
        tl0_at, tl0 = pos, payload[pos]
        pos += 1
    temporal_id, layer_sync = -1, False
    if ext & 0x30:
        if pos >= size:
            return NO_NUMBERING
        if ext & 0x20:
            temporal_id = payload[pos] >> 6
            layer_sync = bool(payload[pos] & 0x20)
    return PictureNumbering(picture_id_at, wide, picture_id, tl0_at, tl0, temporal_id, layer_sync)


def write_numbering(
    packet: bytearray, payload_start: int, numbering: PictureNumbering, picture_id: int, tl0: int
) -> None:
    """Store a PictureID and TL0PICIDX in a packet's descriptor, keeping each field's width."""
    if numbering.picture_id_at >= 0:
        at = payload_start + numbering.picture_id_at
        if numbering.picture_id_wide:
            packet[at] = 0x80 | ((picture_id >> 8) & 0x7F)
            packet[at + 1] = picture_id & 0xFF
        else:
            packet[at] = picture_id & 0x7F
    if numbering.tl0_at >= 0:
        packet[payload_start + numbering.tl0_at] = tl0 & TL0_MASK


def key_frame_size(payload: Payload) -> tuple[int, int] | None:
    """(width, height) from the first packet of a key frame (RFC 6386 §9.1: after the
    3-byte frame tag, the start code 9d 01 2a and two 14-bit little-endian sizes), or
    None when the packet does not hold them."""
    size = len(payload)
    if size < 2 or payload[0] & 0x17 != 0x10:  # not the start of the first partition
        return None
    pos = 1
    if payload[0] & 0x80:
        ext = payload[1]
        pos = 2
        if ext & 0x80:
            if pos >= size:
                return None
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:
            pos += 1
        if ext & 0x30:
            pos += 1
    if pos + 10 > size or payload[pos] & 0x01 or payload[pos + 3 : pos + 6] != b"\x9d\x01\x2a":
        return None
    width = (payload[pos + 6] | (payload[pos + 7] << 8)) & 0x3FFF
    height = (payload[pos + 8] | (payload[pos + 9] << 8)) & 0x3FFF
    return (width, height) if width and height else None


def temporal_id(data: bytes, start: int) -> int:
    """The TID in the descriptor of the VP8 payload at `data[start:]`, -1 without one
    (per packet, for the per-layer bitrates: no slicing, no tuple)."""
    end = len(data)
    if start + 1 >= end or not data[start] & 0x80:
        return -1
    ext = data[start + 1]
    if not ext & 0x20:
        return -1
    pos = start + 2
    if ext & 0x80:
        pos += 2 if pos < end and data[pos] & 0x80 else 1
    if ext & 0x40:
        pos += 1
    return data[pos] >> 6 if pos < end else -1
