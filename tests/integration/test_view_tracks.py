"""`view_tracks`: a viewer says how it shows each video it receives, and the server
forwards nothing to a hidden tile, with one worker and across workers alike."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from signaling.client import StageClient
from tests.integration.helpers import receive, remote_track, wait_for_tracks
from tests.media import PatternTrack, ToneTrack
from tests.server import Endpoint

pytestmark = pytest.mark.integration

WAIT = 20.0


async def _video_packets(viewer: StageClient) -> int:
    report = await viewer.subscriber.getStats()
    return sum(
        int(getattr(stats, "packetsReceived", 0))
        for stats in report.values()
        if stats.type == "inbound-rtp" and getattr(stats, "kind", "") == "video"
    )


async def _stalled(viewer: StageClient, *, window: float = 0.6, timeout: float = WAIT) -> int:
    """Wait until no video packet arrives for `window` seconds; the count at that point.
    Absence cannot be announced: it is observed over a window, bounded by `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = await _video_packets(viewer)
    since = loop.time()
    while loop.time() < deadline:
        await asyncio.sleep(0.1)
        now_count = await _video_packets(viewer)
        if now_count != last:
            last, since = now_count, loop.time()
        elif loop.time() - since >= window:
            return last
    pytest.fail(f"video kept arriving for {timeout} s after the track was hidden")


async def test_a_hidden_track_receives_nothing_until_shown_again(any_server: Endpoint) -> None:
    publisher = await StageClient.connect(
        any_server.ws_url, any_server.token("alice"), entry="stage"
    )
    viewer = await StageClient.connect(any_server.ws_url, any_server.token("bob"))
    try:
        await publisher.publish([ToneTrack(), PatternTrack()])
        await wait_for_tracks(viewer, publisher.participant_id)
        video = remote_track(viewer, publisher.participant_id, "video")
        await receive(video.track, 5)

        reply = await viewer.request(
            {"type": "view_tracks", "tracks": [{"track_id": video.track_id, "visible": False}]}
        )
        assert reply["type"] == "ack"
        stopped = await _stalled(viewer)

        reply = await viewer.request(
            {"type": "view_tracks", "tracks": [{"track_id": video.track_id, "height": 360}]}
        )
        assert reply["type"] == "ack"
        await receive(video.track, 10)  # resumed, from a key frame: the decoder keeps going
        assert await _video_packets(viewer) > stopped
        # Audio is not a tile: naming it changes nothing, and neither does an unknown id.
        audio = remote_track(viewer, publisher.participant_id, "audio")
        reply = await viewer.request(
            {
                "type": "view_tracks",
                "tracks": [
                    {"track_id": audio.track_id, "visible": False},
                    {"track_id": "no-such-track", "visible": False},
                ],
            }
        )
        assert reply["type"] == "ack"
        frames: list[Any] = await receive(audio.track, 25)
        assert len(frames) == 25
    finally:
        await viewer.close()
        await publisher.close()
