"""Commands that cross: moderators acting on the same revision, an invitation
answered while it is revoked, and retried commands applied once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from signaling.client import ServerError, StageClient
from signaling.roles import Role
from signaling.stage.model import StageStatus
from tests.integration.stage_support import (
    becomes,
    of_type,
    person,
    refused,
    revision_seen,
    sees,
    stage_room,
    state,
    synced,
)


def _one_wins(results: Sequence[object]) -> int:
    """Index of the one command that succeeded; the other must be a conflict."""
    ok = [i for i, r in enumerate(results) if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(ok) == 1, results
    assert len(failed) == 1 and isinstance(failed[0], ServerError), results
    assert failed[0].code == "conflict", failed[0]
    return ok[0]


async def test_approve_and_decline_of_the_same_request_revision_one_wins() -> None:
    async with stage_room({"rooms.stage_access": "request"}) as (server, cast):
        host = await cast.join("hana", role=Role.HOST)
        mod = await cast.join("mo", role=Role.MODERATOR)
        asker = await cast.join("ada")
        for round_ in range(4):
            await asker.command("request_stage")
            host_rev = await revision_seen(host, asker, "requested")
            mod_rev = await revision_seen(mod, asker, "requested")
            assert host_rev == mod_rev
            asker.events.clear()
            pair = [
                host.command("approve_request", target=asker.participant_id, revision=host_rev),
                mod.command("decline_request", target=asker.participant_id, revision=mod_rev),
            ]
            flip = round_ % 2 == 1  # alternate which one is sent first
            results = await asyncio.gather(*(pair[::-1] if flip else pair), return_exceptions=True)
            winner = _one_wins(results[::-1] if flip else results)
            await synced(asker)
            status = person(server, asker).status
            if winner == 0:
                assert status is StageStatus.INVITED
                assert len(of_type(asker, "invited")) == 1
                assert of_type(asker, "request_declined") == []
                invited = of_type(asker, "invited")[0]
                await asker.command("decline_invitation", revision=invited["revision"])
            else:
                assert status is StageStatus.VIEWER
                assert len(of_type(asker, "request_declined")) == 1
                assert of_type(asker, "invited") == []
            await becomes(asker, status="viewer")
            for moderator in (host, mod):
                await sees(moderator, asker, status="viewer")


async def test_an_outdated_revision_conflicts_even_when_the_status_matches() -> None:
    async with stage_room({"rooms.stage_access": "request"}) as (server, cast):
        host = await cast.join("hana", role=Role.HOST)
        asker = await cast.join("ada")
        await asker.command("request_stage")
        seen = await revision_seen(host, asker, "requested")
        # Meanwhile the request was withdrawn and made again: a different request.
        await asker.command("cancel_request")
        await asker.command("request_stage")
        assert person(server, asker).status is StageStatus.REQUESTED
        before = state(server)
        await refused(
            host.command("approve_request", target=asker.participant_id, revision=seen),
            "conflict",
        )
        await refused(
            host.command("decline_request", target=asker.participant_id, revision=seen),
            "conflict",
        )
        assert state(server) == before
        current = await revision_seen(host, asker, "requested")
        assert current > seen
        await host.command("approve_request", target=asker.participant_id, revision=current)
        await asker.wait_event(lambda e: e["type"] == "invited")


async def test_an_invitation_accepted_while_revoked_goes_one_way_only() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST)
        mod = await cast.join("mo", role=Role.MODERATOR)
        guest = await cast.join("gil")

        # One after the other: the revoked invitation cannot be accepted.
        revision = await revision_seen(host, guest, "viewer")
        await host.command("invite", target=guest.participant_id, revision=revision)
        invited = await guest.wait_event(lambda e: e["type"] == "invited")
        revision = await revision_seen(mod, guest, "invited")
        await mod.command("revoke_invitation", target=guest.participant_id, revision=revision)
        await refused(guest.command("accept_invitation", revision=invited["revision"]), "conflict")
        assert person(server, guest).status is StageStatus.VIEWER

        # At the same time: exactly one of them takes effect.
        for _ in range(3):
            await becomes(guest, status="viewer")
            revision = await revision_seen(host, guest, "viewer")
            guest.events.clear()
            await host.command("invite", target=guest.participant_id, revision=revision)
            invited = await guest.wait_event(lambda e: e["type"] == "invited")
            revision = await revision_seen(mod, guest, "invited")
            results = await asyncio.gather(
                guest.command("accept_invitation", revision=invited["revision"], camera=False),
                mod.command("revoke_invitation", target=guest.participant_id, revision=revision),
                return_exceptions=True,
            )
            if _one_wins(results) == 0:
                assert person(server, guest).status is StageStatus.ON_STAGE
                await guest.command("leave_stage")
            else:
                assert person(server, guest).status is StageStatus.VIEWER


async def _acks(client: StageClient, request_id: str, count: int) -> list[dict[str, Any]]:
    def answers() -> list[dict[str, Any]]:
        return [e for e in client.events if e.get("id") == request_id]

    await client.wait_for(lambda: len(answers()) >= count)
    return answers()


async def test_a_retried_command_id_is_applied_once() -> None:
    async with stage_room() as (server, cast):
        hand = await cast.join("hal")
        other = await cast.join("otto")
        raise_frame = json.dumps({"type": "raise_hand", "id": "hand-1"})

        await hand.send_raw(raise_frame)
        assert [a["type"] for a in await _acks(hand, "hand-1", 1)] == ["ack"]
        first_seq = person(server, hand).hand
        assert first_seq is not None
        await hand.command("lower_hand")
        assert person(server, hand).hand is None

        before = state(server)
        await hand.send_raw(raise_frame)  # the same request again, e.g. after a timeout
        assert [a["type"] for a in await _acks(hand, "hand-1", 2)] == ["ack", "ack"]
        assert state(server) == before
        assert person(server, hand).hand is None
        assert state(server).queue("hand") == []

        # A new id is a new command; ids are per participant.
        await hand.send_raw(json.dumps({"type": "raise_hand", "id": "hand-2"}))
        await _acks(hand, "hand-2", 1)
        second_seq = person(server, hand).hand
        assert second_seq is not None and second_seq > first_seq
        await other.send_raw(raise_frame)
        await _acks(other, "hand-1", 1)
        assert person(server, other).hand is not None

        # A refused command retried is refused the same way, and still changes nothing.
        frame = json.dumps({"type": "lower_all_hands", "id": "clear"})
        before = state(server)
        await hand.send_raw(frame)
        await hand.send_raw(frame)
        answers = await _acks(hand, "clear", 2)
        assert [(a["type"], a["code"]) for a in answers] == [("error", "forbidden")] * 2
        assert state(server) == before
