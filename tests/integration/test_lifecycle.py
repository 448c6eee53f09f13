"""Graceful shutdown: draining in process, then the real command stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from signaling.auth import issue_token
from signaling.client import StageClient
from signaling.roles import Role
from signaling.settings import DEV_SECRET
from signaling.web.app import WORKER
from signaling.web.lifecycle import drain
from tests.integration.helpers import stage_and_viewers
from tests.media import PatternTrack, ToneTrack
from tests.server import RunningServer

ROOT = Path(__file__).resolve().parents[2]
DRAIN_TIMEOUT = 5.0
GOING_AWAY = 1001


async def health(server: RunningServer) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.http_url}/healthz") as response,
    ):
        return response.status, await response.json()


async def test_draining_says_goodbye_closes_media_and_reports_unavailable(
    server: RunningServer,
) -> None:
    assert (await health(server))[0] == 200
    async with stage_and_viewers(server, [ToneTrack(), PatternTrack()]) as (publisher, viewers):
        worker = server.app[WORKER]
        assert worker.routers and server.registry.rooms

        drained = await drain(server.app, DRAIN_TIMEOUT)

        assert drained
        for client in (publisher, *viewers):
            bye = await client.wait_event(lambda e: e["type"] == "bye")
            assert bye["reason"] == "shutting_down"
            await client.wait_for(client.closed.is_set)
            assert client.close_code == GOING_AWAY
        assert server.registry.rooms == {}
        assert worker.closed and worker.routers == {}
        # Still listening while the process winds down: load balancers see 503.
        status, body = await health(server)
        assert (status, body["status"]) == (503, "draining")
        # Anyone connecting now is sent away at once rather than admitted.
        with pytest.raises(ConnectionError):
            await StageClient.connect(server.ws_url, server.token("late"))


async def test_health_is_ok_while_accepting(server: RunningServer) -> None:
    status, body = await health(server)
    assert (status, body["status"]) == (200, "ok")


# -- the real command ----------------------------------------------------------------------


class ServerProcess:
    """`python -m signaling serve` with JSON logs; stderr lines are parsed as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.records: list[dict[str, Any]] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            with contextlib.suppress(ValueError):  # a non-JSON line fails the test below
                self.records.append(json.loads(line))
            async with self._changed:
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def record(self, pattern: str, timeout: float = 20.0) -> dict[str, Any]:
        """The first log record whose message matches `pattern` (waits for it, bounded)."""
        regex = re.compile(pattern)

        def found() -> dict[str, Any] | None:
            return next((r for r in self.records if regex.search(str(r.get("message")))), None)

        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: found() is not None or self._reader.done())
        record = found()
        assert record is not None, f"no log line matches {pattern!r}:\n" + "\n".join(self.lines)
        return record

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        await self._reader


async def start_server() -> ServerProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGE_SFU_")}
    env.update(
        STAGE_SFU_SERVER_LOG_FORMAT="json",
        STAGE_SFU_SERVER_DRAIN_TIMEOUT=str(DRAIN_TIMEOUT),
        PYTHONUNBUFFERED="1",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "signaling",
        "serve",
        "--port",
        "0",
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    return ServerProcess(process)


async def test_sigterm_sends_clients_away_closes_media_and_exits_zero() -> None:
    server = await start_server()
    client: StageClient | None = None
    try:
        listening = await server.record(r"listening on http://127\.0\.0\.1:\d+")
        port = int(re.search(r":(\d+) ", listening["message"]).group(1))  # type: ignore[union-attr]
        token = issue_token(
            DEV_SECRET, room="lobby", identity="alice", name="Alice", role=Role.HOST,
            ttl=600, now=time.time(),
        )  # fmt: skip
        client = await StageClient.connect(f"ws://127.0.0.1:{port}/ws", token, entry="stage")
        await client.publish([ToneTrack(), PatternTrack()])
        joined = await server.record(r"- joined as")

        server.process.send_signal(signal.SIGTERM)

        bye = await client.wait_event(lambda e: e["type"] == "bye")
        assert bye["reason"] == "shutting_down"
        await client.wait_for(client.closed.is_set)
        assert client.close_code == GOING_AWAY
        # The server enforces the drain time itself; the margin only absorbs process exit.
        async with asyncio.timeout(DRAIN_TIMEOUT + 10):
            code = await server.process.wait()
        assert code == 0
        await server.record(r"^- drained")
        await server.record(r"^stopped$")
    finally:
        if client is not None:
            await client.close()
        await server.stop()

    # Structured logs: every line is one JSON object; lines about people carry their ids.
    assert server.lines and len(server.records) == len(server.lines), "\n".join(
        line for line in server.lines if not line.startswith("{")
    )
    for record in server.records:
        assert {"time", "level", "logger", "message"} <= record.keys()
    assert joined["room"] == "lobby"
    assert joined["participant"] == client.participant_id
    assert joined["logger"] == "signaling.room"
    about_alice = [r for r in server.records if client.participant_id in r["message"]]
    assert about_alice and all(
        (r.get("room"), r.get("participant")) == ("lobby", client.participant_id)
        for r in about_alice
    )
