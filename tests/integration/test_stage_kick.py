"""Removal from the room: the session ends, its media stops, and the identity
cannot come back, neither by resuming nor with a fresh token."""

from __future__ import annotations

from signaling.roles import Role
from tests.integration.stage_support import (
    consumer,
    members,
    producer,
    refused,
    refused_unchanged,
    stage_room,
    state,
    until_forwarding,
)
from tests.media import ToneTrack


async def test_a_kicked_participant_is_disconnected_and_banned() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        mod = await cast.join("mo", role=Role.MODERATOR)
        rowdy = await cast.join("rex", entry="stage", camera=False)
        viewer = await cast.join("vera")
        await rowdy.publish([ToneTrack(0.0)])
        mic = producer(server, rowdy, "microphone")
        await until_forwarding(server, viewer, mic)
        pid, token = rowdy.participant_id, rowdy.joined["resume_token"]

        # Rank matters: a moderator cannot remove the host.
        await refused_unchanged(server, mod.command("kick", target=host.participant_id))

        await mod.command("kick", target=pid)
        bye = await rowdy.wait_event(lambda e: e["type"] == "bye")
        assert bye["reason"] == "kicked"
        await rowdy.wait_for(rowdy.closed.is_set)  # the server ended the connection
        assert mic.closed and consumer(server, viewer, mic) is None
        assert pid not in state(server).people and pid not in members(server)
        assert "rex" in state(server).banned
        for other in (host, viewer):
            await other.wait_event(
                lambda e: e["type"] == "participant_left" and e["participant_id"] == pid
            )

        await refused(cast.resume(token), "resume_failed")
        await refused(cast.join("rex"), "banned")
        await refused(cast.join("rex", entry="stage"), "banned")
        assert "rex" not in {p.identity for p in state(server).people.values()}
        # Others are unaffected.
        await cast.join("rita")
