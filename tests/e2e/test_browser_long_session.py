"""A long panel session seen by a Chromium viewer: hundreds of stage entries, and the
page's subscribe offer stays small (ended m-sections are reused) while every newcomer is
heard."""

from __future__ import annotations

import pytest

from signaling.client import StageClient
from signaling.roles import Role
from tests.e2e.conftest import Join, Participant, poll
from tests.media import ToneTrack
from tests.server import RunningServer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

ENTRIES = 300
SDP_BOUND = 8192  # the BUNDLE tag and one live audio m-section, with room to spare
HEARD_TIMEOUT = 20.0


async def _offer_size(viewer: Participant) -> int:
    size: int = await viewer.page.evaluate(
        "window.stageClient.subscriber.remoteDescription?.sdp.length ?? 0"
    )
    return size


async def _offered(viewer: Participant, participant_id: str) -> None:
    """Until the page has applied an offer that sends it this participant's track."""
    await poll(
        lambda: viewer.page.evaluate(
            "(id) => window.stageClient.remoteTracks"
            " && [...window.stageClient.remoteTracks.values()].some((t) => t.participantId === id)",
            participant_id,
        ),
        bool,
        timeout=HEARD_TIMEOUT,
        what=f"an offer with {participant_id}'s track",
        describe=viewer.describe,
    )


async def _heard(viewer: Participant, participant_id: str) -> None:
    await viewer.wait_for_stats(
        lambda stats: stats["byParticipant"].get(participant_id, {}).get("audioSamples", 0) > 0,
        timeout=HEARD_TIMEOUT,
        what=f"audio from {participant_id}",
    )


@pytest.mark.timeout(300)
async def test_three_hundred_stage_entries_keep_the_page_offer_small_and_all_are_heard(
    server: RunningServer, join: Join
) -> None:
    viewer = await join("viewer", "viewer")
    sizes: list[int] = []
    for n in range(ENTRIES):
        speaker = await StageClient.connect(
            server.ws_url, server.token(f"speaker-{n}", role=Role.HOST), entry="stage"
        )
        try:
            await speaker.publish([ToneTrack()])
            await _offered(viewer, speaker.participant_id)
            if n % 30 == 0 or n == ENTRIES - 1:  # the page plays it on a reused m-section
                await _heard(viewer, speaker.participant_id)
                sizes.append(await _offer_size(viewer))
        finally:
            await speaker.leave()
            await speaker.close()

    assert max(sizes) < SDP_BOUND, sizes
    assert not [line for line in viewer.console if "rror" in line], viewer.describe()
