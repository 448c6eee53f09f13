"""However a member goes, nothing of theirs is left for the cycle collector.

A media worker freezes what survives each full collection (signaling/web/memory.py):
a frozen object that later dies in a reference cycle is never reclaimed. So every way a
member leaves, and a stage member's tracks ending, must free their objects (signaling,
aiohttp, ICE, DTLS, producers and consumers) by reference counting alone. Each test
lets a member arrive, freezes the process (as a full collection would, some time into
the member's stay), plays the departure, and then looks for what only a thawed
collector can reclaim: exactly what a frozen worker would leak.
"""

from __future__ import annotations

import asyncio
import gc
import types
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from signaling.client import StageClient
from signaling.roles import Role
from signaling.stage.model import ParticipantId
from tests.integration.helpers import member, poll_until
from tests.media import ToneTrack
from tests.raw_socket import RawSocket
from tests.server import RunningServer, running_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

GRACE = 0.5  # rooms.reconnect_grace: a dropped connection's member goes soon
# An arrival returns how to depart; the departure returns the client-side objects it
# used, kept until the garbage is counted, so only the server's objects (which no
# client references) can be found.
Departure = Callable[[], Awaitable[list[object]]]
Arrival = Callable[[RunningServer, StageClient], Awaitable[Departure]]


def _label(thing: object) -> str:
    if isinstance(thing, types.MethodType):
        return f"method {thing.__func__.__qualname__}"
    return f"{type(thing).__module__}.{type(thing).__qualname__}"


def _gone(server: RunningServer, participant_id: str) -> bool:
    room = server.registry.rooms.get("demo")
    return room is None or ParticipantId(participant_id) not in room.members


async def _leaked_by(departure: Departure) -> Counter[str]:
    """What a frozen worker would never reclaim of what `departure` let go: everything
    that exists now is frozen (as if it had survived a full collection), the departure
    runs, a full collection takes what is younger, and then the process is thawed and
    collected once more, saving what only that finds."""
    gc.collect()
    gc.freeze()
    try:
        clients = await departure()
        gc.collect()
    finally:
        gc.unfreeze()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return Counter(_label(thing) for thing in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        del clients


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    # The test freezes and thaws the process itself.
    async with running_server({"rooms.reconnect_grace": GRACE, "server.gc_freeze": False}) as s:
        yield s


@pytest.fixture
async def host(server: RunningServer) -> AsyncIterator[StageClient]:
    """On stage with a track for the whole test, so the room outlives each departure."""
    client = await StageClient.connect(
        server.ws_url, server.token("host", role=Role.HOST), entry="stage"
    )
    await client.publish([ToneTrack()])
    yield client
    await client.close()


async def _viewer(server: RunningServer) -> StageClient:
    viewer = await StageClient.connect(server.ws_url, server.token("viewer"))
    await viewer.wait_for(lambda: len(viewer.tracks) == 1)
    return viewer


async def _leaves(server: RunningServer, host: StageClient) -> Departure:
    viewer = await _viewer(server)

    async def depart() -> list[object]:
        await viewer.leave()
        await poll_until(lambda: _gone(server, viewer.participant_id))
        return [viewer]

    return depart


async def _drops(server: RunningServer, host: StageClient) -> Departure:
    viewer = await _viewer(server)

    async def depart() -> list[object]:
        await viewer.close()  # no `leave`: the member waits out the reconnect grace
        await poll_until(lambda: _gone(server, viewer.participant_id))
        return [viewer]

    return depart


async def _is_kicked(server: RunningServer, host: StageClient) -> Departure:
    viewer = await _viewer(server)

    async def depart() -> list[object]:
        await host.command("kick", target=viewer.participant_id)
        await poll_until(lambda: _gone(server, viewer.participant_id))
        await viewer.close()
        return [viewer]

    return depart


async def _goes_back_to_the_audience(server: RunningServer, host: StageClient) -> Departure:
    speaker = await StageClient.connect(server.ws_url, server.token("speaker"), entry="stage")

    def producers() -> int:
        transport = member(server, speaker.participant_id).send_transport
        return 0 if transport is None else len(transport.producers)

    await speaker.publish([ToneTrack()])
    await poll_until(lambda: producers() == 1)
    await host.wait_for(lambda: len(host.tracks) == 1)

    async def depart() -> list[object]:
        await speaker.command("leave_stage")  # the tracks end: producers and consumers go
        await poll_until(lambda: producers() == 0)
        await speaker.leave()
        await poll_until(lambda: _gone(server, speaker.participant_id))
        return [speaker]

    return depart


async def _signaling_only_member_closes(server: RunningServer, host: StageClient) -> Departure:
    raw = await RawSocket.open(server)
    joined = await raw.request({"type": "join", "id": "j", "token": server.token("raw")})

    async def depart() -> list[object]:
        await raw.close()
        await poll_until(lambda: _gone(server, joined["participant_id"]))
        return [raw]

    return depart


@pytest.mark.parametrize(
    "arrival",
    [_leaves, _drops, _is_kicked, _goes_back_to_the_audience, _signaling_only_member_closes],
)
async def test_a_departure_leaves_no_cyclic_garbage(
    server: RunningServer, host: StageClient, arrival: Arrival
) -> None:
    departure = await arrival(server, host)

    found = await _leaked_by(departure)

    assert not found, f"left for the cycle collector: {found.most_common(20)}"


async def test_a_room_ended_for_everyone_leaves_no_cyclic_garbage(server: RunningServer) -> None:
    host = await StageClient.connect(
        server.ws_url, server.token("host", role=Role.HOST), entry="stage"
    )
    await host.publish([ToneTrack()])
    viewer = await _viewer(server)

    async def end_the_room() -> list[object]:
        await host.command("end_room")
        await poll_until(lambda: "demo" not in server.registry.rooms)
        await asyncio.gather(host.close(), viewer.close())
        return [host, viewer]

    found = await _leaked_by(end_the_room)

    assert not found, f"left for the cycle collector: {found.most_common(20)}"
