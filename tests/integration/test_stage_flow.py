"""The stage through the protocol, with real media: request, approval, invitation,
moderation, and their consequences at the SFU."""

from __future__ import annotations

from sfu.producer import Producer
from signaling.client import StageClient
from signaling.roles import Role
from tests.integration.helpers import member, receive, wait_for_tracks
from tests.media import PatternTrack, ToneTrack
from tests.server import RunningServer, running_server


def _producer(server: RunningServer, participant_id: str, kind: str) -> Producer:
    return next(p for p in member(server, participant_id).producers.values() if p.kind == kind)


async def test_request_approve_accept_then_moderate_and_remove() -> None:
    async with running_server({"rooms.stage_access": "request"}) as server:
        host = await StageClient.connect(
            server.ws_url, server.token("hana", role=Role.HOST), entry="stage"
        )
        alice = await StageClient.connect(server.ws_url, server.token("alice"))
        viewer = await StageClient.connect(server.ws_url, server.token("victor"))
        try:
            assert alice.joined["entries"] == ["viewer"]
            await host.publish([ToneTrack(0.2), PatternTrack()])
            await wait_for_tracks(viewer, host.participant_id)

            await alice.command("request_stage")
            request = await host.wait_event(lambda e: e["type"] == "queues" and e["requests"])
            assert request["requests"][0]["participant_id"] == alice.participant_id
            revision = host.participants[alice.participant_id]["revision"]
            await host.command("approve_request", target=alice.participant_id, revision=revision)
            invited = await alice.wait_event(lambda e: e["type"] == "invited")
            await alice.command(
                "accept_invitation", revision=invited["revision"], mic=False, camera=True
            )
            await alice.wait_for(lambda: alice.you.get("status") == "on_stage")
            assert alice.you["mic"] == "off" and alice.you["camera"] == "on"
            await alice.publish([ToneTrack(0.3), PatternTrack()])
            await wait_for_tracks(viewer, alice.participant_id)
            mic = _producer(server, alice.participant_id, "audio")
            camera = _producer(server, alice.participant_id, "video")
            # the choices made in the invitation
            assert (mic.paused, camera.paused) == (True, False)

            await host.command("mute", target=alice.participant_id, device="camera")
            await viewer.wait_for(
                lambda: viewer.participants.get(alice.participant_id, {}).get("camera") == "muted"
            )
            assert camera.paused  # enforced at the SFU, not only shown

            revision = host.participants[alice.participant_id]["revision"]
            await host.command("remove_from_stage", target=alice.participant_id, revision=revision)
            left = await alice.wait_event(lambda e: e["type"] == "stage_left")
            assert left["reason"] == "removed"
            assert camera.closed and mic.closed  # media stopped at the SFU
            await viewer.wait_for(
                lambda: not viewer.participants.get(alice.participant_id, {}).get("on_stage")
            )
        finally:
            for client in (host, alice, viewer):
                await client.close()


async def test_a_viewer_keeps_its_connection_when_the_stage_empties_and_refills() -> None:
    async with running_server() as server:
        viewer = await StageClient.connect(server.ws_url, server.token("victor"))
        first = await StageClient.connect(server.ws_url, server.token("ann"), entry="stage")
        try:
            await first.publish([ToneTrack(0.2), PatternTrack()])
            await wait_for_tracks(viewer, first.participant_id)
            await first.command("leave_stage")

            def last_offer() -> str:
                sdp: str = next(
                    e["sdp"] for e in reversed(viewer.events) if e["type"] == "subscribe_offer"
                )
                return sdp

            await viewer.wait_for(
                lambda: "m=audio 0 " in last_offer() or "m=video 0 " in last_offer()
            )
            offer = last_offer()
            # The BUNDLE tag stays, inactive, so the viewer's transport lives on.
            assert "a=group:BUNDLE 0" in offer
            assert offer.split("m=")[1].count("a=inactive") == 1

            second = await StageClient.connect(server.ws_url, server.token("bea"), entry="stage")
            try:
                await second.publish([ToneTrack(0.2), PatternTrack()])
                await wait_for_tracks(viewer, second.participant_id)
                video = next(
                    t
                    for t in viewer.tracks
                    if t.participant_id == second.participant_id and t.track.kind == "video"
                )
                await receive(video.track, 5)
            finally:
                await second.close()
        finally:
            await first.close()
            await viewer.close()
