"""A room's work per event does not grow with its audience (issue: big rooms).

Measured as the number of Python function calls the signaling layer makes for one
event, in a room of 40 and of 320 viewers: a count, not a time, so the machine's
load does not matter. A step that scanned every member would cost eight times as
much in the larger room; the bound allows half again as much, for hash-map depth.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp
import pytest

import signaling
from signaling import room as room_module
from signaling.roles import Role
from tests.integration.helpers import poll_until
from tests.server import RunningServer, running_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SMALL, LARGE = 40, 320
SIGNALING = str(Path(signaling.__file__).parent)
WAIT = 15.0


class _Member:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.participant_id = ""
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.frames.put_nowait(json.loads(message.data))

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        await self.ws.send_json(message)
        async with asyncio.timeout(WAIT):
            while True:
                frame = await self.frames.get()
                if frame.get("id") == message["id"]:
                    return frame


class _Room:
    def __init__(self, server: RunningServer, http: aiohttp.ClientSession) -> None:
        self.server = server
        self.http = http
        self.members: list[_Member] = []

    async def join(self, name: str, role: Role = Role.PARTICIPANT) -> _Member:
        ws = await self.http.ws_connect(self.server.ws_url, max_msg_size=1 << 24)
        member = _Member(ws)
        self.members.append(member)
        joined = await member.request({
            "type": "join", "id": "j", "token": self.server.token(name, role=role),
            "entry": "viewer",
        })  # fmt: skip
        assert joined["type"] == "joined", joined
        member.participant_id = joined["participant_id"]
        return member

    async def settled(self) -> None:
        """Until the worker's postman has nothing left to deliver."""
        postman = self.server.registry.postman
        await poll_until(lambda: not len(postman), timeout=WAIT, interval=0.01)


@asynccontextmanager
async def _room(viewers: int) -> AsyncIterator[tuple[_Room, _Member]]:
    async with (
        running_server({"rooms.command_rate": 1000, "rooms.command_burst": 1000}) as server,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
    ):
        room = _Room(server, http)
        host = await room.join("host", Role.HOST)
        for n in range(viewers):
            await room.join(f"viewer-{n}")
        await room.settled()
        try:
            yield room, host
        finally:
            for member in room.members:
                await member.ws.close()
                member.reader.cancel()


async def _calls(step: Callable[[], Awaitable[None]]) -> int:
    """Python calls made in signaling/ while `step` runs (and its messages go out)."""
    count = 0

    def profile(frame: FrameType, event: str, _: object) -> None:
        nonlocal count
        if event == "call" and frame.f_code.co_filename.startswith(SIGNALING):
            count += 1

    sys.setprofile(profile)
    try:
        await step()
    finally:
        sys.setprofile(None)
    return count


async def _cost(viewers: int, event: str) -> int:
    async with _room(viewers) as (room, host):
        target = room.members[-1]

        async def hands() -> None:
            for n in range(3):
                for kind in ("raise_hand", "lower_hand"):
                    answer = await target.request({"type": kind, "id": f"{kind}{n}"})
                    assert answer["type"] == "ack", answer
            await room.settled()

        async def join_one() -> None:
            await room.join("latecomer")
            await room.settled()

        async def vote() -> None:
            for n, member in enumerate(room.members[1:6]):
                answer = await member.request({"type": "vote", "id": f"v{n}",
                                               "poll_id": poll_id, "option": n % 2})  # fmt: skip
                assert answer["type"] == "ack", answer
            await room.settled()

        steps = {"hands": hands, "join": join_one, "vote": vote}
        poll_id = ""
        if event == "vote":
            created = await host.request({"type": "create_poll", "id": "p",
                                          "question": "Lunch?", "options": ["a", "b"]})  # fmt: skip
            assert created["type"] == "ack", created
            (poll_id,) = room.server.registry.rooms["demo"].state.polls
            await room.settled()
        return await _calls(steps[event])


@pytest.fixture(autouse=True)
def _no_room_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    # The half-second tick (invitation expiry, grace periods, viewers' counts) would
    # land in some measurements and not others; its own cost is rate-limited.
    monkeypatch.setattr(room_module, "TICK_INTERVAL", 3600.0)


# Not measured here: what is meant to cost the audience's size (a broadcast to
# everyone, the full participant list sent to someone entering the full view).
@pytest.mark.parametrize("event", ["hands", "join", "vote"])
async def test_the_cost_of_an_event_does_not_grow_with_the_audience(event: str) -> None:
    small = await _cost(SMALL, event)
    large = await _cost(LARGE, event)
    assert large <= small * 1.5, f"{event}: {small} calls at {SMALL} viewers, {large} at {LARGE}"
