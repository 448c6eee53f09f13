"""Every command someone is not allowed to give is refused with `forbidden` and
changes nothing: not the stage state, not the media."""

from __future__ import annotations

from typing import Any

from signaling.client import StageClient
from signaling.roles import Role
from signaling.stage.model import StageStatus
from tests.integration.stage_support import (
    forwarding,
    producer,
    refused_unchanged,
    revision_seen,
    sees,
    stage_room,
    state,
    until_forwarding,
)
from tests.media import ToneTrack


async def test_a_participant_on_stage_cannot_moderate_anything() -> None:
    async with stage_room({"rooms.stage_access": "request"}) as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage", camera=False)
        pat = await cast.join("pat")
        asker = await cast.join("ada")
        invitee = await cast.join("ivy")
        locked = await cast.join("lou")
        viewer = await cast.join("vera")
        await host.publish([ToneTrack(0.0)])
        host_mic = producer(server, host, "microphone")
        await until_forwarding(server, viewer, host_mic)

        for guest in (pat, locked):
            revision = await revision_seen(host, guest, "viewer")
            await host.command("invite", target=guest.participant_id, revision=revision)
            invited = await guest.wait_event(lambda e: e["type"] == "invited")
            await guest.command("accept_invitation", revision=invited["revision"], camera=False)
        await host.command("mute", target=locked.participant_id, device="mic", lock=True)
        revision = await revision_seen(host, invitee, "viewer")
        await host.command("invite", target=invitee.participant_id, revision=revision)
        await asker.command("request_stage")
        await viewer.command("raise_hand")
        await host.command("create_poll", question="Ready?", options=["yes", "no"])
        poll_id = next(iter(state(server).polls))
        for who, status in ((asker, "requested"), (invitee, "invited"), (pat, "on_stage")):
            await sees(pat, who, status=status)
        people = pat.participants

        def rev(client: StageClient) -> int:
            return int(people[client.participant_id]["revision"])

        commands: list[dict[str, Any]] = [
            {"type": "approve_request", "target": asker.participant_id, "revision": rev(asker)},
            {"type": "decline_request", "target": asker.participant_id, "revision": rev(asker)},
            {"type": "invite", "target": viewer.participant_id, "revision": rev(viewer)},
            {"type": "revoke_invitation", "target": invitee.participant_id,
             "revision": rev(invitee)},
            {"type": "remove_from_stage", "target": host.participant_id, "revision": rev(host)},
            {"type": "remove_from_stage", "target": locked.participant_id,
             "revision": rev(locked)},
            {"type": "mute", "target": host.participant_id, "device": "mic"},
            {"type": "mute", "target": host.participant_id, "device": "mic", "lock": True},
            {"type": "unlock", "target": locked.participant_id, "device": "mic"},
            {"type": "mute_all", "device": "mic"},
            {"type": "mute_all", "device": "camera", "lock": True},
            {"type": "lower_hand", "target": viewer.participant_id},
            {"type": "lower_all_hands"},
            {"type": "set_stage_access", "access": "everyone"},
            {"type": "set_room_mode", "mode": "panel"},
            {"type": "set_capacity", "capacity": 5, "full_policy": "queue"},
            {"type": "set_role", "target": pat.participant_id, "role": "moderator"},
            {"type": "set_role", "target": viewer.participant_id, "role": "moderator"},
            {"type": "set_speaker", "target": pat.participant_id, "speaker": True},
            {"type": "set_permission", "target": pat.participant_id, "permission": "present",
             "granted": True},
            {"type": "kick", "target": viewer.participant_id},
            {"type": "create_poll", "question": "Mine?", "options": ["a", "b"]},
            {"type": "close_poll", "poll_id": poll_id},
        ]  # fmt: skip
        for command in commands:
            error = await refused_unchanged(server, pat.request(command))
            assert error.code == "forbidden", command

        # Nothing happened to anyone's media either.
        assert not host_mic.paused and forwarding(server, viewer, host_mic)
        statuses = {p.name: p.status for p in state(server).people.values()}
        assert statuses == {
            "Hana": StageStatus.ON_STAGE, "Pat": StageStatus.ON_STAGE,
            "Lou": StageStatus.ON_STAGE, "Ada": StageStatus.REQUESTED,
            "Ivy": StageStatus.INVITED, "Vera": StageStatus.VIEWER,
        }  # fmt: skip


async def test_rights_never_flow_upward_or_to_oneself() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        mod = await cast.join("mo", role=Role.MODERATOR)
        other_mod = await cast.join("max", role=Role.MODERATOR)
        part = await cast.join("pat")
        await sees(mod, host, on_stage=True)

        refusals: list[tuple[StageClient, dict[str, Any]]] = [
            (mod, {"type": "set_role", "target": host.participant_id, "role": "participant"}),
            (mod, {"type": "set_role", "target": part.participant_id, "role": "host"}),
            (mod, {"type": "set_role", "target": mod.participant_id, "role": "host"}),
            (mod, {"type": "set_speaker", "target": host.participant_id, "speaker": True}),
            (mod, {"type": "set_permission", "target": host.participant_id,
                   "permission": "present", "granted": False}),
            (mod, {"type": "kick", "target": host.participant_id}),
            (host, {"type": "set_role", "target": host.participant_id, "role": "moderator"}),
            (host, {"type": "kick", "target": host.participant_id}),
        ]  # fmt: skip
        for actor, command in refusals:
            error = await refused_unchanged(server, actor.request(command))
            assert error.code == "forbidden", command

        # What is allowed still works: a moderator over another moderator, the host over all.
        await mod.command("set_speaker", target=other_mod.participant_id, speaker=True)
        await host.command("set_role", target=mod.participant_id, role="participant")
        await sees(host, mod, role="participant")
