"""Entering the room as a viewer or on stage, and who may take the stage by
themselves under each room mode and stage access."""

from __future__ import annotations

from signaling.roles import Role
from signaling.stage.model import StageStatus
from tests.integration.stage_support import (
    becomes,
    person,
    producer,
    refused,
    refused_unchanged,
    sources,
    stage_room,
    state,
    until_forwarding,
)
from tests.media import ToneTrack
from tests.raw_socket import RawSocket


async def test_entries_offered_follow_role_policy_and_viewer_only() -> None:
    async with stage_room() as (_, cast):
        host = await cast.join("hana", role=Role.HOST)
        mod = await cast.join("mo", role=Role.MODERATOR)
        open_part = await cast.join("paul")
        watcher = await cast.join("walt", viewer_only=True)
        watching_host = await cast.join("holly", role=Role.HOST, viewer_only=True)
        assert host.joined["entries"] == ["viewer", "stage"]
        assert mod.joined["entries"] == ["viewer", "stage"]
        assert open_part.joined["entries"] == ["viewer", "stage"]
        assert watcher.joined["entries"] == ["viewer"]
        assert watching_host.joined["entries"] == ["viewer"]

        for mode, access in (
            ("interactive", "request"),
            ("interactive", "invite_only"),
            ("panel", "everyone"),
        ):
            await host.command("set_room_mode", mode=mode)
            await host.command("set_stage_access", access=access)
            part = await cast.join(f"p-{mode}-{access}")
            later_mod = await cast.join(f"m-{mode}-{access}", role=Role.MODERATOR)
            assert part.joined["policy"]["mode"] == mode
            assert part.joined["policy"]["stage_access"] == access
            assert part.joined["entries"] == ["viewer"], (mode, access)
            assert later_mod.joined["entries"] == ["viewer", "stage"], (mode, access)


async def test_joining_on_stage_or_as_viewer_decides_status_and_publishing() -> None:
    async with stage_room() as (server, cast):
        viewer = await cast.join("vera")
        speaker = await cast.join("sam", entry="stage", mic=True, camera=False)
        assert viewer.joined["entry"] == "viewer"
        assert viewer.you["status"] == "viewer" and not viewer.you["on_stage"]
        assert speaker.joined["entry"] == "stage"
        assert speaker.you["status"] == "on_stage" and speaker.you["on_stage"]
        assert speaker.you["mic"] == "on" and speaker.you["camera"] == "off"
        assert person(server, speaker).status is StageStatus.ON_STAGE

        await speaker.publish([ToneTrack(0.0)])
        mic = producer(server, speaker, "microphone")
        await until_forwarding(server, viewer, mic)

        await refused(viewer.publish([ToneTrack(0.0)]), "forbidden")
        assert sources(server, viewer) == set()


async def test_a_refused_stage_entry_leaves_the_connection_usable_for_viewer_entry() -> None:
    async with stage_room({"rooms.stage_access": "request"}) as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        raw = await RawSocket.open(server)
        try:
            before = state(server)
            token = server.token("paula")
            refusal = await raw.request(
                {"type": "join", "id": "a", "token": token, "entry": "stage"}
            )
            assert refusal["type"] == "error" and refusal["code"] == "forbidden"
            assert state(server) == before  # nobody was added, not even as a viewer

            joined = await raw.request({"type": "join", "id": "b", "token": token})
            assert joined["type"] == "joined", joined
            assert joined["entry"] == "viewer" and joined["you"]["status"] == "viewer"
            assert joined["entries"] == ["viewer"]
            pid = joined["participant_id"]
            assert person(server, pid).status is StageStatus.VIEWER
            await host.wait_for(lambda: pid in host.participants)
        finally:
            await raw.close()


async def test_viewer_only_clients_never_take_the_stage_nor_get_invited() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        await refused(cast.join("mona", viewer_only=True, entry="stage"), "forbidden")
        mobile = await cast.join("mona", viewer_only=True)
        assert mobile.you["viewer_only"] is True
        await host.wait_for(lambda: mobile.participant_id in host.participants)

        await refused_unchanged(server, mobile.command("join_stage"))
        revision = host.participants[mobile.participant_id]["revision"]
        await refused_unchanged(
            server, host.command("invite", target=mobile.participant_id, revision=revision)
        )
        await host.command("set_stage_access", access="request")
        await refused_unchanged(server, mobile.command("request_stage"))
        assert person(server, mobile).status is StageStatus.VIEWER
        await becomes(mobile, status="viewer", on_stage=False)


async def test_hosts_and_moderators_join_the_stage_in_every_mode_and_access() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST)
        mod = await cast.join("mo", role=Role.MODERATOR)
        part = await cast.join("paul")
        combos = [
            ("interactive", "everyone", True),
            ("interactive", "request", False),
            ("interactive", "invite_only", False),
            ("panel", "everyone", False),
            ("panel", "request", False),
            ("panel", "invite_only", False),
        ]
        for mode, access, participant_may in combos:
            await host.command("set_room_mode", mode=mode)
            await host.command("set_stage_access", access=access)
            for leader in (host, mod):
                await leader.command("join_stage", mic=False, camera=False)
                assert person(server, leader).status is StageStatus.ON_STAGE, (mode, access)
                await leader.command("leave_stage")
            if participant_may:
                await part.command("join_stage")
                assert person(server, part).status is StageStatus.ON_STAGE
                await part.command("leave_stage")
            else:
                error = await refused_unchanged(server, part.command("join_stage"))
                assert error.code == "forbidden", (mode, access)
                assert person(server, part).status is StageStatus.VIEWER


async def test_speaker_label_lets_a_participant_take_the_stage_in_a_panel_room() -> None:
    async with stage_room({"rooms.mode": "panel"}) as (server, cast):
        host = await cast.join("hana", role=Role.HOST)
        panelist = await cast.join("pia")
        viewer = await cast.join("vera")
        assert panelist.joined["entries"] == ["viewer"]
        await refused_unchanged(server, panelist.command("join_stage"))

        await host.command("set_speaker", target=panelist.participant_id, speaker=True)
        await becomes(panelist, speaker=True)
        await panelist.command("join_stage", camera=False)
        await becomes(panelist, status="on_stage")
        await panelist.publish([ToneTrack(0.0)])
        mic = producer(server, panelist, "microphone")
        await until_forwarding(server, viewer, mic)
