"""The send clock the publishers of a bot process share."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import pytest

from benchmarks.send_clock import SendClock

PERIOD = 0.005


async def _until(predicate: Callable[[], bool]) -> None:
    """A bounded wait (a hang guard, not a timing assertion) on the clock's own state."""
    async with asyncio.timeout(30):
        while not predicate():  # noqa: ASYNC110 - the clock announces nothing
            await asyncio.sleep(0.001)


class _Ticker:
    """Due every PERIOD from `phase` on, for `times` services."""

    def __init__(self, phase: float, times: int) -> None:
        self.phase = phase
        self.times = times
        self.served: list[float] = []
        self.next = math.inf
        self.wake: Callable[[], None] = lambda: None

    def start(self, now: float) -> None:
        self.next = now + self.phase

    @property
    def wake_at(self) -> float:
        return self.next

    def service(self, now: float) -> bool:
        self.served.append(now)
        self.next += PERIOD
        return len(self.served) < self.times


class _Failing(_Ticker):
    def service(self, now: float) -> bool:
        raise RuntimeError("broken sender")


class _Asleep(_Ticker):
    """Not due until told: wake_at is infinite until `poke`."""

    def start(self, now: float) -> None:
        self.next = math.inf

    def poke(self) -> None:
        self.next = time.monotonic()
        self.wake()


async def test_every_member_is_served_until_it_finishes_and_wake_ups_are_shared() -> None:
    clock = SendClock()
    members = [_Ticker(phase=i * PERIOD / 20, times=30) for i in range(20)]
    await asyncio.wait_for(asyncio.gather(*(clock.drive(m) for m in members)), 30)
    assert all(len(m.served) == 30 for m in members)
    services = sum(len(m.served) for m in members)
    # Twenty senders spread over one period: a wake serves all those due within the
    # lookahead, so there are far fewer wakes than sends.
    assert 0 < clock.wakes * 2 <= services


async def test_a_failing_member_raises_to_its_driver_and_the_others_go_on() -> None:
    clock = SendClock()
    good = _Ticker(phase=0.0, times=10)
    results = await asyncio.wait_for(
        asyncio.gather(clock.drive(_Failing(0.0, 1)), clock.drive(good), return_exceptions=True),
        30,
    )
    assert isinstance(results[0], RuntimeError) and results[1] is None
    assert len(good.served) == 10


async def test_a_member_that_becomes_due_wakes_a_sleeping_clock() -> None:
    clock = SendClock()
    slow = _Ticker(phase=3600.0, times=1)  # keeps the clock asleep for an hour
    asleep = _Asleep(phase=0.0, times=1)
    slow_task = asyncio.create_task(clock.drive(slow))
    asleep_task = asyncio.create_task(clock.drive(asleep))
    try:
        await _until(lambda: clock.wakes > 0)  # it has looked at both and gone to sleep
        asleep.poke()
        await asyncio.wait_for(asleep_task, 30)  # a hang guard, not a timing assertion
        assert len(asleep.served) == 1 and not slow.served
    finally:
        slow_task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow_task


async def test_a_cancelled_driver_leaves_and_the_clock_stops_when_nobody_is_left() -> None:
    clock = SendClock()
    member = _Ticker(phase=3600.0, times=1)
    task = asyncio.create_task(clock.drive(member))
    await _until(lambda: clock.wakes > 0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _until(lambda: not clock.running)
    assert not member.served
