"""The participants list (on stage, requests and hands, viewers, with counts, role
labels and mic state), the speaking indicator and what each tile shows."""

from __future__ import annotations

from typing import Any

from signaling.client import StageClient
from signaling.roles import Role
from tests.integration.helpers import until
from tests.integration.stage_support import (
    forwarding,
    of_type,
    producer,
    sees,
    stage_room,
    until_forwarding,
)
from tests.media import PatternTrack, ToneTrack


def _sections(participants: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Group a list as the participants panel does."""
    on_stage = {p["name"] for p in participants if p["on_stage"]}
    waiting = {
        p["name"]
        for p in participants
        if not p["on_stage"] and (p["status"] == "requested" or p["hand"] is not None)
    }
    viewers = {p["name"] for p in participants if not p["on_stage"]} - waiting
    return {"on_stage": on_stage, "waiting": waiting, "viewers": viewers}


async def test_a_moderator_gets_the_whole_list_in_sections_and_a_viewer_gets_the_stage() -> None:
    async with stage_room({"rooms.stage_access": "request"}) as (_, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage", camera=False)
        await cast.join("mo", role=Role.MODERATOR)
        panelist = await cast.join("pia")
        asker = await cast.join("ada")
        hander = await cast.join("hal")
        await cast.join("vera")
        await cast.join("walt", viewer_only=True)
        await host.command("set_speaker", target=panelist.participant_id, speaker=True)
        await panelist.command("join_stage", mic=False)
        await asker.command("request_stage")
        await hander.command("raise_hand")

        late = await cast.join("max", role=Role.MODERATOR)
        listed = late.joined["participants"]
        assert _sections(listed) == {
            "on_stage": {"Hana", "Pia"},
            "waiting": {"Ada", "Hal"},
            "viewers": {"Mo", "Vera", "Walt", "Max"},
        }
        assert late.joined["counts"] == {"viewers": 6, "on_stage": 2, "hands": 1, "requests": 1}
        by_name = {p["name"]: p for p in listed}
        assert {name: p["role"] for name, p in by_name.items()} == {
            "Hana": "host", "Mo": "moderator", "Max": "moderator", "Pia": "participant",
            "Ada": "participant", "Hal": "participant", "Vera": "participant",
            "Walt": "participant",
        }  # fmt: skip
        assert [name for name, p in by_name.items() if p["speaker"]] == ["Pia"]
        assert [name for name, p in by_name.items() if p["viewer_only"]] == ["Walt"]
        assert by_name["Ada"]["status"] == "requested" and by_name["Hal"]["hand"] is not None
        assert (by_name["Hana"]["mic"], by_name["Hana"]["camera"]) == ("on", "off")
        assert (by_name["Pia"]["mic"], by_name["Pia"]["camera"]) == ("off", "on")
        assert all(p["mic"] == "off" for p in listed if not p["on_stage"])

        # A plain viewer gets the stage (with its mic states), themselves and the numbers.
        plain = await cast.join("val")
        seen = {p["name"]: p for p in plain.joined["participants"]}
        assert set(seen) == {"Hana", "Pia", "Val"}
        assert seen["Hana"]["mic"] == "on" and seen["Pia"]["mic"] == "off"
        assert plain.joined["counts"] == {"viewers": 7, "on_stage": 2, "hands": 1, "requests": 1}

        # Asking for the stage puts them in the full view: a snapshot of everyone.
        await plain.command("request_stage")
        snapshot = await plain.wait_event(lambda e: e["type"] == "snapshot")
        assert _sections(snapshot["participants"]) == {
            "on_stage": {"Hana", "Pia"},
            "waiting": {"Ada", "Hal", "Val"},
            "viewers": {"Mo", "Vera", "Walt", "Max"},
        }
        assert snapshot["counts"]["requests"] == 2
        assert {p["name"] for p in plain.participants.values()} == {
            "Hana", "Mo", "Pia", "Ada", "Hal", "Vera", "Walt", "Max", "Val"
        }  # fmt: skip
        assert of_type(plain, "queues") == []  # the queues stay with the moderators


async def test_speaking_indicator_and_tile_state_follow_the_media() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage", camera=False)
        panelist = await cast.join("pia", entry="stage", mic=False)
        viewer = await cast.join("vera")
        voice = ToneTrack(0.0)
        await host.publish([voice])
        await panelist.publish([PatternTrack()])
        camera = producer(server, panelist, "camera")
        await until_forwarding(server, viewer, camera)
        pid = panelist.participant_id
        await viewer.wait_for(
            lambda: [t["source"] for t in viewer.participants[pid]["tracks"]] == ["camera"]
        )
        await sees(viewer, panelist, camera="on", mic="off")

        # Camera off: the tile shows initials, and no video is forwarded.
        await panelist.command("set_device", device="camera", on=False)
        await sees(viewer, panelist, camera="off")
        assert camera.paused and not forwarding(server, viewer, camera)
        await panelist.command("set_device", device="camera", on=True)
        await sees(viewer, panelist, camera="on")
        assert forwarding(server, viewer, camera)

        # The speaking indicator follows the level of the host's microphone.
        def speaking(client: StageClient) -> list[bool]:
            return [e["speaking"] for e in of_type(client, "speaking")
                    if e["participant_id"] == host.participant_id]  # fmt: skip

        assert speaking(viewer) == []
        voice.amplitude = 0.3
        for watcher in (viewer, panelist):
            await until(watcher, lambda w: speaking(w)[-1:] == [True])
        voice.amplitude = 0.0
        await viewer.wait_for(lambda: speaking(viewer)[-1:] == [False])
        assert speaking(viewer) == [True, False]
