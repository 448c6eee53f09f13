"""A full stage: refuse, evict the participant silent the longest, or queue for
a seat, as the room's full-stage policy says."""

from __future__ import annotations

from typing import Any

from signaling.roles import Role
from signaling.stage.model import StageStatus
from tests.integration.stage_support import (
    becomes,
    forwarding,
    of_type,
    person,
    producer,
    refused,
    refused_unchanged,
    sees,
    sources,
    stage_room,
    state,
    until_forwarding,
)
from tests.media import ToneTrack


def _seats(event: dict[str, Any]) -> list[str]:
    return [entry["participant_id"] for entry in event["seats"]]


async def test_a_full_stage_refuses_participants_but_makes_room_for_moderators() -> None:
    overrides = {"rooms.stage_capacity": 2, "rooms.full_stage_policy": "reject"}
    async with stage_room(overrides) as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        seated = await cast.join("sam", entry="stage")
        late = await cast.join("lou")
        mod = await cast.join("mo", role=Role.MODERATOR)
        assert host.joined["policy"]["capacity"] == 2

        await refused_unchanged(server, late.command("join_stage"), "stage_full")
        await refused(cast.join("lee", entry="stage"), "stage_full")
        assert state(server).stage_count == 2

        # A moderator always fits; the participant makes room, never the host.
        await mod.command("join_stage")
        left = await seated.wait_event(lambda e: e["type"] == "stage_left")
        assert left["reason"] == "stage_full"
        assert person(server, host).on_stage and person(server, mod).on_stage
        assert person(server, seated).status is StageStatus.VIEWER


async def test_evict_silent_removes_the_participant_silent_the_longest() -> None:
    overrides = {"rooms.stage_capacity": 3, "rooms.full_stage_policy": "evict_silent"}
    async with stage_room(overrides) as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")  # silent longest
        talker = await cast.join("tia", entry="stage", camera=False)
        quiet = await cast.join("quinn", entry="stage", camera=False)
        newcomer = await cast.join("nia")
        viewer = await cast.join("vera")
        voice = ToneTrack(0.0)
        await talker.publish([voice])
        await quiet.publish([ToneTrack(0.0)])
        quiet_mic = producer(server, quiet, "microphone")
        await until_forwarding(server, viewer, quiet_mic)

        voice.amplitude = 0.3  # the earlier arrival speaks, so the later one is quieter longer
        await viewer.wait_event(
            lambda e: (
                e["type"] == "speaking"
                and e["participant_id"] == talker.participant_id
                and e["speaking"]
            )
        )
        assert person(server, talker).last_spoke_at is not None

        await newcomer.command("join_stage", camera=False)
        left = await quiet.wait_event(lambda e: e["type"] == "stage_left")
        assert left["reason"] == "stage_full"
        await becomes(quiet, status="viewer", on_stage=False)
        assert quiet_mic.closed and not forwarding(server, viewer, quiet_mic)
        assert sources(server, quiet) == set()
        on_stage = {p.participant_id for p in state(server).on_stage}
        assert on_stage == {host.participant_id, talker.participant_id, newcomer.participant_id}
        for kept in (host, talker):
            assert of_type(kept, "stage_left") == []
        await sees(viewer, quiet, on_stage=False)
        await sees(viewer, newcomer, on_stage=True)


async def test_queue_policy_seats_the_first_in_line_when_a_seat_frees() -> None:
    overrides = {"rooms.stage_capacity": 2, "rooms.full_stage_policy": "queue"}
    async with stage_room(overrides) as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        seated = await cast.join("sam", entry="stage")
        first = await cast.join("fay")
        second = await cast.join("sid")
        viewer = await cast.join("vera")

        await first.command("join_stage", camera=False)
        await becomes(first, status="queued", on_stage=False)
        await second.command("join_stage")
        await becomes(second, status="queued")
        queues = await host.wait_event(
            lambda e: (
                e["type"] == "queues" and _seats(e) == [first.participant_id, second.participant_id]
            )
        )
        assert [entry["position"] for entry in queues["seats"]] == [1, 2]
        assert state(server).stage_count == 2
        # Waiting for a seat is not being on stage: no publishing yet.
        await refused(first.publish([ToneTrack(0.0)]), "forbidden")

        await seated.command("leave_stage")
        await becomes(first, status="on_stage", on_stage=True, mic="on", camera="off")
        await host.wait_event(
            lambda e: e["type"] == "queues" and _seats(e) == [second.participant_id]
        )
        await sees(viewer, first, on_stage=True)
        assert person(server, second).status is StageStatus.QUEUED
        await first.publish([ToneTrack(0.0)])
        await until_forwarding(server, viewer, producer(server, first, "microphone"))

        # Leaving the queue gives up the place.
        await second.command("leave_stage")
        await becomes(second, status="viewer")
        await host.wait_event(lambda e: e["type"] == "queues" and _seats(e) == [])
