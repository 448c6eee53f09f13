"""The front starts a media worker again when its process dies: placement skips it
while it is down, health and metrics show it, and it takes rooms (and spreads them
over the other workers, and takes theirs) once it is back. A worker that hangs
without exiting is killed by the front's watchdog, then started again the same way."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from signaling.client import ServerError, StageClient
from tests.integration.front import front, token, worker_samples
from tests.integration.helpers import receive, remote_track, wait_for_tracks
from tests.media import PatternTrack, ToneTrack

SPREAD_FROM_THE_FIRST = {"STAGE_SFU_ROOMS_SPREAD_AFTER": "0"}
QUICK_PROBES = {  # a hang is found within about 4 s instead of 15
    "STAGE_SFU_SERVER_WORKER_PROBE_INTERVAL": "0.2",
    "STAGE_SFU_SERVER_WORKER_PROBE_TIMEOUT": "1.0",
    "STAGE_SFU_SERVER_WORKER_PROBE_FAILURES": "3",
}
Health = dict[str, Any]


async def _health(port: int) -> Health:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/healthz") as response,
    ):
        health: Health = await response.json()
        assert (response.status == 200) == (health["status"] == "ok")
        return health


def _worker(health: Health, index: int) -> dict[str, Any]:
    return next(w for w in health["workers"] if w["index"] == index)


async def _until_health(
    port: int, predicate: Callable[[Health], bool], timeout: float = 30.0
) -> Health:
    """Bounded wait until the front's /healthz satisfies `predicate`; returns that answer."""
    async with asyncio.timeout(timeout):
        while not predicate(health := await _health(port)):  # noqa: ASYNC110 - health announces nothing
            await asyncio.sleep(0.02)
    return health


def _restarting(index: int) -> Callable[[Health], bool]:
    def check(health: Health) -> bool:
        return bool(
            health["status"] == "degraded" and _worker(health, index)["status"] == "restarting"
        )

    return check


def _back(index: int, old_pid: int) -> Callable[[Health], bool]:
    """Every worker is up, `index` with a new process."""

    def check(health: Health) -> bool:
        worker = _worker(health, index)
        return health["status"] == "ok" and worker["pid"] not in (None, old_pid)

    return check


def _started_again(index: int, old_pid: int) -> Callable[[Health], bool]:
    """A new process runs for the worker, listening or not yet."""

    def check(health: Health) -> bool:
        return _worker(health, index)["pid"] not in (None, old_pid)

    return check


async def _per_worker(port: int, name: str) -> dict[str, float]:
    samples = await worker_samples(port, name)
    return {worker: value for (worker, _), value in samples.items()}


async def _restarts(port: int) -> dict[str, float]:
    return await _per_worker(port, "stage_sfu_worker_restarts_total")


async def _hangs(port: int) -> dict[str, float]:
    return await _per_worker(port, "stage_sfu_worker_hangs_total")


def _running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _child_of(pid: int, parent: int) -> bool:
    """`pid` still runs as a child of `parent`: safe to signal, it is not a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return _running(pid) and int(stat.rsplit(")", 1)[1].split()[1]) == parent


@pytest.mark.timeout(120)
async def test_a_killed_worker_is_started_again_and_its_rooms_start_over_there() -> None:
    async with front(2, SPREAD_FROM_THE_FIRST) as (port, _):
        url = f"ws://127.0.0.1:{port}/ws"
        assert await _restarts(port) == {"0": 0, "1": 0}
        lost = await StageClient.connect(url, token("lost", "lost"))  # the first room: worker 0
        try:
            health = await _health(port)
            assert _worker(health, 0)["rooms"] == 1
            old_pid = _worker(health, 0)["pid"]

            os.kill(old_pid, signal.SIGKILL)

            await asyncio.wait_for(lost.closed.wait(), 10)
            assert lost.close_code == 1012  # not 1000: the session did not end by leaving
            health = await _until_health(port, _restarting(0))
            assert _worker(health, 1)["status"] == "ok"
            health = await _until_health(port, _back(0, old_pid))
            assert _worker(health, 0)["restarts"] == 1
            assert _worker(health, 0)["rooms"] == 0
            assert await _restarts(port) == {"0": 1, "1": 0}
        finally:
            await lost.close()

        # The session died with the worker; the room is still placed there, on a fresh
        # process that knows nothing of it: the client joins again.
        with pytest.raises(ServerError) as refused:
            await StageClient.resume(url, "lost", lost.joined["resume_token"])
        assert refused.value.code == "resume_failed"
        publisher = await StageClient.connect(url, token("lost", "pub"), entry="stage")
        viewers: list[StageClient] = []
        try:
            viewers.append(await StageClient.connect(url, token("lost", "far")))
            viewers.append(await StageClient.connect(url, token("lost", "near")))
            await publisher.publish([ToneTrack(0.2), PatternTrack()])
            for viewer in viewers:
                await wait_for_tracks(viewer, publisher.participant_id)
                await receive(remote_track(viewer, publisher.participant_id, "video").track, 3)
                await receive(remote_track(viewer, publisher.participant_id, "audio").track, 3)
            assert _worker(await _health(port), 0)["rooms"] == 1
            # The restarted worker linked to the other one for the far viewer's media.
            piped = await worker_samples(port, "stage_sfu_pipe_rtp_packets_total")
            assert piped[("0", (("direction", "out"),))] > 0
            assert piped[("1", (("direction", "in"),))] > 0
        finally:
            for client in (publisher, *viewers):
                await client.close()


@pytest.mark.timeout(120)
async def test_a_worker_killed_again_as_it_restarts_is_still_started_again() -> None:
    async with front(2) as (port, _):
        first = _worker(await _health(port), 1)["pid"]
        os.kill(first, signal.SIGKILL)
        second = _worker(await _until_health(port, _started_again(1, first)), 1)["pid"]
        os.kill(second, signal.SIGKILL)  # before or just after it listens: a quick failure
        health = await _until_health(port, _back(1, second))
        assert _worker(health, 1)["pid"] != first
        assert _worker(health, 1)["restarts"] == 2
        assert await _restarts(port) == {"0": 0, "1": 2}
        url = f"ws://127.0.0.1:{port}/ws"
        await (await StageClient.connect(url, token("after", "someone"))).close()


@pytest.mark.timeout(120)
async def test_stopping_while_a_worker_restarts_leaves_no_worker_behind() -> None:
    async with front(2) as (port, process):
        health = await _health(port)
        other, old = _worker(health, 0)["pid"], _worker(health, 1)["pid"]
        os.kill(old, signal.SIGKILL)
        health = await _until_health(port, _started_again(1, old))
        new = _worker(health, 1)["pid"]
        # Hold the new process before it listens, so the stop meets it half-started.
        os.kill(new, signal.SIGSTOP)
        assert _worker(await _health(port), 1)["status"] == "restarting"

        process.send_signal(signal.SIGTERM)

        assert await asyncio.wait_for(process.wait(), 20) == 0
        assert [pid for pid in (old, new, other) if _running(pid)] == []


@pytest.mark.timeout(120)
async def test_a_restarted_worker_takes_spread_viewers_again() -> None:
    async with front(2, SPREAD_FROM_THE_FIRST) as (port, _):
        url = f"ws://127.0.0.1:{port}/ws"
        publisher = await StageClient.connect(url, token("big", "pub"), entry="stage")
        far = await StageClient.connect(url, token("big", "far"))
        try:
            await publisher.publish([ToneTrack(0.2), PatternTrack()])
            await wait_for_tracks(far, publisher.participant_id)
            old = _worker(await _health(port), 1)["pid"]
            assert await _transports(port, 1) == 1  # the room lives on 0, its viewer on 1

            os.kill(old, signal.SIGKILL)

            bye = await far.wait_event(lambda e: e["type"] == "bye", timeout=20)
            assert bye["reason"] == "transport_failed"
            await _until_health(port, _back(1, old))
            # The room's worker leaves one it lost the link to alone for a while
            # (peers.RETRY_AFTER), then places viewers there again.
            viewer = await _viewer_on(url, port, 1, publisher.participant_id)
            try:
                await receive(remote_track(viewer, publisher.participant_id, "video").track, 3)
            finally:
                await viewer.close()
        finally:
            for client in (publisher, far):
                await client.close()


async def _transports(port: int, worker: int) -> float:
    samples = await worker_samples(port, "stage_sfu_transports")
    return sum(value for (index, _), value in samples.items() if index == str(worker))


async def _viewer_on(url: str, port: int, worker: int, publisher: str) -> StageClient:
    """Bounded wait: join viewers one at a time until one's media is on `worker`."""
    async with asyncio.timeout(40):
        attempt = 0
        while True:
            attempt += 1
            viewer = await StageClient.connect(url, token("big", f"viewer{attempt}"))
            await wait_for_tracks(viewer, publisher)
            if await _transports(port, worker) > 0:
                return viewer
            await viewer.leave()
            await asyncio.sleep(1.0)  # the room's worker retries a lost one after a while


@pytest.mark.timeout(120)
async def test_a_hung_worker_is_killed_and_started_again() -> None:
    async with front(2, QUICK_PROBES) as (port, process):
        hung = _worker(await _health(port), 1)["pid"]
        os.kill(hung, signal.SIGSTOP)  # alive to the kernel, silent to everyone else
        try:
            health = await _until_health(port, _back(1, hung))

            assert (_worker(health, 1)["hangs"], _worker(health, 1)["restarts"]) == (1, 1)
            assert await _hangs(port) == {"0": 0, "1": 1}
            assert await _restarts(port) == {"0": 0, "1": 1}
            assert not _running(hung)  # killed (SIGKILL ends a stopped process) and reaped
        finally:
            if _child_of(hung, process.pid):
                os.kill(hung, signal.SIGKILL)
        url = f"ws://127.0.0.1:{port}/ws"
        await (await StageClient.connect(url, token("after", "someone"))).close()


@pytest.mark.timeout(120)
async def test_the_watchdog_leaves_healthy_workers_alone_and_stops_with_the_server() -> None:
    async with front(2, QUICK_PROBES) as (port, process):
        health = await _health(port)
        pids = [_worker(health, index)["pid"] for index in (0, 1)]
        # Twice as many probes each as the failures in a row that would get one killed.
        probes = "stage_sfu_worker_probes_total"
        async with asyncio.timeout(30):
            while min((await _per_worker(port, probes)).values()) < 6:  # noqa: ASYNC110 - metrics announce nothing
                await asyncio.sleep(0.1)

        assert await _hangs(port) == {"0": 0, "1": 0}
        assert await _restarts(port) == {"0": 0, "1": 0}
        health = await _health(port)
        assert [_worker(health, index)["pid"] for index in (0, 1)] == pids

        process.send_signal(signal.SIGTERM)  # the probes stop with supervision, then workers

        assert await asyncio.wait_for(process.wait(), 20) == 0
        assert [pid for pid in pids if _running(pid)] == []


@pytest.mark.timeout(120)
async def test_a_silent_worker_is_reported_not_waited_for_by_health_and_metrics() -> None:
    no_watchdog_yet = {
        "STAGE_SFU_SERVER_WORKER_PROBE_INTERVAL": "300",
        "STAGE_SFU_SERVER_WORKER_PROBE_TIMEOUT": "1.0",
    }
    async with front(2, no_watchdog_yet) as (port, _):
        silent = _worker(await _health(port), 1)["pid"]
        os.kill(silent, signal.SIGSTOP)
        try:
            health = await _health(port)
            samples = await worker_samples(port, "stage_sfu_routers")
        finally:
            os.kill(silent, signal.SIGCONT)

        assert health["status"] == "degraded"
        assert _worker(health, 0)["status"] == "ok"
        assert _worker(health, 1)["status"] == "unreachable"
        assert {worker for worker, _ in samples} == {"0"}  # the other worker's metrics came
        assert (await _health(port))["status"] == "ok"
