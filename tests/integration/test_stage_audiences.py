"""Who is told what in a large room: plain viewers get counts instead of a message
per viewer, moderators get every arrival and departure, and stage changes reach
everyone."""

from __future__ import annotations

from typing import Any

from signaling.client import StageClient
from signaling.roles import Role
from tests.integration.helpers import until
from tests.integration.stage_support import (
    becomes,
    of_type,
    person,
    sees,
    stage_room,
    synced,
)

VIEWERS = 6


def _about(client: StageClient, kinds: tuple[str, ...], pids: set[str]) -> list[dict[str, Any]]:
    def subject(e: dict[str, Any]) -> str:
        return str(
            e["participant"]["participant_id"] if "participant" in e else e["participant_id"]
        )

    return [e for e in client.events if e["type"] in kinds and subject(e) in pids]


async def test_plain_viewers_get_counts_not_viewer_arrivals_while_moderators_get_them() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        viewers = [await cast.join(f"viewer{i}") for i in range(VIEWERS)]
        leaving = viewers[3:]
        staying = viewers[:3]
        for viewer in leaving:
            await viewer.leave()
        viewer_ids = {v.participant_id for v in viewers}
        changes = len(viewers) + len(leaving)

        # The host hears of every arrival and departure.
        await host.wait_for(
            lambda: len(_about(host, ("participant_left",), viewer_ids)) == len(leaving)
        )
        assert {e["participant"]["participant_id"] for e in of_type(host, "participant_joined")} \
            == viewer_ids  # fmt: skip

        # Plain viewers get the numbers, coalesced, and nothing about each other.
        expected = {"viewers": len(staying), "on_stage": 1, "hands": 0, "requests": 0}
        for viewer in staying:
            await until(
                viewer,
                lambda v: (
                    bool(of_type(v, "counts")) and of_type(v, "counts")[-1]["counts"] == expected
                ),
            )
        await synced(*staying)
        for viewer in staying:
            others = viewer_ids - {viewer.participant_id}
            kinds = ("participant_joined", "participant_left", "participant_updated")
            assert _about(viewer, kinds, others) == [], viewer.participant_id
            assert set(viewer.participants) == {host.participant_id, viewer.participant_id}
        assert len(of_type(staying[0], "counts")) < changes
        assert not any(of_type(v, "queues") or of_type(v, "snapshot") for v in staying)

        # A stage change reaches everyone, even about a plain viewer.
        climber = staying[0]
        await climber.command("join_stage", camera=False)
        for viewer in staying[1:]:
            await sees(viewer, climber, on_stage=True, status="on_stage", mic="on")
        await sees(host, climber, on_stage=True)
        await climber.command("leave_stage")
        for viewer in staying[1:]:
            await sees(viewer, climber, on_stage=False, status="viewer")

        # Back among the viewers, their changes are the moderators' business again.
        watcher = staying[1]
        updates_before = len(_about(watcher, ("participant_updated",), {climber.participant_id}))
        await climber.command("raise_hand")
        await sees(host, climber, hand=person(server, climber).hand)
        await becomes(climber, hand=person(server, climber).hand)
        await synced(watcher)
        assert (
            len(_about(watcher, ("participant_updated",), {climber.participant_id}))
            == updates_before
        )
