"""A room spread over two media workers, seen from Chromium: a browser whose media
lives on the other worker decodes the stage like one on the room's own worker."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from signaling.auth import issue_token
from signaling.roles import Role
from signaling.settings import DEV_SECRET
from tests.e2e.conftest import Join, Participant
from tests.e2e.room_page import wait_for_live_video
from tests.integration.front import front, worker_samples

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@dataclass(frozen=True)
class FrontServer:
    """The parts of RunningServer the page fixtures use, for a multi-worker server."""

    port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, identity: str, *, room: str = "demo", role: Role = Role.PARTICIPANT) -> str:
        return issue_token(DEV_SECRET, room=room, identity=identity, name=identity.title(),
                           role=role, ttl=600, now=time.time())  # fmt: skip


@pytest_asyncio.fixture(loop_scope="module")
async def server() -> AsyncIterator[FrontServer]:
    # Viewers alternate between the workers from the first one.
    async with front(2, {"STAGE_SFU_ROOMS_SPREAD_AFTER": "0"}) as (port, _):
        yield FrontServer(port)


@pytest.mark.timeout(120)
async def test_a_browser_on_the_other_worker_decodes_the_stage(
    join: Join, server: FrontServer
) -> None:
    host = await join("hana", "stage", role=Role.HOST)
    far: Participant = await join("vera", "viewer")
    near: Participant = await join("nico", "viewer")
    host_id = await host.participant_id()
    for viewer in (far, near):
        await wait_for_live_video(viewer, host_id)
    transports = await worker_samples(server.port, "stage_sfu_transports")
    # The first viewer always goes to the other worker (home already holds the host's
    # connection); where the second goes depends on whether the host published by then.
    assert sum(transports.values()) == 4 and min(transports.values()) >= 1
    await far.screenshot("spread-room-far-viewer.png")
