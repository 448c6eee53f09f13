"""Cheap media for the fuzzer's clients: a tiny video picture and aiortc's silence."""

from __future__ import annotations

from aiortc.mediastreams import AudioStreamTrack, MediaStreamTrack, VideoStreamTrack
from av import VideoFrame

WIDTH, HEIGHT = 64, 48  # enough to carry VP8 key frames; costs next to no CPU to encode


class TinyVideoTrack(VideoStreamTrack):
    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=WIDTH, height=HEIGHT)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts = pts
        frame.time_base = time_base
        return frame


def audio_and_video() -> list[MediaStreamTrack]:
    return [AudioStreamTrack(), TinyVideoTrack()]
