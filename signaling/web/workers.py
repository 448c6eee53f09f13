"""Media worker processes: one per core, each a complete server (rooms, media,
signaling) listening on its own Unix socket, with its own slice of the UDP
port range. The front process (signaling/web/front.py) places rooms on them.

The pool supervises its workers: one whose process exits while the pool runs (a
crash, SIGKILL, the OOM killer) is started again with the same index, socket,
port slice and peers after `restart_delay`. From its exit until the new process
listens, `alive` is False, so nothing is placed on it. `stop` ends supervision
before it stops the workers, so a worker exiting during shutdown stays down.

It also ends workers that hang without exiting (a deadlock, a wedged event loop,
SIGSTOP): while a worker listens, the pool GETs its /healthz every
`server.worker_probe_interval`; after `server.worker_probe_failures` failed probes in a
row it SIGKILLs the process, and the supervisor restarts it as after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import aiohttp
import msgspec

from sfu.clock import SYSTEM_CLOCK, Clock

from ..settings import WORKER_SETTINGS_ENV, Settings

logger = logging.getLogger(__name__)

SETTINGS_ENV = WORKER_SETTINGS_ENV
WORKER_URL = "http://worker"  # the host is a placeholder: requests go over the Unix socket
START_TIMEOUT = 20.0
FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 60.0  # seconds up after which an exit is a new failure, not one more in a row


def worker_count(settings: Settings) -> int:
    configured = settings.server.workers
    return configured if configured > 0 else max(1, os.cpu_count() or 1)


def port_slice(settings: Settings, index: int, count: int) -> tuple[int, int]:
    """Worker `index`'s share of [udp_port_min, udp_port_max], as even as possible."""
    low, high = settings.media.udp_port_min, settings.media.udp_port_max
    span = high - low + 1
    start = low + span * index // count
    end = low + span * (index + 1) // count - 1
    return start, end


def restart_delay(previous: float | None, uptime: float) -> float:
    """Seconds to wait before starting again a worker that exited `uptime` seconds after
    it was started; `previous` is the delay that preceded that start (None: none did).

    FIRST_RESTART_DELAY after a worker that ran STABLE_AFTER seconds or more (or the
    first time), doubling for each quick exit in a row up to MAX_RESTART_DELAY: a worker
    that crashes as it starts costs a start every 30 s, not a core.
    """
    if previous is None or uptime >= STABLE_AFTER:
        return FIRST_RESTART_DELAY
    return min(previous * 2, MAX_RESTART_DELAY)


def describe_exit(returncode: int) -> str:
    """'exited with code 3' or 'killed by SIGKILL', from a process's return code."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        return f"killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"killed by signal {-returncode}"


class WorkerState(StrEnum):
    UP = "up"  # its process runs and listened once started
    UNRESPONSIVE = "unresponsive"  # up, but failed its last probe: killed if it keeps failing
    RESTARTING = "restarting"  # exited: waiting out its delay, or started but not listening yet
    STOPPED = "stopped"  # exited while the pool stops


class WorkerStartError(RuntimeError):
    """A worker process exited before it listened."""


@dataclass
class WorkerProcess:
    index: int
    socket_path: str
    process: asyncio.subprocess.Process
    started_at: float  # clock time of the current process's start
    listening: bool = False  # the current process has accepted a connection
    restarts: int = 0  # processes started after an exit
    delay: float | None = None  # the restart delay before the current process; None: none
    probes: int = 0  # liveness probes sent, over all its processes
    missed: int = 0  # the current process's failed probes in a row
    hangs: int = 0  # processes killed because they stopped answering probes


class WorkerPool:
    def __init__(self, settings: Settings, count: int, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.count = count
        self.workers: list[WorkerProcess] = []
        self.stopping = False
        self._clock = clock
        self._dir = tempfile.mkdtemp(prefix="stage-sfu-")
        self._paths = [str(Path(self._dir) / f"worker-{index}.sock") for index in range(count)]
        self._supervisors: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for index, path in enumerate(self._paths):
            process = await self._spawn(index)
            self.workers.append(WorkerProcess(index, path, process, started_at=self._clock.now()))
        async with asyncio.timeout(START_TIMEOUT):
            for worker in self.workers:
                await _until_listening(worker)
                worker.listening = True
        loop = asyncio.get_running_loop()
        self._supervisors = [
            loop.create_task(self._supervise(worker), name=f"supervise-worker-{worker.index}")
            for worker in self.workers
        ]
        logger.info("%d media workers started: pids %s", self.count, self.pids())

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        path = self._paths[index]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a dead worker's socket only refuses; the new one binds afresh
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "signaling.web.worker_main",
            "--socket",
            path,
            "--index",
            str(index),
            "--count",
            str(self.count),
            "--peers",
            ",".join(self._paths),
            env={**os.environ, SETTINGS_ENV: msgspec.json.encode(self.settings).decode()},
            stdin=asyncio.subprocess.PIPE,  # closed by us or by our death: the worker exits
        )

    async def _supervise(self, worker: WorkerProcess) -> None:
        """Owned by the pool, cancelled by `stop`: start `worker` again whenever it exits."""
        while True:
            returncode = await self._watch(worker)
            worker.listening = False
            worker.missed = 0  # the next process starts with a clean record
            _release(worker.process)
            uptime = self._clock.now() - worker.started_at
            delay = restart_delay(worker.delay, uptime)
            logger.warning("worker %d - pid %d %s after %.1f s; restarting in %.1f s",
                           worker.index, worker.process.pid, describe_exit(returncode), uptime,
                           delay)  # fmt: skip
            await self._start_again(worker, delay)

    async def _watch(self, worker: WorkerProcess) -> int:
        """The current process's return code, probing it while it runs: the watchdog
        lives exactly as long as the process, so a restarting worker is never probed."""
        watchdog = asyncio.create_task(self._watchdog(worker), name=f"watchdog-{worker.index}")
        try:
            return await worker.process.wait()
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog

    async def _watchdog(self, worker: WorkerProcess) -> None:
        """Owned by `_watch`: SIGKILL the process once it fails `worker_probe_failures`
        probes in a row. Killing, not SIGTERM: a hung process would not drain anyway."""
        server = self.settings.server
        while worker.missed < server.worker_probe_failures:
            await asyncio.sleep(server.worker_probe_interval)
            if not worker.listening:
                continue  # still starting (or never will): the start timeout covers it
            answered = await _probe(worker.socket_path, server.worker_probe_timeout)
            worker.probes += 1
            worker.missed = 0 if answered else worker.missed + 1
        logger.warning("worker %d - pid %d failed %d probes in a row (hung); killing it",
                       worker.index, worker.process.pid, worker.missed)  # fmt: skip
        worker.hangs += 1
        with contextlib.suppress(ProcessLookupError):
            worker.process.kill()

    async def _start_again(self, worker: WorkerProcess, delay: float) -> None:
        """A new process after `delay`; it listens, or the supervisor sees it exit next."""
        while True:
            await asyncio.sleep(delay)
            try:
                worker.process = await self._spawn(worker.index)
                break
            except OSError as exc:  # out of memory or processes, for now
                delay = restart_delay(delay, uptime=0.0)
                logger.warning("worker %d - cannot start (%s); trying again in %.1f s",
                               worker.index, exc, delay)  # fmt: skip
        worker.delay = delay
        worker.started_at = self._clock.now()
        worker.restarts += 1
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await _until_listening(worker)
        except WorkerStartError:
            return
        except TimeoutError:
            logger.warning("worker %d - pid %d not listening after %.0f s; killing it",
                           worker.index, worker.process.pid, START_TIMEOUT)  # fmt: skip
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
            return
        worker.listening = True
        logger.info("worker %d - restarted: pid %d (restart %d)", worker.index,
                    worker.process.pid, worker.restarts)  # fmt: skip

    async def stop(self, timeout: float) -> None:
        """End supervision, then SIGTERM every worker (each drains) and wait; kill what is
        left. A worker still starting holds nobody: it is killed at once."""
        self.stopping = True
        for task in self._supervisors:
            task.cancel()
        for task in self._supervisors:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._supervisors.clear()
        for worker in self.workers:
            _ask_to_stop(worker)
        for worker in self.workers:
            try:
                await asyncio.wait_for(worker.process.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                await worker.process.wait()
        for worker in self.workers:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(worker.socket_path)
        with contextlib.suppress(OSError):
            os.rmdir(self._dir)

    def state(self, index: int) -> WorkerState:
        worker = self.workers[index]
        if worker.listening and worker.process.returncode is None:
            return WorkerState.UNRESPONSIVE if worker.missed else WorkerState.UP
        return WorkerState.STOPPED if self.stopping else WorkerState.RESTARTING

    def alive(self, index: int) -> bool:
        """The worker holds its rooms: up, even if its last probe failed (moving its rooms
        while their sessions may still live there would split them)."""
        holding = (WorkerState.UP, WorkerState.UNRESPONSIVE)
        return index < len(self.workers) and self.state(index) in holding

    def pid(self, index: int) -> int | None:
        """The worker's running process (possibly still starting); None between processes."""
        process = self.workers[index].process
        return process.pid if process.returncode is None else None

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers]


def _ask_to_stop(worker: WorkerProcess) -> None:
    """SIGTERM a worker that listens (it drains); SIGKILL one still starting."""
    if worker.process.returncode is not None:
        return
    if not worker.listening:
        logger.info("worker %d - pid %d still starting: killed", worker.index, worker.process.pid)
    with contextlib.suppress(ProcessLookupError):
        worker.process.send_signal(signal.SIGTERM if worker.listening else signal.SIGKILL)


def _release(process: asyncio.subprocess.Process) -> None:
    """Close the pipe to an exited worker, so its transport is finished and freed."""
    if process.stdin is not None:
        process.stdin.close()


def responsive(status: int, body: str) -> bool:
    """A worker's /healthz answer shows it alive: 200, or the 503 of one draining (it
    is shutting down on purpose and exits by itself within its drain timeout)."""
    if status == 200:
        return True
    if status != 503:
        return False
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("status") == "draining"


async def worker_get(socket_path: str, path: str, timeout: float) -> tuple[int, str]:
    """GET `path` from the worker listening at `socket_path`: (status, body). Raises
    aiohttp.ClientError (OSError included) or TimeoutError after `timeout` seconds."""
    connector = aiohttp.UnixConnector(path=socket_path)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(WORKER_URL + path, timeout=aiohttp.ClientTimeout(total=timeout)) as response,
    ):
        return response.status, await response.text()


async def _probe(socket_path: str, timeout: float) -> bool:
    """One liveness probe: the worker's /healthz answered, and showed it alive, in time."""
    try:
        return responsive(*await worker_get(socket_path, "/healthz", timeout))
    except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError):
        return False


async def _until_listening(worker: WorkerProcess) -> None:
    """Bounded by the caller: connect to the worker's socket until it accepts."""
    while True:
        if worker.process.returncode is not None:
            raise WorkerStartError(f"worker {worker.index} exited at start")
        try:
            _, writer = await asyncio.open_unix_connection(worker.socket_path)
        except OSError:
            await asyncio.sleep(0.05)  # not listening yet; nothing to wait on but time
            continue
        writer.close()
        await writer.wait_closed()
        return
