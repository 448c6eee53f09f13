"""A long panel session: people take the stage and leave it, hundreds of times, while one
viewer watches. The viewer's subscribe offer reuses ended m-sections, so its size follows
what is on stage now, and every newcomer is still received."""

from __future__ import annotations

from functools import partial

import pytest

from sfu.webrtc_transport import WebRtcTransport
from signaling.client import StageClient
from signaling.roles import Role
from tests.integration.helpers import member, receive, remote_track
from tests.media import ToneTrack
from tests.server import RunningServer

ENTRIES = 300
SDP_BOUND = 4096  # one BUNDLE tag and one live audio m-section, with room to spare


def _receives_from(viewer: StageClient, participant_id: str) -> bool:
    return any(track.participant_id == participant_id for track in viewer.tracks)


@pytest.mark.timeout(240)
async def test_three_hundred_stage_entries_leave_the_viewer_sdp_bounded_and_all_received(
    server: RunningServer,
) -> None:
    viewer = await StageClient.connect(server.ws_url, server.token("viewer"))
    sizes: list[int] = []
    tracked: list[int] = []  # outgoing SSRCs with SRTP state on the viewer's connection
    try:
        for n in range(ENTRIES):
            speaker = await StageClient.connect(
                server.ws_url, server.token(f"speaker-{n}", role=Role.HOST), entry="stage"
            )
            try:
                await speaker.publish([ToneTrack()])
                newcomer = speaker.participant_id
                await viewer.wait_for(partial(_receives_from, viewer, newcomer))
                sizes.append(len(viewer._offer_sdp))
                transport = member(server, viewer.participant_id).recv_transport
                assert isinstance(transport, WebRtcTransport)
                tracked.append(transport.tracked_ssrcs)
                if n % 50 == 0 or n == ENTRIES - 1:  # media really flows on a reused section
                    track = remote_track(viewer, newcomer, "audio").track
                    assert len(await receive(track, 3)) == 3
            finally:
                await speaker.leave()
                await speaker.close()
    finally:
        await viewer.close()

    assert max(sizes) < SDP_BOUND, max(sizes)
    # Per-SSRC state goes with its consumer: the live stream, and at most the one ending.
    assert max(tracked) <= 2, tracked


async def test_a_newcomer_is_offered_the_stage_in_publishing_order(server: RunningServer) -> None:
    speakers = []
    try:
        for n in range(5):
            speaker = await StageClient.connect(
                server.ws_url, server.token(f"speaker-{n}", role=Role.HOST), entry="stage"
            )
            speakers.append(speaker)
            await speaker.publish([ToneTrack()])
        viewer = await StageClient.connect(server.ws_url, server.token("viewer"))
        try:
            await viewer.wait_for(lambda: len(viewer.tracks) == len(speakers))
            offered = [
                line.split()[0].removeprefix("a=msid:")
                for line in viewer._offer_sdp.splitlines()
                if line.startswith("a=msid:")
            ]
        finally:
            await viewer.leave()
            await viewer.close()
    finally:
        for speaker in speakers:
            await speaker.leave()
            await speaker.close()

    assert offered == [speaker.participant_id for speaker in speakers]
