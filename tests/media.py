"""Media sources for aiortc test publishers: a moving test pattern and a tone
whose loudness the test controls (for speaking detection)."""

from __future__ import annotations

import fractions
import math

import numpy as np
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from av import AudioFrame, VideoFrame

SAMPLE_RATE = 48000
SAMPLES_PER_FRAME = 960  # 20 ms


class PatternTrack(VideoStreamTrack):
    """A 320x240 picture that changes every frame, so the encoder sends real deltas."""

    def __init__(self, width: int = 320, height: int = 240) -> None:
        super().__init__()
        self._width = width
        self._height = height
        self._count = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        self._count += 1
        image = np.zeros((self._height, self._width, 3), dtype=np.uint8)
        x = (self._count * 4) % self._width
        image[:, max(0, x - 16) : x, :] = 255
        image[: self._height // 2, :, 1] = (self._count * 3) % 256
        frame = VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


class ToneTrack(AudioStreamTrack):
    """A 440 Hz tone; `amplitude` 0 is silence, 1 is full scale."""

    def __init__(self, amplitude: float = 0.0) -> None:
        super().__init__()
        self.amplitude = amplitude
        self._phase = 0

    async def recv(self) -> AudioFrame:
        frame = await super().recv()  # paces at 20 ms and sets pts/time_base
        t = (np.arange(SAMPLES_PER_FRAME) + self._phase) / SAMPLE_RATE
        self._phase += SAMPLES_PER_FRAME
        samples = (self.amplitude * 30000 * np.sin(2 * math.pi * 440 * t)).astype(np.int16)
        out = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        out.sample_rate = SAMPLE_RATE
        out.pts = frame.pts
        out.time_base = fractions.Fraction(1, SAMPLE_RATE)
        return out
