"""A server with several media workers, run as its own process (the front)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from signaling.auth import issue_token
from signaling.roles import Role
from signaling.settings import DEV_SECRET


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def front(
    workers: int, env: dict[str, str] | None = None
) -> AsyncIterator[tuple[int, asyncio.subprocess.Process]]:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling", "serve", "--port", str(port),
        env={**os.environ, "STAGE_SFU_SERVER_WORKERS": str(workers), **(env or {})},
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(30):
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)  # the server is starting; nothing to wait on
        yield port, process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


def token(room: str, identity: str) -> str:
    return issue_token(DEV_SECRET, room=room, identity=identity, name=identity,
                       role=Role.PARTICIPANT, ttl=600, now=time.time())  # fmt: skip


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def worker_samples(port: int, name: str) -> Samples:
    """Samples named `name` from the front's /metrics: (worker, other labels) -> value."""
    url = f"http://127.0.0.1:{port}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        text = await response.text()
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                labels = dict(sample.labels)
                worker = labels.pop("worker")
                found[(worker, tuple(sorted(labels.items())))] = sample.value
    return found
