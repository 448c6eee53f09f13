"""Shared steps for the stage tests: a room of real clients on a real server,
refusals that must leave the room untouched, and the server-side view of people
and media (what the SFU really forwards, not what clients are told)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from sfu.consumer import Consumer
from sfu.producer import Producer
from signaling.client import ServerError, StageClient
from signaling.members import Member
from signaling.roles import Role
from signaling.room import Room
from signaling.stage.model import ParticipantId, Person, RoomState
from tests.integration.helpers import member, poll_until
from tests.server import RunningServer, running_server

ROOM = "demo"
WAIT = 10.0


class Cast:
    """The clients of one test, all closed when it ends (pass or fail)."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.clients: list[StageClient] = []

    async def join(
        self, identity: str, *, role: Role = Role.PARTICIPANT, **options: Any
    ) -> StageClient:
        """Join the room as `identity` (options as for StageClient.connect)."""
        token = self.server.token(identity, role=role)
        client = await StageClient.connect(self.server.ws_url, token, **options)
        self.clients.append(client)
        return client

    async def resume(self, resume_token: str) -> StageClient:
        client = await StageClient.resume(self.server.ws_url, ROOM, resume_token)
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.close()


@asynccontextmanager
async def stage_room(
    overrides: Mapping[str, object] | None = None,
) -> AsyncIterator[tuple[RunningServer, Cast]]:
    """A server with these room settings, and a cast that is cleaned up afterwards."""
    async with running_server(overrides) as server:
        cast = Cast(server)
        try:
            yield server, cast
        finally:
            await cast.close()


# -- the server's view ----------------------------------------------------------------------
def room(server: RunningServer) -> Room:
    return server.registry.rooms[ROOM]


def state(server: RunningServer) -> RoomState:
    return room(server).state


def person(server: RunningServer, client: StageClient | str) -> Person:
    pid = client if isinstance(client, str) else client.participant_id
    return state(server).people[ParticipantId(pid)]


def producer(server: RunningServer, client: StageClient, source: str) -> Producer:
    """The client's producer for one source (microphone, camera, screen)."""
    found = member(server, client.participant_id)
    return next(
        found.producers[pid]
        for pid, src in found.sources.items()
        if src == source and pid in found.producers
    )


def sources(server: RunningServer, client: StageClient) -> set[str]:
    """The sources the client currently publishes (open producers only)."""
    found = member(server, client.participant_id)
    return {
        str(src)
        for pid, src in found.sources.items()
        if pid in found.producers and not found.producers[pid].closed
    }


def consumer(server: RunningServer, viewer: StageClient, source: Producer) -> Consumer | None:
    found = member(server, viewer.participant_id).consumers.get(source.id)
    assert found is None or isinstance(found, Consumer), "a consumer on another worker"
    return found


def forwarding(server: RunningServer, viewer: StageClient, source: Producer) -> bool:
    """Whether the SFU is sending this producer's packets to the viewer right now."""
    found = consumer(server, viewer, source)
    return found is not None and not found.closed and found.active


async def until_forwarding(server: RunningServer, viewer: StageClient, source: Producer) -> None:
    """Wait until the viewer's subscription to this producer is negotiated and flowing."""
    await poll_until(lambda: forwarding(server, viewer, source), timeout=WAIT)


def members(server: RunningServer) -> Mapping[ParticipantId, Member]:
    return room(server).members


# -- what clients see -------------------------------------------------------------------------
def of_type(client: StageClient, kind: str) -> list[dict[str, Any]]:
    return [e for e in client.events if e["type"] == kind]


async def sees(client: StageClient, subject: StageClient, **fields: Any) -> dict[str, Any]:
    """Wait until `client`'s record of `subject` has these field values; return it."""

    def matches() -> bool:
        record = client.participants.get(subject.participant_id)
        return record is not None and all(record.get(k) == v for k, v in fields.items())

    await client.wait_for(matches, timeout=WAIT)
    return client.participants[subject.participant_id]


async def becomes(client: StageClient, **fields: Any) -> dict[str, Any]:
    """Wait until the client's own record has these field values."""
    await client.wait_for(lambda: all(client.you.get(k) == v for k, v in fields.items()), WAIT)
    return client.you


async def synced(*clients: StageClient) -> None:
    """A round trip on each connection: whatever the server queued for it earlier
    (during a command another client already has the answer to) has arrived."""
    for client in clients:
        await client.request({"type": "ping"})


async def refused(call: Awaitable[Any], code: str) -> ServerError:
    with pytest.raises(ServerError) as info:
        await call
    assert info.value.code == code, info.value
    return info.value


async def refused_unchanged(
    server: RunningServer, call: Awaitable[Any], code: str = "forbidden"
) -> ServerError:
    """The command is refused with `code` and the room's stage state is as it was."""
    before = state(server)
    error = await refused(call, code)
    assert state(server) == before
    return error


async def revision_seen(moderator: StageClient, target: StageClient, status: str) -> int:
    """The target's stage revision as the moderator's list shows it once in `status`."""
    record = await sees(moderator, target, status=status)
    return int(record["revision"])


def capture_on_delivery(
    server: RunningServer,
    client: StageClient,
    kind: type[Any],
    look: Callable[[], Any],
) -> list[Any]:
    """Call `look()` at the moment the server hands a message of type `kind` to this
    client's connection, and collect what it returned (what was done before telling)."""
    found = member(server, client.participant_id)
    original = found.deliver
    assert original is not None
    seen: list[Any] = []

    def deliver(message: Any, frame: str | None = None) -> None:
        if isinstance(message, kind):
            seen.append(look())
        original(message, frame)

    found.deliver = deliver
    return seen
