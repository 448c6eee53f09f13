"""Invitations to the stage: accepted with device choices, declined, revoked by
any moderator, and expiring on their own."""

from __future__ import annotations

from signaling.roles import Role
from signaling.stage.model import DeviceState, StageStatus
from tests.integration.stage_support import (
    becomes,
    forwarding,
    of_type,
    person,
    producer,
    refused,
    revision_seen,
    sees,
    stage_room,
    synced,
    until_forwarding,
)
from tests.media import PatternTrack, ToneTrack


async def test_accepting_with_mic_off_and_camera_on_sets_devices_and_pauses_the_mic() -> None:
    async with stage_room({"rooms.stage_access": "invite_only"}) as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        guest = await cast.join("gil")
        viewer = await cast.join("vera")
        revision = await revision_seen(host, guest, "viewer")

        await host.command("invite", target=guest.participant_id, revision=revision)
        invited = await guest.wait_event(lambda e: e["type"] == "invited")
        await becomes(guest, status="invited", on_stage=False)
        assert person(server, guest).status is StageStatus.INVITED

        await guest.command("accept_invitation", revision=invited["revision"], mic=False)
        ended = await host.wait_event(lambda e: e["type"] == "invitation_ended")
        assert ended == {
            "type": "invitation_ended",
            "participant_id": guest.participant_id,
            "reason": "accepted",
        }
        await becomes(guest, status="on_stage", mic="off", camera="on")
        assert (person(server, guest).mic, person(server, guest).camera) == (
            DeviceState.OFF,
            DeviceState.ON,
        )
        await sees(viewer, guest, on_stage=True, mic="off", camera="on")

        await guest.publish([ToneTrack(0.3), PatternTrack()])
        mic = producer(server, guest, "microphone")
        camera = producer(server, guest, "camera")
        assert mic.paused and not camera.paused
        await until_forwarding(server, viewer, camera)
        assert not forwarding(server, viewer, mic)


async def test_declining_an_invitation_returns_to_viewer_and_tells_the_moderators() -> None:
    async with stage_room({"rooms.mode": "panel"}) as (server, cast):
        host = await cast.join("hana", role=Role.HOST)
        mod = await cast.join("mo", role=Role.MODERATOR)
        guest = await cast.join("gil")
        revision = await revision_seen(host, guest, "viewer")
        await host.command("invite", target=guest.participant_id, revision=revision)
        invited = await guest.wait_event(lambda e: e["type"] == "invited")

        await guest.command("decline_invitation", revision=invited["revision"])
        await becomes(guest, status="viewer", on_stage=False)
        for moderator in (host, mod):
            ended = await moderator.wait_event(lambda e: e["type"] == "invitation_ended")
            assert ended["participant_id"] == guest.participant_id
            assert ended["reason"] == "declined"
        assert person(server, guest).status is StageStatus.VIEWER
        assert person(server, guest).invitation is None
        await refused(guest.command("accept_invitation", revision=invited["revision"]), "conflict")
        assert person(server, guest).status is StageStatus.VIEWER


async def test_another_moderator_revokes_an_invitation_and_accepting_it_then_conflicts() -> None:
    async with stage_room() as (server, cast):
        inviter = await cast.join("hana", role=Role.HOST)
        revoker = await cast.join("mo", role=Role.MODERATOR)
        guest = await cast.join("gil")
        bystander = await cast.join("bea")
        revision = await revision_seen(inviter, guest, "viewer")
        await inviter.command("invite", target=guest.participant_id, revision=revision)
        invited = await guest.wait_event(lambda e: e["type"] == "invited")

        revision = await revision_seen(revoker, guest, "invited")
        await revoker.command("revoke_invitation", target=guest.participant_id, revision=revision)
        ended = await guest.wait_event(lambda e: e["type"] == "invitation_ended")
        assert ended["reason"] == "revoked" and ended["participant_id"] == guest.participant_id
        await becomes(guest, status="viewer")
        await inviter.wait_event(
            lambda e: e["type"] == "invitation_ended" and e["reason"] == "revoked"
        )
        await synced(bystander)
        assert of_type(bystander, "invitation_ended") == []

        before = person(server, guest)
        await refused(guest.command("accept_invitation", revision=invited["revision"]), "conflict")
        assert person(server, guest) == before
        assert before.status is StageStatus.VIEWER


async def test_an_unanswered_invitation_expires() -> None:
    async with stage_room({"rooms.invitation_ttl": 1.0}) as (server, cast):
        host = await cast.join("hana", role=Role.HOST)
        guest = await cast.join("gil")
        revision = await revision_seen(host, guest, "viewer")
        await host.command("invite", target=guest.participant_id, revision=revision)
        invited = await guest.wait_event(lambda e: e["type"] == "invited")
        assert 0 < invited["expires_in"] <= 1.0

        ended = await guest.wait_event(lambda e: e["type"] == "invitation_ended", timeout=5)
        assert ended["reason"] == "expired"
        await host.wait_event(
            lambda e: e["type"] == "invitation_ended" and e["reason"] == "expired"
        )
        await becomes(guest, status="viewer")
        assert person(server, guest).status is StageStatus.VIEWER
        await refused(guest.command("accept_invitation", revision=invited["revision"]), "conflict")
        assert person(server, guest).status is StageStatus.VIEWER
