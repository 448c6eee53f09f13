"""Role and label changes take effect live, without rejoining: new rights work at
once, lost rights are refused at once, and media they covered stops at once."""

from __future__ import annotations

from signaling.roles import Role
from signaling.stage.model import DeviceState, StageStatus
from tests.integration.stage_support import (
    becomes,
    consumer,
    forwarding,
    person,
    producer,
    refused_unchanged,
    revision_seen,
    sees,
    sources,
    stage_room,
    until_forwarding,
)
from tests.media import PatternTrack, ToneTrack


async def test_a_promoted_participant_moderates_at_once_and_a_demoted_one_cannot() -> None:
    async with stage_room({"rooms.stage_access": "request"}) as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        promoted = await cast.join("pat")
        speaker = await cast.join("sam")
        asker = await cast.join("ada")
        await asker.command("request_stage")
        await refused_unchanged(
            server, promoted.command("mute", target=host.participant_id, device="mic")
        )

        await host.command("set_role", target=promoted.participant_id, role="moderator")
        await becomes(promoted, role="moderator")
        # Entering the full view: the whole list and the queues arrive.
        snapshot = await promoted.wait_event(lambda e: e["type"] == "snapshot")
        assert asker.participant_id in {p["participant_id"] for p in snapshot["participants"]}
        queues = await promoted.wait_event(lambda e: e["type"] == "queues")
        assert [e["participant_id"] for e in queues["requests"]] == [asker.participant_id]

        # Moderating right away, in the same connection.
        revision = await revision_seen(promoted, asker, "requested")
        await promoted.command("approve_request", target=asker.participant_id, revision=revision)
        await asker.wait_event(lambda e: e["type"] == "invited")
        await promoted.command("join_stage", camera=False)  # no request needed any more
        await host.command("set_stage_access", access="everyone")
        await speaker.command("join_stage", camera=False)
        await promoted.command("mute", target=speaker.participant_id, device="mic")
        await sees(host, speaker, mic="muted")

        await host.command("set_role", target=promoted.participant_id, role="participant")
        await becomes(promoted, role="participant")
        await refused_unchanged(
            server, promoted.command("mute", target=host.participant_id, device="mic")
        )
        await refused_unchanged(
            server, promoted.command("unlock", target=speaker.participant_id, device="mic")
        )
        await refused_unchanged(server, promoted.command("set_stage_access", access="request"))
        # Demotion does not take the seat away.
        assert person(server, promoted).status is StageStatus.ON_STAGE


async def test_demoting_a_presenting_moderator_closes_the_screen_share_at_once() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST)
        presenter = await cast.join("mo", role=Role.MODERATOR, entry="stage", camera=False)
        viewer = await cast.join("vera")
        await presenter.publish([ToneTrack(0.0), PatternTrack()], sources=["microphone", "screen"])
        screen = producer(server, presenter, "screen")
        mic = producer(server, presenter, "microphone")
        await until_forwarding(server, viewer, screen)
        await until_forwarding(server, viewer, mic)
        assert presenter.you["can_present"] is True

        await host.command("set_role", target=presenter.participant_id, role="participant")
        # Enforced within the command, before its acknowledgement.
        assert screen.closed
        assert consumer(server, viewer, screen) is None
        assert not mic.closed and forwarding(server, viewer, mic)  # still on stage
        assert sources(server, presenter) == {"microphone"}
        record = await sees(viewer, presenter, role="participant", can_present=False)
        assert [t["source"] for t in record["tracks"]] == ["microphone"]
        await becomes(presenter, role="participant", can_present=False)


async def test_removing_the_speaker_label_keeps_the_seat_but_not_the_right_to_return() -> None:
    async with stage_room({"rooms.mode": "panel"}) as (server, cast):
        host = await cast.join("hana", role=Role.HOST)
        panelist = await cast.join("pia")
        await host.command("set_speaker", target=panelist.participant_id, speaker=True)
        await panelist.command("join_stage", camera=False)
        await panelist.publish([ToneTrack(0.0)])
        mic = producer(server, panelist, "microphone")

        await host.command("set_speaker", target=panelist.participant_id, speaker=False)
        await sees(host, panelist, speaker=False, on_stage=True)
        assert not mic.closed and person(server, panelist).mic is DeviceState.ON
        await panelist.command("leave_stage")
        await refused_unchanged(server, panelist.command("join_stage"))
        assert mic.closed
