"""``GET /metrics``: Prometheus exposition of the media core, the control plane and the process.

Each application gets its own `CollectorRegistry` (several servers may share a
process in tests). The collectors read plain counters at scrape time; the only
thing observed continuously is event-loop lag, by a task that measures how
late a short sleep wakes up (anything that blocks the loop delays every packet
by as much).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram, ProcessCollector
from prometheus_client.aiohttp import make_aiohttp_handler

from sfu.clock import Clock
from sfu.metrics import MediaCollector

from .. import __version__
from ..metrics import SignalingCollector
from .loop_stall import STALL_INTERVAL, stall_recorder

__all__ = ["LAG_INTERVAL", "METRICS", "collectors", "handle", "watch_loop_lag"]

METRICS = web.AppKey("metrics", CollectorRegistry)
LAG_INTERVAL = 0.25
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


async def collectors(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: register the collectors once the media worker exists; run the lag probe."""
    from .app import CLOCK, REGISTRY, SESSIONS, WORKER

    registry = CollectorRegistry()
    registry.register(MediaCollector(app[WORKER]))
    sessions = app[SESSIONS]
    registry.register(SignalingCollector(app[REGISTRY], connections=lambda: len(sessions)))
    # CPU seconds, resident and virtual memory, open file descriptors of this worker process.
    ProcessCollector(namespace="stage_sfu", registry=registry)
    build = Gauge(
        "stage_sfu_build_info", "Always 1; the running version.", ["version"], registry=registry
    )
    build.labels(__version__).set(1)
    loop = asyncio.get_running_loop()
    tasks = Gauge(
        "stage_sfu_asyncio_tasks",
        "Asyncio tasks alive in this worker process (a leak of per-session work shows here).",
        registry=registry,
    )
    tasks.set_function(lambda: len(asyncio.all_tasks(loop)))
    lag = Histogram(
        "stage_sfu_event_loop_lag_seconds",
        f"How late the event loop woke a {LAG_INTERVAL} s sleep (time the loop was blocked).",
        buckets=LAG_BUCKETS,
        registry=registry,
    )
    pauses = Histogram(
        "stage_sfu_gc_pause_seconds",
        "Cycle-collector pauses by generation; the event loop (and every packet) waits "
        "as long. Full collections (generation 2) grow with the live sessions.",
        ["generation"],
        buckets=LAG_BUCKETS,
        registry=registry,
    )
    timer = _collection_timer(lambda gen, seconds: pauses.labels(gen).observe(seconds))
    gc.callbacks.append(timer)
    app[METRICS] = registry
    probe = asyncio.get_running_loop().create_task(
        watch_loop_lag(app[CLOCK], lag.observe), name="event-loop-lag"
    )
    stalls = asyncio.get_running_loop().create_task(
        watch_loop_lag(app[CLOCK], stall_recorder(registry), STALL_INTERVAL),
        name="event-loop-stalls",
    )
    try:
        yield
    finally:
        gc.callbacks.remove(timer)
        for task in (probe, stalls):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _collection_timer(
    observe: Callable[[str, float], None],
) -> Callable[[str, dict[str, Any]], None]:
    """A gc callback timing each collection (called around every one, so it stays tiny)."""
    started = 0.0

    def timer(phase: str, info: dict[str, Any]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
        else:
            observe(str(info["generation"]), time.perf_counter() - started)

    return timer


async def handle(request: web.Request) -> web.StreamResponse:
    serve = make_aiohttp_handler(request.app[METRICS])
    return await serve(request)


async def watch_loop_lag(
    clock: Clock, observe: Callable[[float], None], interval: float = LAG_INTERVAL
) -> None:
    """Forever: sleep `interval` seconds and observe how much later than that we woke."""
    while True:
        started = clock.now()
        await asyncio.sleep(interval)
        observe(max(0.0, clock.now() - started - interval))
