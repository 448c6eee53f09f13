"""The pool's liveness watchdog (signaling/web/workers.py): which /healthz answers show a
worker alive, and that only failures in a row get its process killed. A scripted fake
worker answers on a Unix socket; a `sleep` child of the test stands in for its process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from signaling.settings import ServerSettings, Settings
from signaling.web.workers import WorkerPool, WorkerProcess, WorkerState, responsive

Reply = tuple[int, str]  # (status, body)
Answer = Reply | None  # None: no answer at all
OK: Reply = (200, '{"status": "ok"}')
DRAINING: Reply = (503, '{"status": "draining"}')
BROKEN: Reply = (500, "Internal Server Error")
REFUSING: Reply = (503, '{"status": "ok"}')  # a 503 that is not a drain
SILENT: Answer = None
FAILURES = 3


def test_a_worker_is_alive_when_it_answers_ok_or_drains() -> None:
    assert responsive(200, '{"status": "ok"}')
    assert responsive(503, '{"status": "draining", "rooms": 0}')


def test_any_other_answer_is_a_failed_probe() -> None:
    assert not responsive(503, '{"status": "ok"}')
    assert not responsive(503, "Service Unavailable")
    assert not responsive(503, '["draining"]')
    assert not responsive(500, '{"status": "draining"}')
    assert not responsive(404, "Not Found")


@contextlib.asynccontextmanager
async def fake_worker(script: list[Answer]) -> AsyncIterator[str]:
    """A worker's /healthz on a Unix socket, answering `script` in turn, then BROKEN."""

    async def healthz(request: web.Request) -> web.Response:
        answer = script.pop(0) if script else BROKEN
        if answer is None:
            await asyncio.sleep(60)  # far past the probe's timeout; cut off at cleanup
            answer = BROKEN
        status, body = answer
        return web.Response(status=status, text=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    with tempfile.TemporaryDirectory(prefix="watchdog-") as directory:
        path = str(Path(directory) / "worker.sock")  # short: AF_UNIX paths are limited
        await web.UnixSite(runner, path).start()
        try:
            yield path
        finally:
            await runner.cleanup()


@contextlib.asynccontextmanager
async def watched(
    path: str, *, listening: bool = True, lasts: float = 60.0
) -> AsyncIterator[tuple[WorkerPool, WorkerProcess]]:
    """A pool with quick probes and a worker at `path` whose process, a child of ours,
    exits by itself after `lasts` seconds."""
    server = ServerSettings(worker_probe_interval=0.01, worker_probe_timeout=0.2,
                            worker_probe_failures=FAILURES)  # fmt: skip
    pool = WorkerPool(Settings(server=server), 1)
    process = await asyncio.create_subprocess_exec("sleep", str(lasts))
    worker = WorkerProcess(0, path, process, started_at=0.0, listening=listening)
    pool.workers.append(worker)
    try:
        yield pool, worker
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        await pool.stop(1.0)


@pytest.mark.timeout(20)
async def test_only_failures_in_a_row_get_a_worker_killed() -> None:
    script = [BROKEN, BROKEN, OK, REFUSING, SILENT, OK, BROKEN, SILENT, REFUSING]
    async with fake_worker(list(script)) as path, watched(path) as (pool, worker):
        returncode = await asyncio.wait_for(pool._watch(worker), 10)

        assert returncode == -signal.SIGKILL
        assert worker.probes == len(script)  # killed at the third failure in a row, no later
        assert worker.hangs == 1
        assert pool.state(0) is WorkerState.RESTARTING


@pytest.mark.timeout(20)
async def test_a_draining_worker_is_not_killed() -> None:
    async with fake_worker([DRAINING] * 6) as path, watched(path) as (pool, worker):
        returncode = await asyncio.wait_for(pool._watch(worker), 10)

        assert returncode == -signal.SIGKILL
        assert worker.probes == 6 + FAILURES  # the drain answers counted as alive


@pytest.mark.timeout(20)
async def test_a_worker_that_failed_its_last_probe_is_unresponsive_but_keeps_its_rooms() -> None:
    async with fake_worker([OK, BROKEN, SILENT]) as path, watched(path) as (pool, worker):
        watch = asyncio.ensure_future(pool._watch(worker))
        try:
            async with asyncio.timeout(10):
                while worker.missed == 0:  # noqa: ASYNC110 - the watchdog announces nothing
                    await asyncio.sleep(0.005)
            assert pool.state(0) is WorkerState.UNRESPONSIVE
            assert pool.alive(0)
        finally:
            await asyncio.wait_for(watch, 10)


@pytest.mark.timeout(20)
async def test_a_worker_that_is_not_listening_is_not_probed() -> None:
    # Nothing listens at the path: a probe would fail, and three would kill the process.
    # The process lives for some thirty probe intervals, then exits by itself.
    async with watched("/nonexistent/worker.sock", listening=False, lasts=0.3) as (pool, worker):
        assert await asyncio.wait_for(pool._watch(worker), 10) == 0
        assert (worker.probes, worker.hangs) == (0, 0)
