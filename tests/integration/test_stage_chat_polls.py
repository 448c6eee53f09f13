"""Room chat (for everyone, rate limited per person) and quick polls (hosts and
moderators ask, everyone votes once, results to moderators until closed)."""

from __future__ import annotations

from typing import Any

from signaling.client import StageClient
from signaling.roles import Role
from tests.integration.helpers import until
from tests.integration.stage_support import (
    of_type,
    refused,
    refused_unchanged,
    stage_room,
    state,
    synced,
)


def _chat_from(client: StageClient, sender: StageClient) -> list[str]:
    return [
        e["text"] for e in of_type(client, "chat") if e["participant_id"] == sender.participant_id
    ]


async def test_chat_reaches_everyone_and_is_rate_limited_per_person() -> None:
    async with stage_room({"rooms.chat_burst": 3, "rooms.chat_rate": 0.2}) as (_, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        talker = await cast.join("tia")
        viewer = await cast.join("vera")
        mobile = await cast.join("mona", viewer_only=True)
        everyone = (host, talker, viewer, mobile)

        await talker.request({"type": "chat", "text": "hello stage"})
        for client in everyone:
            await until(client, lambda c: _chat_from(c, talker) == ["hello stage"])
        message = of_type(viewer, "chat")[0]
        assert message["name"] == "Tia" and isinstance(message["at"], float)

        await talker.request({"type": "chat", "text": "two"})
        await talker.request({"type": "chat", "text": "three"})
        await refused(talker.request({"type": "chat", "text": "four"}), "rate_limited")
        await synced(*everyone)
        for client in everyone:
            assert _chat_from(client, talker) == ["hello stage", "two", "three"]

        # Someone else's allowance is their own.
        await viewer.request({"type": "chat", "text": "from the audience"})
        await host.wait_for(lambda: _chat_from(host, viewer) == ["from the audience"])


def _polls(client: StageClient) -> list[dict[str, Any]]:
    return [e["poll"] for e in of_type(client, "poll")]


async def test_a_quick_poll_is_seen_by_all_voted_once_and_closed_with_results() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        mod = await cast.join("mo", role=Role.MODERATOR)
        first = await cast.join("fay", entry="stage")
        second = await cast.join("sid")
        viewer = await cast.join("vera")
        voters = (first, second, viewer)

        await refused_unchanged(
            server, first.command("create_poll", question="Mine?", options=["a", "b"])
        )
        await host.command("create_poll", question="Lunch?", options=["soup", "salad", "pie"])
        for client in (host, mod, *voters):
            await until(client, lambda c: len(_polls(c)) == 1)
        created = _polls(viewer)[0]
        assert created["question"] == "Lunch?" and created["options"] == ["soup", "salad", "pie"]
        assert created["closed"] is False and created["results"] is None
        assert _polls(mod)[0]["results"] == [0, 0, 0]
        poll_id = created["poll_id"]
        assert _polls(host)[0]["poll_id"] == poll_id

        await first.command("vote", poll_id=poll_id, option=0)
        await second.command("vote", poll_id=poll_id, option=1)
        await viewer.command("vote", poll_id=poll_id, option=1)
        await refused_unchanged(server, first.command("vote", poll_id=poll_id, option=2),
                                "conflict")  # fmt: skip
        for moderator in (host, mod):
            await until(moderator, lambda m: _polls(m)[-1]["results"] == [1, 2, 0])
        await synced(*voters)
        for voter in voters:
            assert len(_polls(voter)) == 1  # votes are not broadcast to participants
        await refused_unchanged(server, first.command("close_poll", poll_id=poll_id))

        await mod.command("close_poll", poll_id=poll_id)
        for client in (host, mod, *voters):
            await until(client, lambda c: _polls(c)[-1]["closed"] is True)
            assert _polls(client)[-1]["results"] == [1, 2, 0]
        await refused(second.command("vote", poll_id=poll_id, option=0), "conflict")
        assert state(server).polls[poll_id].results() == [1, 2, 0]

        late = await cast.join("lou")
        assert late.joined["polls"] == [_polls(viewer)[-1]]
