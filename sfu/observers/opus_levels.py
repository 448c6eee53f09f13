"""Opt-in fallback for publishers that do not send RFC 6464 audio levels:
decode their Opus off the event loop and measure the level with numpy.

This is the only place in the media core that decodes anything, and it is
never used for a producer whose packets carry the audio-level extension.
Decoding runs on one worker thread; levels come back through the loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
from concurrent.futures import Executor

import numpy as np

from ..types import LevelTap, ProducerId

logger = logging.getLogger(__name__)

_MAX_BATCH = 64  # 1.3 s of 20 ms frames: drop beyond this rather than fall behind


class _OpusDecoder:
    """Lives on the executor thread only."""

    def __init__(self) -> None:
        import av  # imported here: the forwarding path never needs it

        self._codec = av.CodecContext.create("opus", "r")

    def level(self, payloads: list[bytes]) -> int | None:
        import av

        squares = 0.0
        count = 0
        for payload in payloads:
            try:
                frames = self._codec.decode(av.Packet(payload))
            except av.FFmpegError:
                continue
            for frame in frames:
                samples = frame.to_ndarray().astype(np.float64)
                if samples.dtype.kind == "f" and np.abs(samples).max(initial=0.0) <= 1.0:
                    samples = samples * 32768.0
                squares += float(np.sum(samples * samples))
                count += samples.size
        if count == 0:
            return None
        rms = math.sqrt(squares / count)
        if rms <= 0:
            return 127
        dbov = 20 * math.log10(rms / 32768.0)
        return int(min(127, max(0, round(-dbov))))


class OpusLevelMeter:
    def __init__(
        self,
        *,
        producer_id: ProducerId,
        executor: Executor,
        on_level: LevelTap,
        interval: float = 0.1,
    ) -> None:
        self.producer_id = producer_id
        self._executor = executor
        self._on_level = on_level
        self._interval = interval
        self._batch: list[bytes] = []
        self._decoder: _OpusDecoder | None = None
        self._busy = False
        self._next = 0.0
        self.closed = False
        self.batches_decoded = 0

    def feed(self, payload: bytes, now: float) -> None:
        """Hot path: keep the payload for the next batch."""
        if len(self._batch) < _MAX_BATCH:
            self._batch.append(payload)

    def tick(self, now: float) -> None:
        if self.closed or self._busy or now < self._next or not self._batch:
            return
        self._next = now + self._interval
        batch, self._batch = self._batch, []
        self._busy = True
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._decode, batch)
        future.add_done_callback(lambda f: self._done(f, now))

    def _decode(self, batch: list[bytes]) -> int | None:
        if self._decoder is None:
            self._decoder = _OpusDecoder()
        return self._decoder.level(batch)

    def _done(self, future: asyncio.Future[int | None], now: float) -> None:
        self._busy = False
        if self.closed or future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            logger.debug("x opus level decode failed: %s", exc)
            return
        level = future.result()
        self.batches_decoded += 1
        if level is not None:
            self._on_level(self.producer_id, level, now)

    def close(self) -> None:
        self.closed = True
        self._batch = []
