"""Raised hands: one server-ordered queue that moderators see and clear."""

from __future__ import annotations

from typing import Any

from signaling.roles import Role
from tests.integration.stage_support import (
    becomes,
    person,
    refused_unchanged,
    sees,
    stage_room,
    state,
)


def _hands(event: dict[str, Any]) -> list[str]:
    return [entry["participant_id"] for entry in event["hands"]]


async def test_hands_queue_in_the_order_raised_and_moderators_lower_them() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        mod = await cast.join("mo", role=Role.MODERATOR)
        a = await cast.join("ann")
        b = await cast.join("ben")
        c = await cast.join("cid", entry="stage")  # hands are not only for viewers
        watcher = await cast.join("walt")

        for raiser in (b, a, c):
            await raiser.command("raise_hand")
        order = [b.participant_id, a.participant_id, c.participant_id]
        for moderator in (host, mod):
            queues = await moderator.wait_event(
                lambda e: e["type"] == "queues" and _hands(e) == order
            )
            assert [entry["position"] for entry in queues["hands"]] == [1, 2, 3]
        seqs = [person(server, x).hand for x in (b, a, c)]
        assert None not in seqs and seqs == sorted(s for s in seqs if s is not None)
        await sees(host, a, hand=seqs[1])
        await becomes(a, hand=seqs[1])
        await sees(watcher, c, hand=seqs[2])  # a stage member's hand is public
        # Plain viewers get the number of hands, not the queue.
        await watcher.wait_for(
            lambda: any(e["type"] == "counts" and e["counts"]["hands"] == 3 for e in watcher.events)
        )
        assert not any(e["type"] == "queues" for e in watcher.events)

        # Raising again keeps the place in the queue.
        first_seq = person(server, b).hand
        await b.command("raise_hand")
        assert person(server, b).hand == first_seq

        # A participant cannot lower someone else's hand.
        await refused_unchanged(server, a.command("lower_hand", target=b.participant_id))

        await a.command("lower_hand")
        await becomes(a, hand=None)
        await host.wait_event(
            lambda e: e["type"] == "queues" and _hands(e) == [b.participant_id, c.participant_id]
        )

        await mod.command("lower_hand", target=c.participant_id)
        await becomes(c, hand=None)
        await sees(watcher, c, hand=None)
        await host.wait_event(lambda e: e["type"] == "queues" and _hands(e) == [b.participant_id])

        await a.command("raise_hand")
        await host.wait_event(
            lambda e: e["type"] == "queues" and _hands(e) == [b.participant_id, a.participant_id]
        )
        await host.command("lower_all_hands")
        await mod.wait_for(
            lambda: [e for e in mod.events if e["type"] == "queues"][-1]["hands"] == []
        )
        await becomes(a, hand=None)
        await becomes(b, hand=None)
        assert all(p.hand is None for p in state(server).people.values())
