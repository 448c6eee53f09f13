"""Key frames and loss repair through the SFU, with real aiortc peers."""

from __future__ import annotations

from tests.impaired_client import request_key_frame, simulate_downlink_loss
from tests.integration.helpers import (
    local_consumers,
    member,
    poll_until,
    receive,
    remote_track,
    stage_and_viewers,
)
from tests.media import PatternTrack, ToneTrack
from tests.server import RunningServer


async def test_a_viewer_pli_is_relayed_and_produces_a_key_frame(server: RunningServer) -> None:
    async with stage_and_viewers(server, [ToneTrack(), PatternTrack()]) as (publisher, viewers):
        viewer = viewers[0]
        video = remote_track(viewer, publisher.participant_id, "video")
        await receive(video.track, 5)
        producer = next(
            p
            for p in member(server, publisher.participant_id).producers.values()
            if p.kind == "video"
        )
        consumer = next(
            c for c in local_consumers(server, viewer.participant_id) if c.kind == "video"
        )
        key_frames, requests = producer.key_frames_received, producer.key_frame_requests_sent

        await request_key_frame(viewer, video)

        await poll_until(lambda: consumer.key_frame_requests_received == 1)
        await poll_until(lambda: producer.key_frame_requests_sent == requests + 1)
        await poll_until(lambda: producer.key_frames_received > key_frames)


async def test_five_percent_loss_toward_a_viewer_is_fully_repaired(server: RunningServer) -> None:
    async with stage_and_viewers(server, [ToneTrack(), PatternTrack()], viewers=2) as (
        publisher,
        viewers,
    ):
        lossy, clean = viewers
        loss = simulate_downlink_loss(lossy, 0.05, seed=7)
        video = remote_track(lossy, publisher.participant_id, "video")
        await receive(video.track, 60, timeout=30)
        ssrc = next(iter(loss.received))
        await poll_until(lambda: len(loss.received[ssrc]) >= 300, timeout=30)

        consumer = next(
            c for c in local_consumers(server, lossy.participant_id) if c.kind == "video"
        )
        assert loss.dropped >= 5, "the impairment must actually drop packets"
        await poll_until(lambda: not loss.holes(ssrc), timeout=10)
        assert consumer.retransmissions_sent >= loss.dropped - loss.holes(ssrc).__len__()
        assert consumer.retransmission_misses == 0
        # The viewer without loss needed no repair at all.
        other = next(c for c in local_consumers(server, clean.participant_id) if c.kind == "video")
        assert other.retransmissions_sent == 0
