"""The server under test: `python -m signaling serve` as a subprocess on loopback.

Started and stopped by the fuzzer by PID (SIGTERM, then SIGKILL after a bounded wait);
its stdout and stderr go to a log file that `ServerLog` reads for tracebacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import IO, Any

import aiohttp

from .memory import tree_rss_kib

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 40.0
STOP_TIMEOUT = 20.0  # the server drains for up to 8 s by default


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """One stage-sfu server with `workers` media workers (1 = a single process)."""

    def __init__(self, *, workers: int, log_path: Path, log_level: str = "warning") -> None:
        self.workers = workers
        self.port = free_tcp_port()
        self.log_path = log_path
        self._log_level = log_level
        self._log: IO[bytes] | None = None
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        env["STAGE_SFU_SERVER_WORKERS"] = str(self.workers)
        env["STAGE_SFU_SERVER_LOG_LEVEL"] = self._log_level
        env["STAGE_SFU_SERVER_HOST"] = "127.0.0.1"
        return env

    async def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "signaling",
            "serve",
            "--port",
            str(self.port),
            cwd=REPO,
            env=self._env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        deadline = time.monotonic() + START_TIMEOUT
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline and self.alive:
                if (await self.health(http))[0] == 200:
                    return
                await asyncio.sleep(0.1)  # the server is starting; nothing announces it
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the server did not become healthy; log tail:\n{tail}")

    async def health(self, http: aiohttp.ClientSession) -> tuple[int, dict[str, Any]]:
        """GET /healthz: (status, body); (0, {}) when it does not answer."""
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, ValueError):
            async with http.get(
                f"{self.http_url}/healthz", timeout=aiohttp.ClientTimeout(total=5)
            ) as response:
                body: dict[str, Any] = await response.json(content_type=None)
                return response.status, body
        return 0, {}

    def rss_kib(self) -> dict[int, int]:
        """pid -> VmRSS of the server and its worker processes."""
        return tree_rss_kib(self.pid) if self.alive else {}

    async def stop(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
