"""A video pacer like Chromium's: a frame's packets leave at a fixed rate, not in a burst.

libwebrtc sends through a pacer at `pacing_factor` (2.5 by default) times the target
bitrate, so a key frame of many packets is spread over tens of milliseconds instead of
reaching the SFU as one burst. Here every packet leaves `size * 8 / rate` seconds after
the previous one; an idle pacer starts a new frame at once. Audio does not go through it
(libwebrtc sends audio first, and it is a small share of the bytes).

Sizes are payload bytes, the same measure as `MediaClip.video_bitrate`, so the factor is
exactly the ratio of pacing rate to media rate. A rate of 0 means no pacing: every packet
is due at once (the frame goes out back to back, the behaviour before pacing).
"""

from __future__ import annotations

import math
from collections import deque
from typing import NamedTuple

# Packets due within this much of now go out in the same wake: event loop timers have
# millisecond resolution, and a shorter sleep would only spin.
LOOKAHEAD = 0.001
# After a stall (the process did not run), at most this much missed sending time is
# caught up at once, so the pacer never turns a stall into a burst of a whole frame.
MAX_DEBT = 0.005


class Paced(NamedTuple):
    payload: bytes
    marker: bool
    timestamp: int  # RTP timestamp of the frame
    queued_at: float  # when the frame entered the pacer (time.monotonic())
    stream: int = 0  # which of the publisher's video streams (simulcast encodings) it is


class Pacer:
    def __init__(self, rate_bps: float) -> None:
        self.rate_bps = rate_bps
        self._seconds_per_byte = 8.0 / rate_bps if rate_bps > 0 else 0.0
        self._queue: deque[Paced] = deque()
        self._next = 0.0  # when the next packet may leave
        self.max_burst = 0  # most packets released by one `due` call
        self.max_delay = 0.0  # longest a packet waited in the queue, in seconds

    def push(
        self, payloads: tuple[bytes, ...], timestamp: int, now: float, stream: int = 0
    ) -> None:
        """Queue one frame of `stream`; the last packet carries the marker bit (RFC 7741
        §4.1). One pacer serves all of a publisher's encodings, as libwebrtc's does."""
        if not self._queue:
            self._next = max(self._next, now)
        last = len(payloads) - 1
        self._queue.extend(
            Paced(payload, i == last, timestamp, now, stream) for i, payload in enumerate(payloads)
        )

    def due(self, now: float) -> list[Paced]:
        """The packets to send now, in order, and the pacing budget they use."""
        queue = self._queue
        if not queue:
            return []
        self._next = max(self._next, now - MAX_DEBT)
        horizon = now + LOOKAHEAD
        out = []
        while queue and self._next <= horizon:
            packet = queue.popleft()
            self._next += len(packet.payload) * self._seconds_per_byte
            out.append(packet)
        if out:
            self.max_burst = max(self.max_burst, len(out))
            self.max_delay = max(self.max_delay, now - out[0].queued_at)
        return out

    @property
    def wake_at(self) -> float:
        """When the next queued packet is due (infinity when the queue is empty)."""
        return self._next if self._queue else math.inf

    @property
    def queued(self) -> int:
        return len(self._queue)


def burst_bound(rate_bps: float, smallest_payload: int) -> int:
    """The most packets one `due` call can release at `rate_bps` (> 0): the budget of
    MAX_DEBT + LOOKAHEAD spent on the smallest packets, plus the one that starts it."""
    return math.floor((MAX_DEBT + LOOKAHEAD) * rate_bps / 8 / smallest_payload) + 1
