"""Pre-encoded media for the publisher bots: encoded once, cached, replayed forever.

Video: VP8 at 640x360, 30 fps, ~1.2 Mbit/s from a moving test pattern, a key frame
every 2 s, packetized like libwebrtc (frames split evenly into RTP payloads of at most
~1.2 kB, RFC 7741 payload descriptor with a 15-bit PictureID): about 150-170 packets/s.
Audio: Opus, 20 ms frames (50 packets/s) of a 440 Hz tone at ~32 kbit/s.

Simulcast (`load_simulcast_clips`): the same moving pattern as a three-encoding ladder,
lowest first: 160x90 at ~150 kbit/s, 320x180 at ~400 kbit/s and the 640x360 clip
above, all at the same frame rate with key frames at the same frames, as one capture
feeding three encoders would give. The lower two are the full-size picture scaled
down, and each encoding numbers its pictures on its own (its own first PictureID), as
a browser's encoders do.

Encoding uses aiortc's encoders (libvpx/libopus through PyAV) and takes a few seconds;
the result is pickled under `benchmarks/.cache/` (gitignored) keyed by the parameters,
so every later run only loads it. Payloads are stored without the 8-byte send-time
stamp the publisher appends when it sends.
"""

from __future__ import annotations

import fractions
import math
import os
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc.codecs import get_encoder
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
FORMAT_VERSION = 4

WIDTH, HEIGHT, FPS = 640, 360, 30
VIDEO_BITRATE = 1_200_000
KEY_FRAME_INTERVAL_S = 2.0
VIDEO_SECONDS = 10  # five GOPs; the replay loops over them
AUDIO_SECONDS = 2
AUDIO_BITRATE = 32_000
MAX_VIDEO_PAYLOAD = 1050  # libwebrtc-like: ~1.15 kB on the wire with headers, stamp and SRTP tag
OPUS_FRAME_MS = 20
# The simulcast ladder below the 640x360 clip: (width, height, bitrate, first PictureID).
SIMULCAST_FORMAT_VERSION = 1
LOWER_ENCODINGS = ((160, 90, 150_000, 9_000), (320, 180, 400_000, 21_000))


@dataclass(frozen=True, slots=True)
class VideoFrame:
    payloads: tuple[bytes, ...]  # RTP payloads: VP8 descriptor + data, or H.264 NAL units
    keyframe: bool


@dataclass(frozen=True, slots=True)
class MediaClip:
    video: tuple[VideoFrame, ...]
    audio: tuple[bytes, ...]  # one Opus packet per 20 ms
    codec: str = "VP8"  # the video's: "VP8" or "H264" (sfu.ortc.PAYLOAD_TYPES)

    @property
    def keyframe_indexes(self) -> tuple[int, ...]:
        return tuple(i for i, frame in enumerate(self.video) if frame.keyframe)

    @property
    def video_packets_per_second(self) -> float:
        return sum(len(f.payloads) for f in self.video) * FPS / len(self.video)

    @property
    def video_bitrate(self) -> float:
        size = sum(len(p) for f in self.video for p in f.payloads)
        return size * 8 * FPS / len(self.video)


def cache_path() -> Path:
    name = (
        f"clip-v{FORMAT_VERSION}-{WIDTH}x{HEIGHT}-{FPS}fps-{VIDEO_BITRATE}bps"
        f"-{VIDEO_SECONDS}s-opus{AUDIO_BITRATE}.pickle"
    )
    return CACHE_DIR / name


def simulcast_cache_path() -> Path:
    ladder = "-".join(f"{w}x{h}-{bps}bps-pid{first}" for w, h, bps, first in LOWER_ENCODINGS)
    name = (
        f"simulcast-v{SIMULCAST_FORMAT_VERSION}-clip-v{FORMAT_VERSION}-{ladder}"
        f"-{FPS}fps-{VIDEO_SECONDS}s.pickle"
    )
    return CACHE_DIR / name


def load_clip(*, create: bool = True) -> MediaClip:
    """The cached clip, encoding it first if needed (and `create`)."""
    path = cache_path()
    if path.exists():
        with path.open("rb") as f:
            raw = pickle.load(f)  # plain tuples, bytes and bools only
        return MediaClip(
            video=tuple(VideoFrame(payloads=p, keyframe=k) for p, k in raw["video"]),
            audio=tuple(raw["audio"]),
        )
    if not create:
        raise FileNotFoundError(path)
    clip = MediaClip(video=tuple(_encode_video()), audio=tuple(_encode_audio()))
    raw = {"video": [(f.payloads, f.keyframe) for f in clip.video], "audio": list(clip.audio)}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    with partial.open("wb") as out:
        pickle.dump(raw, out, protocol=pickle.HIGHEST_PROTOCOL)
    partial.replace(path)  # atomic: concurrent runs never read half a file
    return clip


def load_simulcast_clips(*, create: bool = True) -> tuple[MediaClip, ...]:
    """The three encodings of the simulcast ladder, lowest first; the last is
    `load_clip()` itself. Each lower clip has the top clip's audio (a publisher sends
    audio once, beside all its encodings). Encoded first if needed (and `create`)."""
    top = load_clip(create=create)
    lower = cached_videos(simulcast_cache_path(), _encode_lower_encodings, create=create)
    return (*(MediaClip(video=tuple(video), audio=top.audio) for video in lower), top)


def cached_videos(
    path: Path, encode: Callable[[], list[list[VideoFrame]]], *, create: bool
) -> list[list[VideoFrame]]:
    """The encodings pickled at `path`, encoded first with `encode` if needed (and
    `create`), written atomically so concurrent runs never read half a file."""
    if path.exists():
        with path.open("rb") as f:
            raw = pickle.load(f)  # plain tuples, bytes and bools only
        return [[VideoFrame(payloads=p, keyframe=k) for p, k in video] for video in raw]
    if not create:
        raise FileNotFoundError(path)
    videos = encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    with partial.open("wb") as out:
        pickle.dump(
            [[(f.payloads, f.keyframe) for f in video] for video in videos],
            out,
            protocol=pickle.HIGHEST_PROTOCOL,
        )
    partial.replace(path)
    return videos


def source_frames() -> Iterator[av.VideoFrame]:
    """The capture every clip encodes: VIDEO_SECONDS of full-size frames of the moving
    pattern, the same (noise included) on every call."""
    rng = np.random.default_rng(1)
    grid = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    for index in range(VIDEO_SECONDS * FPS):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(_pattern(index, rng, (grid[0], grid[1])))
        frame.planes[1].update(bytes([(index * 2) % 256]) * (WIDTH * HEIGHT // 4))
        frame.planes[2].update(bytes([128]) * (WIDTH * HEIGHT // 4))
        yield frame


def _pattern(index: int, rng: np.random.Generator, grid: tuple[np.ndarray, np.ndarray]) -> bytes:
    """A moving interference pattern plus a little noise: ~1.2 Mbit/s of real VP8 work."""
    yy, xx = grid
    luma = (
        128.0
        + 60.0 * np.sin((xx + 6 * index) / 23.0) * np.cos((yy - 3 * index) / 17.0)
        + 30.0 * np.sin((xx + yy + 10 * index) / 41.0)
        + rng.normal(0.0, 4.0, size=xx.shape)
    )
    return bytes(np.clip(luma, 0, 255).astype(np.uint8).tobytes())


def _encode_video() -> list[VideoFrame]:
    encoder: Any = get_encoder(  # a Vp8Encoder: the base class has no target_bitrate
        RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    )
    encoder.target_bitrate = VIDEO_BITRATE
    gop = round(KEY_FRAME_INTERVAL_S * FPS)
    frames: list[VideoFrame] = []
    picture_id = 0
    for index, frame in enumerate(source_frames()):
        frame.pts = index * (90000 // FPS)
        frame.time_base = fractions.Fraction(1, 90000)
        payloads, _ = encoder.encode(frame, force_keyframe=index % gop == 0)
        # Undo aiortc's packetization (fixed 1300-byte chunks) and split evenly instead.
        data = b"".join(VpxPayloadDescriptor.parse(p)[1] for p in payloads)
        keyframe = bool(data) and not data[0] & 0x01  # RFC 6386 §9.1: P bit clear
        frames.append(VideoFrame(payloads=_packetize(data, picture_id), keyframe=keyframe))
        picture_id = (picture_id + 1) & 0x7FFF
    return frames


def _encode_lower_encodings() -> list[list[VideoFrame]]:
    """The ladder's lower encodings from the full-size pattern (the same frames, with
    the same noise, as `_encode_video`), scaled down and encoded with the settings
    aiortc's encoder uses, at bitrates below aiortc's 250 kbit/s floor."""
    encoders = [_vp8_encoder(w, h, bitrate) for w, h, bitrate, _ in LOWER_ENCODINGS]
    picture_ids = [first for *_, first in LOWER_ENCODINGS]
    gop = round(KEY_FRAME_INTERVAL_S * FPS)
    encoded: list[list[VideoFrame]] = [[] for _ in LOWER_ENCODINGS]
    for index, frame in enumerate(source_frames()):
        for layer, (width, height, _, _) in enumerate(LOWER_ENCODINGS):
            scaled = frame.reformat(width=width, height=height)
            scaled.pts = index * (90000 // FPS)
            scaled.time_base = fractions.Fraction(1, 90000)
            if index % gop == 0:
                scaled.pict_type = av.video.frame.PictureType.I
            data = b"".join(bytes(p) for p in encoders[layer].encode(scaled))
            keyframe = bool(data) and not data[0] & 0x01  # RFC 6386 §9.1: P bit clear
            encoded[layer].append(
                VideoFrame(payloads=_packetize(data, picture_ids[layer]), keyframe=keyframe)
            )
            picture_ids[layer] = (picture_ids[layer] + 1) & 0x7FFF
    return encoded


def _vp8_encoder(width: int, height: int, bitrate: int) -> Any:
    """A libvpx encoder set up as aiortc's Vp8Encoder sets up its own (CBR, realtime)."""
    codec: Any = av.CodecContext.create("libvpx", "w")
    codec.width = width
    codec.height = height
    codec.bit_rate = bitrate
    codec.pix_fmt = "yuv420p"
    codec.gop_size = 3000
    codec.qmin = 2
    codec.qmax = 56
    codec.options = {
        "bufsize": str(bitrate),
        "cpu-used": "-6",
        "deadline": "realtime",
        "lag-in-frames": "0",
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "noise-sensitivity": "4",
        "overshoot-pct": "15",
        "partitions": "0",
        "static-thresh": "1",
        "undershoot-pct": "100",
    }
    codec.thread_count = 1
    return codec


def _packetize(data: bytes, picture_id: int) -> tuple[bytes, ...]:
    count = max(1, math.ceil(len(data) / MAX_VIDEO_PAYLOAD))
    size = math.ceil(len(data) / count)
    out = []
    for i in range(count):
        descriptor = VpxPayloadDescriptor(
            partition_start=int(i == 0), partition_id=0, picture_id=picture_id
        )
        out.append(bytes(descriptor) + data[i * size : (i + 1) * size])
    return tuple(out)


def _encode_audio() -> list[bytes]:
    encoder: Any = get_encoder(  # an OpusEncoder: the base class has no codec
        RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
    )
    encoder.codec.bit_rate = AUDIO_BITRATE
    samples = 48000 * OPUS_FRAME_MS // 1000
    packets: list[bytes] = []
    count = AUDIO_SECONDS * 1000 // OPUS_FRAME_MS
    index = 0
    # The encoder buffers a little; feed until enough packets came out (bounded).
    while len(packets) < count and index < count * 2:
        t = (np.arange(samples) + index * samples) / 48000.0
        tone = (np.sin(2 * np.pi * 440.0 * t) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = index * samples
        frame.time_base = fractions.Fraction(1, 48000)
        out, _ = encoder.encode(frame)
        packets.extend(out)
        index += 1
    return packets[:count]


if __name__ == "__main__":
    clip = load_clip()
    print(  # noqa: T201 - a command-line summary
        f"{cache_path()}: {len(clip.video)} frames, {clip.video_packets_per_second:.0f} pkt/s, "
        f"{clip.video_bitrate / 1e6:.2f} Mbit/s, key frames at {clip.keyframe_indexes}; "
        f"{len(clip.audio)} Opus packets, mean {np.mean([len(p) for p in clip.audio]):.0f} B"
    )
    for encoding in load_simulcast_clips()[:-1]:
        print(  # noqa: T201 - a command-line summary
            f"{simulcast_cache_path().name}: {len(encoding.video)} frames, "
            f"{encoding.video_packets_per_second:.0f} pkt/s, "
            f"{encoding.video_bitrate / 1e3:.0f} kbit/s, key frames at {encoding.keyframe_indexes}"
        )
