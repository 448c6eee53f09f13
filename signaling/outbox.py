"""Outbox: the frames waiting for one client's socket, bounded, with coalescing.

A frame may carry a key naming the state it describes (one participant's record, the
queues, a poll's results). Such a frame replaces a queued, not yet sent frame with the
same key in place, and one that follows a sent frame of its key within `window` is held
until the window has passed (latest state wins). So another participant's flood of
changes reaches each recipient as at most one update per key per window, and cannot
fill anyone's backlog: a client is shed only for its own slowness.

Order is kept: while anything is held, later updates wait behind it (so the queues
never show a hand that the participant's record does not yet), and a frame without a
key, which is never merged, releases everything held before itself.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable

Key = Hashable


class _Slot:
    __slots__ = ("frame", "key")

    def __init__(self, frame: str, key: Key | None) -> None:
        self.frame = frame
        self.key = key


class Outbox:
    def __init__(self, *, limit: int, window: float, now: Callable[[], float]) -> None:
        self._limit = limit
        self._window = window
        self._now = now
        self._queue: deque[_Slot] = deque()
        self._queued: dict[Key, _Slot] = {}  # key -> its slot still in the queue
        self._held: dict[Key, str] = {}  # key -> latest frame, waiting for its window
        self._sent_at: dict[Key, float] = {}
        self._flush: asyncio.TimerHandle | None = None
        self._ready = asyncio.Event()
        self._finished = False
        self.coalesced = 0  # frames replaced by a later one before being sent

    def __len__(self) -> int:
        return len(self._queue) + len(self._held)

    def put(self, frame: str, key: Key | None = None) -> bool:
        """Queue `frame`; False when the outbox is full (the caller sheds the client)."""
        if self._finished:
            return True
        if key is None:
            self._release_held()
            return self._append(frame, None)
        slot = self._queued.get(key)
        if slot is not None:
            slot.frame = frame
            self.coalesced += 1
            return True
        sent_at = self._sent_at.get(key)
        in_window = sent_at is not None and self._now() - sent_at < self._window
        if in_window or self._held:
            self.coalesced += key in self._held
            self._held[key] = frame
            self._schedule_release()
            return len(self) <= self._limit
        return self._append(frame, key)

    def finish(self, *, discard: bool = False) -> None:
        """No more frames: the reader gets what is queued (nothing if `discard`), then None."""
        self._finished = True
        if discard:
            self._queue.clear()
            self._queued.clear()
            self._held.clear()
        else:
            self._release_held()
        if self._flush is not None:
            self._flush.cancel()
        self._ready.set()

    async def get(self) -> str | None:
        """The next frame to send, or None once finished and empty."""
        while not self._queue:
            if self._finished:
                return None
            self._ready.clear()
            await self._ready.wait()
        slot = self._queue.popleft()
        if slot.key is not None:
            del self._queued[slot.key]
            self._sent_at[slot.key] = self._now()
        return slot.frame

    def _append(self, frame: str, key: Key | None) -> bool:
        if len(self) >= self._limit:
            return False
        slot = _Slot(frame, key)
        self._queue.append(slot)
        if key is not None:
            self._queued[key] = slot
        self._ready.set()
        return True

    def _release_held(self) -> None:
        held, self._held = self._held, {}
        for key, frame in held.items():
            self._requeue(key, frame)

    def _requeue(self, key: Key, frame: str) -> None:
        """A held frame joins the queue, merging into an unsent one of its key."""
        slot = self._queued.get(key)
        if slot is not None:
            slot.frame = frame
            self.coalesced += 1
        else:
            self._append(frame, key)

    def _schedule_release(self) -> None:
        """Wake when the first held frame's window ends (held frames leave in order)."""
        if self._flush is None and self._held:
            first = next(iter(self._held))
            sent_at = self._sent_at.get(first)
            at = self._now() if sent_at is None else sent_at + self._window
            delay = max(0.0, at - self._now())
            self._flush = asyncio.get_running_loop().call_later(delay, self._on_window)

    def _on_window(self) -> None:
        self._flush = None
        now = self._now()
        self._sent_at = {k: t for k, t in self._sent_at.items() if now - t < self._window}
        while self._held:
            key = next(iter(self._held))
            if key in self._sent_at:
                break  # still in its window: it, and everything after it, waits
            self._requeue(key, self._held.pop(key))
        self._schedule_release()
