"""One timer for every publisher in a bot process.

Each publisher on its own timer woke its process about 230 times a second (50 audio
frames, 30 video frames, the paced packets between them): with 24 publishers in one
process, 5 500 wake-ups a second, and the event loop's share of that cost more CPU than
the sending itself. The bots share the cores with the server they measure, so every
core-percent they burn is taken from it. Here one task wakes when the earliest publisher
is due and lets every publisher due within `LOOKAHEAD` send: the same millisecond
granularity each publisher's own timer had (event-loop timers have no finer
resolution), at most a thousand wake-ups a second however many publishers there are.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Protocol

from .pacer import LOOKAHEAD


class Member(Protocol):
    """What the clock drives: a sender that knows when it is next due."""

    wake: Callable[[], None]  # set by the clock: call it when `wake_at` moved earlier

    def start(self, now: float) -> None: ...

    @property
    def wake_at(self) -> float: ...

    def service(self, now: float) -> bool:
        """Send what is due at `now`; False once finished (it is then dropped)."""
        ...


class SendClock:
    def __init__(self) -> None:
        self._members: dict[Member, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self.wakes = 0

    async def drive(self, member: Member) -> None:
        """Run `member` on this clock until it reports it is finished."""
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()
        member.wake = self._wake_up
        member.start(time.monotonic())
        self._members[member] = finished
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        else:
            self._wake_up()
        try:
            await finished
        finally:
            if self._members.pop(member, None) is not None:
                self._wake_up()  # cancelled: the clock may have nobody left to serve

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        clock = time.monotonic
        members = self._members
        while members:
            now = clock()
            horizon = now + LOOKAHEAD
            earliest = math.inf
            for member, finished in list(members.items()):
                if member.wake_at <= horizon and not self._serve(member, finished, now):
                    continue
                earliest = min(earliest, member.wake_at)
            self.wakes += 1
            delay = earliest - clock()
            if delay > 0:
                await self._sleep(loop, delay)
            else:
                await asyncio.sleep(0)  # behind schedule: let the rest of the process run

    def _serve(self, member: Member, finished: asyncio.Future[None], now: float) -> bool:
        """One member's turn; a member that fails or finishes leaves, the others go on."""
        try:
            going_on = member.service(now)
        except Exception as error:  # reported to whoever awaits the member
            self._members.pop(member, None)
            if not finished.done():
                finished.set_exception(error)
            return False
        if not going_on:
            self._members.pop(member, None)
            if not finished.done():
                finished.set_result(None)
        return going_on

    async def _sleep(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        """One timer per wake (cheaper than wait_for on an Event, which makes a task)."""
        waiter: asyncio.Future[None] = loop.create_future()
        timer = loop.call_later(delay, _release, waiter)
        self._waiter = waiter
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _wake_up(self) -> None:
        if self._waiter is not None:
            _release(self._waiter)


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
