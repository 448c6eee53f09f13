"""The router's tick drives RTCP and speaking detection for a whole room: one failing
producer or observer must not stop it for the others."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sfu.types import ObserverId
from sfu.worker import Worker
from tests.fakes import EventRecorder


class _Ticking:
    def __init__(self, name: str, *, fails: bool = False) -> None:
        self.id = ObserverId(name)
        self.fails = fails
        self.ticks = 0

    def tick(self, now: float) -> None:
        self.ticks += 1
        if self.fails:
            raise RuntimeError("broken observer")

    def close(self) -> None:
        pass


async def test_a_failing_tick_is_counted_logged_once_and_the_others_keep_ticking(
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker = Worker()
    router = worker.create_router(on_event=EventRecorder())
    broken, healthy = _Ticking("broken", fails=True), _Ticking("healthy")
    router.observers.extend([broken, healthy])  # type: ignore[list-item]
    try:
        async with asyncio.timeout(5):
            while healthy.ticks < 5:  # noqa: ASYNC110 - ticks announce nothing
                await asyncio.sleep(0.02)
    finally:
        worker.close_router(router)

    assert broken.ticks >= 5
    assert router.tick_errors >= 5
    logged = [r for r in caplog.records if r.levelno == logging.ERROR and "broken" in r.message]
    assert len(logged) == 1
