"""Postman: a worker's outgoing signaling, in order, a bounded number per loop turn.

Telling 5 000 people about one change costs 5 000 deliveries (queueing a frame,
waking a writer); done in one go, that holds the event loop, and with it the media
the worker forwards, for a hundred milliseconds and more. The postman delivers at
most `batch` messages per turn of the event loop and queues the rest, so incoming
packets are read in between. Everything a worker's rooms send goes through it in
one queue (first in, first out), so no recipient sees two messages out of order,
and a command's reply is resolved only after the messages it caused (`after`), as
if they had all been sent at once.

When nothing is queued and the turn's budget is not spent, a message is delivered at
once: a small room never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from typing import Any

# Deliveries per loop turn: one costs roughly 10-30 µs (the frame queued, then its
# writer woken in the next turn), so a turn stays within a few milliseconds.
BATCH = 100


class Postman:
    def __init__(self, *, batch: int = BATCH) -> None:
        if batch < 1:
            raise ValueError("batch: must be >= 1")
        self._batch = batch
        self._queue: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self._spent = 0  # deliveries in the current loop turn
        self._task: asyncio.Task[None] | None = None
        self.deferred = 0  # deliveries that waited for a later turn (a metric)

    def __len__(self) -> int:
        return len(self._queue)

    def post(self, deliver: Callable[..., None], *args: Any) -> None:
        """Call `deliver(*args)` now, or after everything queued before it."""
        if not self._queue and self._spent < self._batch:
            self._spend()
            deliver(*args)
            return
        self.deferred += 1
        self._queue.append((deliver, args))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="postman")

    def after(self, callback: Callable[[], None]) -> None:
        """Run `callback` once everything posted so far has been delivered (it does
        not count against the budget: replies are not fan-out)."""
        if not self._queue:
            callback()
        else:
            self._queue.append((callback, ()))

    def flush(self) -> None:
        """Deliver everything queued now (closing: nothing may be lost)."""
        while self._queue:
            deliver, args = self._queue.popleft()
            deliver(*args)

    async def close(self) -> None:
        self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _spend(self) -> None:
        if self._spent == 0:  # the budget renews at the next turn of the loop
            asyncio.get_running_loop().call_soon(self._renew)
        self._spent += 1

    def _renew(self) -> None:
        self._spent = 0

    async def _drain(self) -> None:
        try:
            while self._queue:
                await asyncio.sleep(0)  # one loop turn: sockets are read in between
                while self._queue and self._spent < self._batch:
                    deliver, args = self._queue.popleft()
                    self._spend()
                    deliver(*args)
        finally:
            self._task = None
