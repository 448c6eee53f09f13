"""Ending a room for everyone, and a room whose host leaves: over the real WebSocket
protocol, with one worker and with the default deployment (a front relaying to two
workers), plus what the media plane does (in-process only, where it can be seen)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest

from signaling import protocol as wire
from signaling.roles import Role
from signaling.settings import load_settings
from tests.integration.front import front
from tests.integration.helpers import member, poll_until
from tests.integration.stage_support import (
    capture_on_delivery,
    producer,
    room,
    stage_room,
    until_forwarding,
)
from tests.media import ToneTrack
from tests.raw_socket import WAIT, RawSocket, open_rooms
from tests.server import Endpoint, FrontServer, running_server

GRACE = 1.0  # rooms.reconnect_grace in the tests that lose a connection
TIMEOUT = 1.0  # rooms.empty_host_timeout where a room ends by itself


class Room:
    """Raw connections joined to one room; all closed when the test ends."""

    def __init__(self, server: Endpoint, stack: AsyncExitStack) -> None:
        self.server = server
        self.stack = stack

    async def join(
        self, identity: str, role: Role = Role.PARTICIPANT, *, entry: str = "viewer"
    ) -> tuple[RawSocket, dict[str, Any]]:
        raw = await RawSocket.open(self.server)
        self.stack.push_async_callback(raw.close)
        token = self.server.token(identity, role=role)
        joined = await raw.request({"type": "join", "id": "j", "token": token, "entry": entry})
        assert joined["type"] == "joined", joined
        raw.events.clear()
        return raw, joined


async def synced(*sockets: RawSocket) -> None:
    """A round trip on each: what the server sent before has arrived; forget it."""
    for raw in sockets:
        await raw.request({"type": "ping", "id": "sync"})
        raw.events.clear()


async def until_closed(raw: RawSocket) -> int:
    """Read until the server's close frame; its code (1006 if the socket just dropped)."""
    while True:
        message = await raw.ws.receive(timeout=WAIT)
        if message.type == aiohttp.WSMsgType.CLOSE:
            return int(message.data)
        if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return 1006
        raw.events.append(json.loads(message.data))


async def next_of(raw: RawSocket, kind: str) -> dict[str, Any]:
    """The next frame of this type (others are kept in `events`)."""
    while True:
        data = await raw.receive()
        if data["type"] == kind:
            return data
        raw.events.append(data)


def news(raw: RawSocket) -> list[dict[str, Any]]:
    """What a connection was told, but the viewers' periodic counts."""
    return [e for e in raw.events if e["type"] != "counts"]


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
async def short_server(request: pytest.FixtureRequest) -> AsyncIterator[Endpoint]:
    """`any_server` with a short reconnect grace and rooms that end one second after
    their last host and moderator left."""
    settings = {"rooms.reconnect_grace": GRACE, "rooms.empty_host_timeout": TIMEOUT}
    if request.param == 1:
        async with running_server(settings) as running:
            yield running
        return
    env = {"STAGE_SFU_ROOMS_RECONNECT_GRACE": str(GRACE),
           "STAGE_SFU_ROOMS_EMPTY_HOST_TIMEOUT": str(TIMEOUT)}  # fmt: skip
    async with front(request.param, env=env) as (port, _):
        loaded = load_settings(overrides={"server.port": port}, env={})
        yield FrontServer(settings=loaded, port=port, workers=request.param)


# -- ending the room for everyone -------------------------------------------------------------
async def test_a_host_ends_the_room_and_every_connection_gets_bye_and_a_normal_close(
    any_server: Endpoint,
) -> None:
    async with AsyncExitStack() as stack:
        people = Room(any_server, stack)
        host, joined = await people.join("hana", Role.HOST, entry="stage")
        mod, _ = await people.join("mo", Role.MODERATOR)
        speaker, _ = await people.join("sam", entry="stage")
        viewer, _ = await people.join("vera")
        _, rowdy_joined = await people.join("rex")
        kick = {"type": "kick", "id": "k", "target": rowdy_joined["participant_id"]}
        assert (await host.request(kick))["type"] == "ack"
        await synced(host, mod, speaker, viewer)

        ack = await host.request({"type": "end_room", "id": "end"})

        assert ack == {"type": "ack", "id": "end"}
        bye = {"type": "bye", "reason": "room_ended", "by": joined["participant_id"],
               "by_name": "Hana"}  # fmt: skip
        for raw in (host, mod, speaker, viewer):
            assert await until_closed(raw) == 1000
            assert news(raw) == [bye]  # no participant_left for each of the others


async def test_a_connection_still_sending_when_the_room_ends_gets_its_bye_and_close(
    any_server: Endpoint,
) -> None:
    """The server must not close a socket that still receives: the reset would destroy
    the `bye` and the close frame waiting, unread, on the client's side."""

    async def keep_sending(raw: RawSocket, midway: asyncio.Event) -> None:
        # Sends without reading (the replies pile up unread), across the room's end.
        with contextlib.suppress(ConnectionError, RuntimeError, aiohttp.ClientError):
            for n in range(200):
                await raw.send(json.dumps({"type": "ping", "id": f"p{n}"}))
                if n == 50:
                    midway.set()
                await asyncio.sleep(0.0005)  # a pace the server keeps up with

    for attempt in range(10):
        room = f"still-sending-{attempt}"
        async with AsyncExitStack() as stack:
            sockets = []
            for identity, role in (("hana", Role.HOST), ("vera", Role.PARTICIPANT)):
                raw = await RawSocket.open(any_server)
                stack.push_async_callback(raw.close)
                token = any_server.token(identity, role=role, room=room)
                joined = await raw.request({"type": "join", "id": "j", "token": token})
                assert joined["type"] == "joined"
                sockets.append(raw)
            host, viewer = sockets
            midway = asyncio.Event()
            sending = asyncio.ensure_future(keep_sending(viewer, midway))
            await asyncio.wait_for(midway.wait(), WAIT)

            await host.send(json.dumps({"type": "end_room", "id": "end"}))
            await asyncio.wait_for(sending, WAIT)

            assert await until_closed(viewer) == 1000
            byes = [e.get("reason") for e in viewer.events if e["type"] == "bye"]
            assert byes == ["room_ended"]


async def test_after_the_end_a_join_opens_a_fresh_room(any_server: Endpoint) -> None:
    async with AsyncExitStack() as stack:
        people = Room(any_server, stack)
        host, _ = await people.join("hana", Role.HOST, entry="stage")
        _, rowdy_joined = await people.join("rex")
        kick = {"type": "kick", "id": "k", "target": rowdy_joined["participant_id"]}
        assert (await host.request(kick))["type"] == "ack"
        assert (await host.request({"type": "set_stage_access", "id": "s",
                                    "access": "invite_only"}))["type"] == "ack"  # fmt: skip
        await host.request({"type": "end_room", "id": "end"})
        assert await until_closed(host) == 1000

        async with asyncio.timeout(WAIT):  # what /healthz reports, bounded
            while await open_rooms(any_server) != 0:  # noqa: ASYNC110 - nothing announces it
                await asyncio.sleep(0.05)
        again, joined = await people.join("rex")  # the ban went with the room

        assert [p["identity"] for p in joined["participants"]] == ["rex"]
        assert joined["policy"]["stage_access"] == "everyone"  # the settings' default
        assert (await again.request({"type": "ping", "id": "p"}))["type"] == "pong"


@pytest.mark.parametrize("role", [Role.MODERATOR, Role.PARTICIPANT])
async def test_only_a_host_may_end_the_room_and_a_refusal_changes_nothing(
    any_server: Endpoint, role: Role
) -> None:
    async with AsyncExitStack() as stack:
        people = Room(any_server, stack)
        host, _ = await people.join("hana", Role.HOST, entry="stage")
        other, _ = await people.join("olga", role, entry="stage")
        viewer, _ = await people.join("vera")
        await synced(host, viewer)

        refusal = await other.request({"type": "end_room", "id": "end"})

        assert (refusal["type"], refusal["code"]) == ("error", "forbidden")
        assert refusal["message"] == "only hosts may end the room for everyone"
        chat = await other.request({"type": "chat", "id": "c", "text": "still here"})
        assert chat["type"] == "ack"
        for raw in (host, viewer):  # everyone is still in the room and told nothing else
            said = await next_of(raw, "chat")
            assert said["text"] == "still here"
            assert news(raw) == []


async def test_the_media_closes_before_anyone_is_told_the_room_ended() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage", camera=False)
        viewer = await cast.join("vera")
        await host.publish([ToneTrack(0.0)])
        mic = producer(server, host, "microphone")
        await until_forwarding(server, viewer, mic)
        transport = member(server, viewer.participant_id).recv_transport
        assert transport is not None
        seen = capture_on_delivery(server, viewer, wire.Bye, lambda: (mic.closed, transport.closed))
        ended = room(server)

        await host.command("end_room")

        bye = await viewer.wait_event(lambda e: e["type"] == "bye")
        assert bye["reason"] == "room_ended"
        assert seen == [(True, True)]
        await viewer.wait_for(viewer.closed.is_set)
        assert viewer.close_code == 1000
        await poll_until(lambda: ended.closed)
        assert "demo" not in server.registry.rooms


async def test_a_participant_waiting_to_resume_cannot_after_the_room_ended() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST)
        gone = await cast.join("gus")
        token = gone.joined["resume_token"]
        await gone.close()  # a lost connection: in the grace period
        await poll_until(lambda: not member(server, gone.participant_id).connected)

        await host.command("end_room")
        await host.wait_for(host.closed.is_set)

        resumed = await RawSocket.open(server)
        try:
            reply = await resumed.request(
                {"type": "resume", "id": "r", "room": "demo", "resume_token": token}
            )
        finally:
            await resumed.close()
        assert (reply["type"], reply["code"]) == ("error", "resume_failed")


# -- the host leaving -------------------------------------------------------------------------
async def test_everyone_is_told_when_the_last_host_leaves(any_server: Endpoint) -> None:
    async with AsyncExitStack() as stack:
        people = Room(any_server, stack)
        host, joined = await people.join("hana", Role.HOST)
        cohost, _ = await people.join("hugo", Role.HOST)
        mod, mod_joined = await people.join("mo", Role.MODERATOR)
        speaker, _ = await people.join("sam", entry="stage")
        viewer, _ = await people.join("vera")

        await cohost.request({"type": "leave", "id": "l"})  # another host stays
        await synced(host, mod, speaker, viewer)
        assert [e for e in news(viewer) if e["type"] == "host_left"] == []

        await host.request({"type": "leave", "id": "l"})

        told = {"type": "host_left", "participant_id": joined["participant_id"], "name": "Hana",
                "role": "host", "moderators": 1, "ends_in": None}  # fmt: skip
        for raw in (mod, speaker, viewer):
            assert await next_of(raw, "host_left") == told
        left = [e for e in mod.events if e["type"] == "participant_left"]
        assert left[-1]["participant_id"] == joined["participant_id"]  # and before it

        # Moderators run the room on: the stage still works for the audience.
        ack = await mod.request({"type": "set_stage_access", "id": "s", "access": "request"})
        assert ack["type"] == "ack"

        await mod.request({"type": "leave", "id": "l"})  # the last one who could run it

        for raw in (speaker, viewer):
            last = await next_of(raw, "host_left")
            assert (last["participant_id"], last["role"], last["moderators"]) == (
                mod_joined["participant_id"],
                "moderator",
                0,
            )
            assert last["ends_in"] is None  # rooms.empty_host_timeout is off by default


async def test_a_host_who_loses_the_connection_is_announced_once_the_grace_ends(
    short_server: Endpoint,
) -> None:
    async with AsyncExitStack() as stack:
        people = Room(short_server, stack)
        host, joined = await people.join("hana", Role.HOST, entry="stage")
        mod, _ = await people.join("mo", Role.MODERATOR)
        viewer, _ = await people.join("vera")
        await synced(mod, viewer)

        await host.ws.close()  # no leave: the host may still come back

        offline = await next_of(viewer, "participant_updated")
        assert offline["participant"]["connected"] is False
        viewer.events.clear()
        told = await next_of(viewer, "host_left")
        assert (told["participant_id"], told["moderators"], told["ends_in"]) == (
            joined["participant_id"],
            1,
            None,
        )
        # only once the grace period ended: right after the host leaves the room
        assert [e["type"] for e in news(viewer)] == ["participant_left"]


async def test_a_room_with_no_host_or_moderator_ends_after_the_timeout(
    short_server: Endpoint,
) -> None:
    async with AsyncExitStack() as stack:
        people = Room(short_server, stack)
        host, _ = await people.join("hana", Role.HOST)
        mod, mod_joined = await people.join("mo", Role.MODERATOR)
        speaker, _ = await people.join("sam", entry="stage")
        viewer, _ = await people.join("vera")

        await host.request({"type": "leave", "id": "l"})
        for raw in (speaker, viewer):
            first = await next_of(raw, "host_left")
            assert (first["moderators"], first["ends_in"]) == (1, None)  # a moderator runs it
        await mod.request({"type": "leave", "id": "l"})

        for raw in (speaker, viewer):
            last = await next_of(raw, "host_left")
            assert (last["participant_id"], last["moderators"], last["ends_in"]) == (
                mod_joined["participant_id"],
                0,
                TIMEOUT,
            )
            bye = await next_of(raw, "bye")
            assert bye == {"type": "bye", "reason": "room_ended", "by": None, "by_name": None}
            assert await until_closed(raw) == 1000


async def test_a_host_joining_in_time_keeps_the_room_going() -> None:
    settings = {"rooms.empty_host_timeout": 600.0}
    async with running_server(settings) as server, AsyncExitStack() as stack:
        people = Room(server, stack)
        host, _ = await people.join("hana", Role.HOST)
        viewer, _ = await people.join("vera")
        await host.request({"type": "leave", "id": "l"})
        told = await next_of(viewer, "host_left")
        assert told["ends_in"] == 600.0
        assert room(server).ends_at is not None

        await people.join("hana", Role.HOST)  # back in time

        assert room(server).ends_at is None
        assert (await viewer.request({"type": "ping", "id": "p"}))["type"] == "pong"
