"""Pre-encoded H.264 simulcast: the VP8 ladder's sizes and bitrates (160x90, 320x180,
640x360, lowest first) as a browser's H.264 encoders send them, encoded once and
cached beside `benchmarks.media`'s clips.

Every encoding is libx264 at constrained baseline (`profile=baseline`: no B-frames,
CAVLC), `tune=zerolatency` (no lookahead: one frame in, one access unit out), an IDR
every 2 s at the same frames in all three (forced, scene cuts off) and the SPS and PPS
in band before every IDR, as libwebrtc's encoders send them so that a decoder can
start at any IDR. Packetized per RFC 6184 packetization-mode 1 as libwebrtc's
`RtpPacketizerH264` does: consecutive NAL units that fit share a STAP-A (§5.7.1; the
SPS and PPS of every IDR travel in one), a unit larger than a packet is split evenly
into FU-A fragments (§5.8), and a unit alone is a single NAL unit packet (§5.6).
"""

from __future__ import annotations

import fractions
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import av

from .media import (
    CACHE_DIR,
    FPS,
    HEIGHT,
    KEY_FRAME_INTERVAL_S,
    MAX_VIDEO_PAYLOAD,
    VIDEO_BITRATE,
    VIDEO_SECONDS,
    WIDTH,
    MediaClip,
    VideoFrame,
    cached_videos,
    load_clip,
    source_frames,
)

H264_FORMAT_VERSION = 1
# (width, height, bitrate) of each encoding, lowest first: the VP8 ladder's.
LADDER = ((160, 90, 150_000), (320, 180, 400_000), (WIDTH, HEIGHT, VIDEO_BITRATE))
# Constrained baseline (profile_idc 66 with constraint_set1), level 3.1: what the
# publisher's offer says, and what x264's baseline streams at these sizes fit in.
PROFILE_LEVEL_ID = "42e01f"

_INTRA, _ANY = av.video.frame.PictureType.I, av.video.frame.PictureType.NONE
_NAL_IDR = 5
_STAP_A = 24
_FU_A = 28


def h264_cache_path() -> Path:
    ladder = "-".join(f"{w}x{h}-{bps}bps" for w, h, bps in LADDER)
    name = f"h264-simulcast-v{H264_FORMAT_VERSION}-{ladder}-{FPS}fps-{VIDEO_SECONDS}s.pickle"
    return CACHE_DIR / name


def load_h264_simulcast_clips(*, create: bool = True) -> tuple[MediaClip, ...]:
    """The three H.264 encodings, lowest first, each with `load_clip()`'s audio (sent
    once, beside all of them). Encoded first if needed (and `create`)."""
    audio = load_clip(create=create).audio
    videos = cached_videos(h264_cache_path(), _encode_ladder, create=create)
    return tuple(MediaClip(video=tuple(video), audio=audio, codec="H264") for video in videos)


def _encode_ladder() -> list[list[VideoFrame]]:
    encoders = [_x264_encoder(width, height, bitrate) for width, height, bitrate in LADDER]
    gop = round(KEY_FRAME_INTERVAL_S * FPS)
    encoded: list[list[VideoFrame]] = [[] for _ in LADDER]
    for index, frame in enumerate(source_frames()):
        for layer, (width, height, _) in enumerate(LADDER):
            scaled = frame.reformat(width=width, height=height)
            scaled.pts = index * (90000 // FPS)
            scaled.time_base = fractions.Fraction(1, 90000)
            scaled.pict_type = _INTRA if index % gop == 0 else _ANY
            units = split_annex_b(b"".join(bytes(p) for p in encoders[layer].encode(scaled)))
            if not units:
                raise RuntimeError(f"libx264 held back frame {index}: not zero-latency")
            keyframe = any(unit[0] & 0x1F == _NAL_IDR for unit in units)
            encoded[layer].append(VideoFrame(payloads=packetize(units), keyframe=keyframe))
    return encoded


def _x264_encoder(width: int, height: int, bitrate: int) -> Any:
    """libx264 as a real-time browser encoder: CBR-like at `bitrate`, IDRs only where
    forced, parameter sets with each."""
    codec: Any = av.CodecContext.create("libx264", "w")
    codec.width = width
    codec.height = height
    codec.bit_rate = bitrate
    codec.pix_fmt = "yuv420p"
    codec.framerate = fractions.Fraction(FPS, 1)
    codec.time_base = fractions.Fraction(1, 90000)
    codec.options = {
        "profile": "baseline",
        "preset": "veryfast",
        "tune": "zerolatency",
        "forced-idr": "1",  # a forced I frame is an IDR, where a switch can land
        "maxrate": str(bitrate),
        "bufsize": str(bitrate),
        "x264-params": "keyint=infinite:scenecut=0:repeat-headers=1",
    }
    codec.thread_count = 1
    return codec


def split_annex_b(stream: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream, without start codes. Emulation
    prevention keeps 00 00 01 out of every unit, and a unit never ends in a zero byte
    (its RBSP trailing bits end in a one), so trailing zeros belong to the next start
    code (a 4-byte 00 00 00 01)."""
    return [unit.rstrip(b"\x00") for unit in stream.split(b"\x00\x00\x01")[1:] if unit]


def packetize(units: Sequence[bytes], max_payload: int = MAX_VIDEO_PAYLOAD) -> tuple[bytes, ...]:
    """One access unit's NAL units as RTP payloads (packetization-mode 1)."""
    packets: list[bytes] = []
    pending: list[bytes] = []  # small units waiting to share a STAP-A

    def flush() -> None:
        if len(pending) == 1:
            packets.append(pending[0])
        elif pending:
            packets.append(_stap_a(pending))
        pending.clear()

    for unit in units:
        if len(unit) > max_payload:
            flush()
            packets.extend(_fu_a(unit, max_payload))
            continue
        if pending and 1 + sum(2 + len(u) for u in (*pending, unit)) > max_payload:
            flush()
        pending.append(unit)
    flush()
    return tuple(packets)


def _stap_a(units: Sequence[bytes]) -> bytes:
    """RFC 6184 §5.7.1: F is any unit's, NRI the highest of them."""
    forbidden = max(unit[0] & 0x80 for unit in units)
    nri = max(unit[0] & 0x60 for unit in units)
    body = b"".join(len(unit).to_bytes(2, "big") + unit for unit in units)
    return bytes([forbidden | nri | _STAP_A]) + body


def _fu_a(unit: bytes, max_payload: int) -> list[bytes]:
    """RFC 6184 §5.8: the unit's header becomes the FU indicator (its F and NRI) and FU
    header (S, E, its type); the rest is split into fragments of near-equal size."""
    indicator = (unit[0] & 0xE0) | _FU_A
    nal_type = unit[0] & 0x1F
    body = unit[1:]
    count = math.ceil(len(body) / (max_payload - 2))
    size = math.ceil(len(body) / count)
    fragments = []
    for i in range(count):
        start, end = 0x80 if i == 0 else 0, 0x40 if i == count - 1 else 0
        header = bytes([indicator, start | end | nal_type])
        fragments.append(header + body[i * size : (i + 1) * size])
    return fragments
