"""Shared steps for integration tests: a publisher on stage and viewers watching."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiortc.mediastreams import MediaStreamTrack
from av import Packet
from av.frame import Frame

from sfu.consumer import Consumer
from sfu.pipe_transport import PipeTransport
from sfu.router import Router
from signaling.client import RemoteTrack, StageClient
from signaling.members import Member
from signaling.room import Room
from signaling.stage.model import ParticipantId
from tests.server import RunningServer


def remote_track(client: StageClient, participant_id: str, kind: str) -> RemoteTrack:
    return next(
        t for t in client.tracks if t.participant_id == participant_id and t.track.kind == kind
    )


async def wait_for_tracks(viewer: StageClient, participant_id: str) -> None:
    await viewer.wait_for(
        lambda: (
            {t.track.kind for t in viewer.tracks if t.participant_id == participant_id}
            == {"audio", "video"}
        )
    )


async def until(client: StageClient, holds: Callable[[StageClient], bool]) -> None:
    """Wait until `holds(client)`: a predicate taking the client, so that one written in a
    loop over clients needs no default argument to bind the loop's current client."""
    await client.wait_for(lambda: holds(client))


async def receive(
    track: MediaStreamTrack, count: int, timeout: float = 20.0
) -> list[Frame | Packet[Any]]:
    frames: list[Frame | Packet[Any]] = []
    async with asyncio.timeout(timeout):
        while len(frames) < count:
            frames.append(await track.recv())
    return frames


async def pipe_pair(a: Router, b: Router) -> tuple[PipeTransport, PipeTransport]:
    """Two routers' pipe transports, connected to each other."""
    pa, pb = await a.create_pipe_transport(), await b.create_pipe_transport()
    pa.connect(*pb.local_address)
    pb.connect(*pa.local_address)
    return pa, pb


def member(server: RunningServer, participant_id: str, room: str = "demo") -> Member:
    found: Room = server.registry.rooms[room]
    return found.members[ParticipantId(participant_id)]


def local_consumers(
    server: RunningServer, participant_id: str, room: str = "demo"
) -> list[Consumer]:
    """The member's consumers, all on this worker's media plane (a room that is not spread)."""
    consumers = member(server, participant_id, room).consumers.values()
    local = [c for c in consumers if isinstance(c, Consumer)]
    assert len(local) == len(consumers), "a consumer on another worker"
    return local


@asynccontextmanager
async def stage_and_viewers(
    server: RunningServer,
    tracks: Sequence[MediaStreamTrack],
    viewers: int = 1,
    *,
    munge: Callable[[str], str] | None = None,
) -> AsyncIterator[tuple[StageClient, list[StageClient]]]:
    """A publisher on stage sending `tracks` and `viewers` viewers receiving both kinds."""
    publisher = await StageClient.connect(server.ws_url, server.token("alice"), entry="stage")
    watchers: list[StageClient] = []
    try:
        for i in range(viewers):
            watchers.append(await StageClient.connect(server.ws_url, server.token(f"viewer{i}")))
        await publisher.publish(tracks, munge=munge)
        for viewer in watchers:
            await wait_for_tracks(viewer, publisher.participant_id)
        yield publisher, watchers
    finally:
        for client in (publisher, *watchers):
            await client.close()


async def poll_until(
    predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05
) -> None:
    """Bounded wait on a server-side condition that no message announces."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - nothing announces these server-side changes
            await asyncio.sleep(interval)
