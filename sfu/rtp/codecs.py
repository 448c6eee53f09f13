"""Key frame detection from RTP payload bytes, without decoding.

A layer or source switch must wait for a key frame, and a pending key frame
request is settled by one, so every forwarded video packet goes through one
of these. Each function reads a few header bytes, returns False for anything
short or malformed and never raises.
"""

from __future__ import annotations

from typing import TypeAlias

Payload: TypeAlias = bytes | bytearray | memoryview

_H264_SPS = 7
_H264_STAP_A = 24
_H264_FU_A = 28


def is_vp8_keyframe(payload: Payload) -> bool:
    """True for the first packet of a VP8 key frame.

    RFC 7741 §4.2 payload descriptor: S=1 and PID=0 mark the start of the
    first partition; optional X/I/L/T/K extension octets (7- or 15-bit
    PictureID) are skipped. §4.3 payload header: the inverse key frame flag
    P (lowest bit of the first octet) is 0 on a key frame.
    """
    size = len(payload)
    if size < 2:
        return False
    b0 = payload[0]
    if b0 & 0x17 != 0x10:  # S set, PID zero
        return False
    pos = 1
    if b0 & 0x80:  # X: extension control octet follows
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: PictureID, 15 bits when M is set
            if pos >= size:
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K: TID/Y/KEYIDX octet
            pos += 1
    if pos >= size:
        return False
    return not payload[pos] & 0x01


def is_vp9_keyframe(payload: Payload) -> bool:
    """True for the start of a VP9 key frame in its base spatial layer.

    RFC 9628 §4.2 payload descriptor: B=1 (start of a frame), P=0 (not
    inter-picture predicted) and, when layer indices are present (L=1), SID=0.
    Enough for the non-flexible mode browsers send; later spatial layers of a
    key picture are not reported, since a switch must start at the base layer.
    """
    size = len(payload)
    if size < 2:
        return False
    b0 = payload[0]
    if b0 & 0x48 != 0x08:  # P clear, B set
        return False
    pos = 1
    if b0 & 0x80:  # I: picture ID, 15 bits when M is set
        pos += 2 if payload[pos] & 0x80 else 1
    if b0 & 0x20:  # L: layer indices; SID is bits 3..1
        if pos >= size or (payload[pos] >> 1) & 0x07:
            return False
        pos += 1 if b0 & 0x10 else 2  # non-flexible mode adds TL0PICIDX
    return pos < size


def is_h264_keyframe(payload: Payload) -> bool:
    """True for the packet that starts an H.264 key frame: the one carrying its SPS.

    Encoders send the parameter sets in band at the start of every IDR access unit
    (SPS, PPS, then the IDR slices: libwebrtc's, browsers' hardware encoders, x264
    with repeated headers), and a decoder, or a viewer switched from another
    simulcast encoding whose SPS and PPS have the same ids but another size, can
    only start there. The IDR slice's own packet is no start: the SPS and PPS went
    before it, often in packets of their own. So an SPS as a single NAL unit (RFC
    6184 §5.6), in a STAP-A (§5.7.1) or at the start of an FU-A (§5.8) marks the
    key frame, as in mediasoup's and LiveKit's H.264 forwarding.
    """
    size = len(payload)
    if size < 1:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type == _H264_SPS:
        return True
    if nal_type == _H264_FU_A:
        if size < 3:
            return False
        fu = payload[1]
        return bool(fu & 0x80) and (fu & 0x1F) == _H264_SPS
    if nal_type == _H264_STAP_A:
        pos = 1
        while pos + 2 < size:
            unit_size = (payload[pos] << 8) | payload[pos + 1]
            pos += 2
            if unit_size == 0 or pos + unit_size > size:
                return False
            if (payload[pos] & 0x1F) == _H264_SPS:
                return True
            pos += unit_size
    return False
