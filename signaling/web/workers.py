"""Media worker processes: one per core, each a complete server (rooms, media,
signaling) listening on its own Unix socket, with its own slice of the UDP
port range. The front process (signaling/web/front.py) places rooms on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import msgspec

from ..settings import Settings

logger = logging.getLogger(__name__)

SETTINGS_ENV = "STAGE_SFU_WORKER_SETTINGS"
START_TIMEOUT = 20.0


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


@dataclass
class WorkerProcess:
    index: int
    socket_path: str
    process: asyncio.subprocess.Process


class WorkerPool:
    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self.workers: list[WorkerProcess] = []
        self._dir = tempfile.mkdtemp(prefix="stage-sfu-")

    async def start(self) -> None:
        encoded = msgspec.json.encode(self.settings).decode()
        paths = [str(Path(self._dir) / f"worker-{index}.sock") for index in range(self.count)]
        for index, path in enumerate(paths):
            process = await asyncio.create_subprocess_exec(
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
                ",".join(paths),
                env={**os.environ, SETTINGS_ENV: encoded},
                stdin=asyncio.subprocess.PIPE,  # closed by us or by our death: the worker exits
            )
            self.workers.append(WorkerProcess(index=index, socket_path=path, process=process))
        async with asyncio.timeout(START_TIMEOUT):
            for worker in self.workers:
                await _until_listening(worker)
        logger.info("%d media workers started: pids %s", self.count,
                    [w.process.pid for w in self.workers])  # fmt: skip

    async def stop(self, timeout: float) -> None:
        """SIGTERM every worker (each drains), then wait; kill what is left."""
        for worker in self.workers:
            if worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signal.SIGTERM)
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

    def alive(self, index: int) -> bool:
        return index < len(self.workers) and self.workers[index].process.returncode is None

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers]


async def _until_listening(worker: WorkerProcess) -> None:
    """Bounded by the caller: connect to the worker's socket until it accepts."""
    while True:
        if worker.process.returncode is not None:
            raise RuntimeError(f"worker {worker.index} exited at start")
        try:
            _, writer = await asyncio.open_unix_connection(worker.socket_path)
        except OSError:
            await asyncio.sleep(0.05)  # not listening yet; nothing to wait on but time
            continue
        writer.close()
        await writer.wait_closed()
        return
