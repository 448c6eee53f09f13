"""After the fuzzing: can a normal client still join and receive media?

A fresh publisher on stage sends audio and video with the project's client; a fresh
viewer must receive both tracks and decode frames of each within a bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from signaling.client import StageClient
from signaling.roles import Role

from . import accounts, tracks

TIMEOUT = 25.0
FRAMES = 3  # per track


@dataclass(frozen=True, slots=True)
class HealthResult:
    passed: bool
    detail: str
    seconds: float


async def check(ws_url: str, room: str) -> HealthResult:
    started = time.monotonic()
    clients: list[StageClient] = []
    try:
        async with asyncio.timeout(TIMEOUT):
            publisher = await StageClient.connect(
                ws_url, accounts.token(room, "health-publisher", Role.HOST), entry="stage"
            )
            clients.append(publisher)
            viewer = await StageClient.connect(
                ws_url, accounts.token(room, "health-viewer", Role.PARTICIPANT)
            )
            clients.append(viewer)
            await publisher.publish(tracks.audio_and_video())
            await viewer.wait_for(
                lambda: {t.track.kind for t in viewer.tracks} >= {"audio", "video"}, TIMEOUT
            )
            for remote in viewer.tracks:
                for _ in range(FRAMES):
                    await remote.track.recv()
        detail = f"joined, published, received {FRAMES} audio and {FRAMES} video frames"
        return HealthResult(True, detail, time.monotonic() - started)
    except (Exception, TimeoutError) as exc:
        return HealthResult(False, f"failed: {exc!r}", time.monotonic() - started)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.leave(), 10)
