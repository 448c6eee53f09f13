"""Leaving the stage and being removed from it: the person becomes a viewer and
their media is stopped at the SFU before anyone is told."""

from __future__ import annotations

from typing import Any

from signaling import protocol as wire
from signaling.roles import Role
from signaling.stage.model import StageStatus
from tests.integration.stage_support import (
    becomes,
    capture_on_delivery,
    consumer,
    person,
    producer,
    refused_unchanged,
    revision_seen,
    sees,
    sources,
    stage_room,
    until_forwarding,
)
from tests.media import ToneTrack


async def test_leaving_the_stage_closes_own_producers_and_makes_a_viewer() -> None:
    async with stage_room() as (server, cast):
        speaker = await cast.join("sam", entry="stage", camera=False)
        viewer = await cast.join("vera")
        await speaker.publish([ToneTrack(0.0)])
        mic = producer(server, speaker, "microphone")
        await until_forwarding(server, viewer, mic)

        await speaker.command("leave_stage")
        left = await speaker.wait_event(lambda e: e["type"] == "stage_left")
        assert left["reason"] == "left" and left["by"] is None
        await becomes(speaker, status="viewer", on_stage=False, mic="off")
        assert mic.closed and sources(server, speaker) == set()
        assert consumer(server, viewer, mic) is None
        await sees(viewer, speaker, on_stage=False, status="viewer")

        # Back again when the room allows it.
        await speaker.command("join_stage", camera=False)
        await becomes(speaker, status="on_stage")


async def test_removed_from_stage_media_is_closed_before_the_person_is_told() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        speaker = await cast.join("sam", entry="stage")
        viewer = await cast.join("vera")
        await speaker.publish([ToneTrack(0.0)])
        mic = producer(server, speaker, "microphone")
        await until_forwarding(server, viewer, mic)

        def media_at_sfu() -> tuple[bool, bool]:
            found = consumer(server, viewer, mic)
            return mic.closed, found is None or found.closed

        at_server = capture_on_delivery(server, speaker, wire.StageLeft, media_at_sfu)
        at_client: list[tuple[bool, bool]] = []

        def on_event(event: dict[str, Any]) -> None:
            if event["type"] == "stage_left":
                at_client.append(media_at_sfu())

        speaker.on_event = on_event
        revision = await revision_seen(host, speaker, "on_stage")
        await host.command("remove_from_stage", target=speaker.participant_id, revision=revision)

        left = await speaker.wait_event(lambda e: e["type"] == "stage_left")
        assert left["reason"] == "removed"
        assert (left["by"], left["by_name"]) == (host.participant_id, "Hana")  # who did it
        assert at_server == [(True, True)]  # closed before the message was queued
        assert at_client == [(True, True)]
        await becomes(speaker, status="viewer", on_stage=False)
        assert person(server, speaker).status is StageStatus.VIEWER
        assert sources(server, speaker) == set()
        await sees(viewer, speaker, on_stage=False)
        await sees(host, speaker, status="viewer")

        # The host's old revision is stale now: a second removal is refused.
        await refused_unchanged(
            server,
            host.command("remove_from_stage", target=speaker.participant_id, revision=revision),
            "conflict",
        )
        # A viewer cannot publish any more.
        await refused_unchanged(server, speaker.publish([ToneTrack(0.0)]), "forbidden")
        assert sources(server, speaker) == set()
