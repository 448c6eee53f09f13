"""The processes a run starts: the server under test and the bot groups.

Every process here is started by the runner and stopped by it, by PID: politely first
(SIGTERM, or a `stop` command for bots), then SIGKILL after a bounded wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 15.0  # the SFU drains for up to 8 s by default
_COMMAND_TIMEOUT = 10.0


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _toml_value(text: str) -> str:
    if text in ("true", "false") or text.lstrip("-").replace(".", "", 1).isdigit():
        return text
    if text.startswith(("[", '"')):
        return text
    return json.dumps(text)


def sfu_config(
    *,
    port_min: int,
    port_max: int,
    stage_capacity: int,
    log_level: str,
    extra: Sequence[str] = (),
) -> str:
    """A temporary TOML for the SFU: loopback, a wide UDP range, a big enough stage.

    `extra` holds "section.key=value" settings (e.g. "media.egress_buffer_limit=1048576")
    that are added to, or replace, the ones here.
    """
    sections: dict[str, dict[str, str]] = {
        "server": {"host": '"127.0.0.1"', "log_level": json.dumps(log_level)},
        "media": {
            "ice_addresses": '["127.0.0.1"]',
            "udp_port_min": str(port_min),
            "udp_port_max": str(port_max),
        },
        "rooms": {"stage_access": '"everyone"', "stage_capacity": str(stage_capacity)},
    }
    for item in extra:
        name, sep, value = item.partition("=")
        section, dot, key = name.strip().partition(".")
        if not (sep and dot and section and key):
            raise ValueError(f"SFU option {item!r} is not section.key=value")
        sections.setdefault(section, {})[key] = _toml_value(value.strip())
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {value}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


class ServerProcess:
    """The server under test: `python -m signaling serve` ("sfu"), the same with the
    pure-Python fan-out ("sfu-python"), or the naive relay ("relay")."""

    def __init__(self, target: str, *, workdir: Path, config: str) -> None:
        self.target = target
        self.port = free_tcp_port()
        self.workdir = workdir
        self.log_path = workdir / f"{target}.log"
        self._config = config
        self.process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def start(self, timeout: float = 30.0) -> None:
        if self.target in ("sfu", "sfu-python"):
            config_path = self.workdir / "sfu.toml"
            config_path.write_text(self._config)
            command = [
                "-m",
                "signaling",
                "serve",
                "--config",
                str(config_path),
                "--port",
                str(self.port),
            ]
        else:
            command = ["-m", "benchmarks.naive_relay", "--port", str(self.port)]
        self._log = self.log_path.open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            *command,
            cwd=REPO,
            env=_env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.process.returncode is not None:
                    break
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(f"http://127.0.0.1:{self.port}/healthz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.2)
        tail = self.log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.target} did not become healthy; log tail:\n{tail}")

    async def stop(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._log is not None:
            self._log.close()


class BotGroup:
    """One bot process (`python -m benchmarks.bots`, or another `module` answering the
    same `stats` and `stop` commands), driven over stdin/stdout."""

    def __init__(
        self,
        name: str,
        config: dict[str, Any],
        *,
        workdir: Path,
        module: str = "benchmarks.bots",
    ) -> None:
        self.name = name
        self.config = config
        self.module = module  # the bot program: benchmarks.bots, or one driven the same way
        self.log_path = workdir / f"bots-{name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.last: dict[str, Any] = {}
        self._log: IO[bytes] | None = None
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            json.dumps(self.config),
            cwd=REPO,
            env=_env(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            limit=1 << 24,
        )

    async def _command(self, command: str) -> dict[str, Any] | None:
        process = self.process
        if process is None or process.stdin is None or process.stdout is None:
            return None
        async with self._lock:
            if process.returncode is not None:
                return None
            try:
                process.stdin.write(json.dumps({"cmd": command}).encode() + b"\n")
                await process.stdin.drain()
                line = await asyncio.wait_for(process.stdout.readline(), _COMMAND_TIMEOUT)
            except (TimeoutError, ConnectionError, BrokenPipeError):
                return None
        if not line:
            return None
        reply: dict[str, Any] = json.loads(line)
        return reply

    async def stats(self) -> dict[str, Any]:
        """Cumulative counters (the last known ones if the process is gone)."""
        reply = await self._command("stats")
        if reply is None:
            return {**self.last, "latency_us": [], "app_latency_us": [], "join_ms": []}
        self.last = reply
        return reply

    async def stop(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            await self._command("stop")
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._log is not None:
            self._log.close()

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-1500:]
        except FileNotFoundError:
            return ""
