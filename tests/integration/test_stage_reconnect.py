"""A dropped connection keeps its place for a grace period: resuming gives back
the same participant, seat, role and mute state; after the grace period the
person is gone, with no ghost request or invitation left behind."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from signaling.client import StageClient
from signaling.roles import Role
from signaling.stage.model import DeviceState, StageStatus
from tests.integration.stage_support import (
    consumer,
    person,
    producer,
    refused,
    revision_seen,
    sees,
    stage_room,
    state,
    until_forwarding,
)
from tests.media import ToneTrack


async def test_resuming_within_grace_restores_the_same_participant_and_state() -> None:
    async with stage_room({"rooms.reconnect_grace": 10.0}) as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        dropped = await cast.join("dora", entry="stage", camera=False)
        viewer = await cast.join("vera")
        await dropped.publish([ToneTrack(0.0)])
        mic = producer(server, dropped, "microphone")
        await until_forwarding(server, viewer, mic)
        await host.command("mute", target=dropped.participant_id, device="mic")
        await host.command("set_role", target=dropped.participant_id, role="moderator")
        await sees(viewer, dropped, mic="muted", role="moderator")
        pid, old_token = dropped.participant_id, dropped.joined["resume_token"]

        await dropped.close()
        for other in (host, viewer):
            await sees(other, dropped, connected=False, on_stage=True, mic="muted")
        kept = person(server, pid)
        assert kept.status is StageStatus.ON_STAGE and kept.mic is DeviceState.MUTED
        assert kept.role == Role.MODERATOR
        assert mic.closed and consumer(server, viewer, mic) is None  # media stops meanwhile

        back = await cast.resume(old_token)
        joined = back.joined
        assert joined["participant_id"] == pid
        assert joined["entry"] == "stage"
        assert joined["role"] == "moderator"
        you = joined["you"]
        assert (you["status"], you["on_stage"], you["mic"], you["connected"]) == (
            "on_stage",
            True,
            "muted",
            True,
        )
        assert joined["resume_token"] != old_token
        for other in (host, viewer):
            await sees(other, back, connected=True, mic="muted")
        assert person(server, pid).revision == kept.revision  # not a new stage state

        await refused(cast.resume(old_token), "resume_failed")

        # Back on stage with the same rights: publish again, still muted at the SFU.
        await back.publish([ToneTrack(0.0)])
        mic = producer(server, back, "microphone")
        assert mic.paused
        await back.command("set_device", device="mic", on=True)
        await until_forwarding(server, viewer, mic)


def last_queues(client: StageClient) -> dict[str, Any]:
    return [e for e in client.events if e["type"] == "queues"][-1]


async def test_after_the_grace_period_the_person_and_their_pending_entries_are_purged() -> None:
    overrides = {"rooms.reconnect_grace": 1.0, "rooms.stage_access": "request"}
    async with stage_room(overrides) as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        asker = await cast.join("ada")
        guest = await cast.join("gil")
        await asker.command("request_stage")
        revision = await revision_seen(host, guest, "viewer")
        await host.command("invite", target=guest.participant_id, revision=revision)
        await guest.wait_event(lambda e: e["type"] == "invited")
        await host.wait_event(
            lambda e: (
                e["type"] == "queues"
                and [x["participant_id"] for x in e["requests"]] == [asker.participant_id]
            )
        )
        tokens = [asker.joined["resume_token"], guest.joined["resume_token"]]
        gone = {asker.participant_id, guest.participant_id}

        await asker.close()
        await guest.close()

        def disconnected(who: StageClient, status: str) -> Callable[[dict[str, Any]], bool]:
            return lambda e: (
                e["type"] == "participant_updated"
                and e["participant"]["participant_id"] == who.participant_id
                and e["participant"]["connected"] is False
                and e["participant"]["status"] == status
            )

        # (From the event history: the records themselves go when the grace period ends.)
        for who, status in ((asker, "requested"), (guest, "invited")):
            await host.wait_event(disconnected(who, status))

        def left(e: dict[str, Any]) -> bool:
            return e["type"] == "participant_left" and e["participant_id"] in gone

        await host.wait_for(lambda: len([e for e in host.events if left(e)]) == 2, timeout=6)
        assert gone.isdisjoint(state(server).people)
        assert gone.isdisjoint(host.participants)
        await host.wait_for(lambda: last_queues(host)["requests"] == [])
        assert last_queues(host)["seats"] == [] and last_queues(host)["hands"] == []
        ended = await host.wait_event(lambda e: e["type"] == "invitation_ended")
        assert ended["participant_id"] == guest.participant_id and ended["reason"] == "left"
        for token in tokens:
            await refused(cast.resume(token), "resume_failed")
        # Someone arriving now sees no trace of them either.
        late = await cast.join("mo", role=Role.MODERATOR)
        assert late.joined["counts"]["requests"] == 0
        assert gone.isdisjoint(p["participant_id"] for p in late.joined["participants"])
        queues = await late.wait_event(lambda e: e["type"] == "queues")
        assert queues["requests"] == []


async def test_a_resumed_moderator_gets_the_queues_and_the_media_back() -> None:
    async with stage_room({"rooms.stage_access": "request"}) as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage", camera=False)
        mod = await cast.join("mo", role=Role.MODERATOR)
        asker = await cast.join("ada")
        await host.publish([ToneTrack(0.0)])
        mic = producer(server, host, "microphone")
        await until_forwarding(server, mod, mic)
        await asker.command("request_stage")
        await mod.wait_event(lambda e: e["type"] == "queues" and e["requests"])
        await host.command("raise_hand")

        token = mod.joined["resume_token"]
        await mod.close()
        await sees(host, mod, connected=False)
        back = await cast.resume(token)
        # Like a moderator who just joined: the whole list, and the queues in order.
        assert {p["participant_id"] for p in back.joined["participants"]} == set(
            state(server).people
        )
        queues = await back.wait_event(lambda e: e["type"] == "queues")
        assert [x["participant_id"] for x in queues["requests"]] == [asker.participant_id]
        assert [x["participant_id"] for x in queues["hands"]] == [host.participant_id]
        await until_forwarding(server, back, mic)
