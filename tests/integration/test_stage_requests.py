"""Asking for the stage: the moderators' request queue, cancelling, approval
(which is an invitation, not a seat) and decline (told to the requester only)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from signaling.roles import Role
from signaling.stage.model import StageStatus
from tests.integration.stage_support import (
    becomes,
    of_type,
    person,
    refused,
    revision_seen,
    sees,
    sources,
    stage_room,
    synced,
)
from tests.media import ToneTrack

REQUEST = {"rooms.stage_access": "request"}


def _requests(event: dict[str, Any]) -> list[str]:
    return [entry["participant_id"] for entry in event["requests"]]


async def test_requests_queue_in_server_order_with_positions_and_waiting_time() -> None:
    async with stage_room(REQUEST) as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        first = await cast.join("fay")
        second = await cast.join("sid")
        third = await cast.join("tom")

        started = time.monotonic()
        await first.command("request_stage")
        await becomes(first, status="requested")
        await asyncio.sleep(0.3)  # let the first request age, so waiting times differ
        await second.command("request_stage")
        await third.command("request_stage")
        order = [first.participant_id, second.participant_id, third.participant_id]
        queues = await host.wait_event(lambda e: e["type"] == "queues" and _requests(e) == order)
        assert [entry["position"] for entry in queues["requests"]] == [1, 2, 3]
        waits = [entry["waiting_seconds"] for entry in queues["requests"]]
        assert time.monotonic() - started + 0.1 >= waits[0] >= 0.2
        assert waits[0] >= waits[1] >= waits[2] >= 0.0
        assert queues["requests"][0]["name"] == "Fay"
        seqs = [person(server, c).request for c in (first, second, third)]
        assert None not in seqs and seqs == sorted(s for s in seqs if s is not None)

        # Not a moderator: no queue for the requesters.
        await synced(first, second, third)
        assert of_type(first, "queues") == [] and of_type(third, "queues") == []

        await second.command("cancel_request")
        await becomes(second, status="viewer")
        queues = await host.wait_event(
            lambda e: (
                e["type"] == "queues"
                and _requests(e) == [first.participant_id, third.participant_id]
            )
        )
        assert [entry["position"] for entry in queues["requests"]] == [1, 2]
        assert person(server, second).status is StageStatus.VIEWER
        await refused(second.command("cancel_request"), "conflict")


async def test_approval_sends_an_invitation_and_does_not_seat_the_requester() -> None:
    async with stage_room(REQUEST) as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        asker = await cast.join("ada")
        await asker.command("request_stage")
        revision = await revision_seen(host, asker, "requested")

        await host.command("approve_request", target=asker.participant_id, revision=revision)
        invited = await asker.wait_event(lambda e: e["type"] == "invited")
        assert invited["by"] == host.participant_id and invited["by_name"] == "Hana"
        assert invited["expires_in"] > 0
        await becomes(asker, status="invited", on_stage=False)
        assert person(server, asker).status is StageStatus.INVITED
        await host.wait_event(lambda e: e["type"] == "queues" and _requests(e) == [])

        # Invited is not on stage: nothing may be published yet.
        await refused(asker.publish([ToneTrack(0.0)]), "forbidden")
        assert sources(server, asker) == set()

        await asker.command("accept_invitation", revision=invited["revision"], camera=False)
        await becomes(asker, status="on_stage", mic="on", camera="off")
        await asker.publish([ToneTrack(0.0)])
        assert sources(server, asker) == {"microphone"}


async def test_a_declined_request_is_told_to_the_requester_only() -> None:
    async with stage_room(REQUEST) as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        mod = await cast.join("mo", role=Role.MODERATOR)
        asker = await cast.join("ada")
        other = await cast.join("otto")
        viewer = await cast.join("vera")
        await asker.command("request_stage")
        await other.command("request_stage")
        revision = await revision_seen(mod, asker, "requested")

        await mod.command("decline_request", target=asker.participant_id, revision=revision)
        await asker.wait_event(lambda e: e["type"] == "request_declined")
        await becomes(asker, status="viewer")
        assert person(server, asker).status is StageStatus.VIEWER
        assert person(server, other).status is StageStatus.REQUESTED

        await synced(mod, host, other, viewer)
        for bystander in (mod, host, other, viewer):
            assert of_type(bystander, "request_declined") == [], bystander.participant_id
        assert len(of_type(asker, "request_declined")) == 1
        # Moderators learn the outcome from the queue and the participant's state.
        await host.wait_event(
            lambda e: e["type"] == "queues" and _requests(e) == [other.participant_id]
        )
        await sees(host, asker, status="viewer")

        # The requester may ask again.
        await asker.command("request_stage")
        await sees(mod, asker, status="requested")
