"""A publisher on stage, viewers receiving: real aiortc peers over loopback."""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc.mediastreams import MediaStreamTrack
from av import AudioFrame, Packet, VideoFrame
from av.frame import Frame

from signaling.client import RemoteTrack, StageClient
from tests.integration.helpers import (
    local_consumers,
    member,
    receive,
    remote_track,
    stage_and_viewers,
    wait_for_tracks,
)
from tests.media import PatternTrack, ToneTrack
from tests.server import RunningServer


async def _count_frames(track: MediaStreamTrack, wanted: int) -> list[Frame | Packet[Any]]:
    frames: list[Frame | Packet[Any]] = []
    while len(frames) < wanted:
        frames.append(await track.recv())
    return frames


def _track(client: StageClient, participant_id: str, kind: str) -> RemoteTrack:
    return next(
        t for t in client.tracks if t.participant_id == participant_id and t.track.kind == kind
    )


async def test_two_viewers_decode_video_and_audio_from_a_stage_publisher(
    server: RunningServer,
) -> None:
    publisher = await StageClient.connect(server.ws_url, server.token("alice"), entry="stage")
    viewers = [
        await StageClient.connect(server.ws_url, server.token(name)) for name in ("bob", "carol")
    ]
    try:
        await publisher.publish([ToneTrack(amplitude=0.3), PatternTrack()])
        for viewer in viewers:
            await wait_for_tracks(viewer, publisher.participant_id)
        for viewer in viewers:
            video = _track(viewer, publisher.participant_id, "video").track
            audio = _track(viewer, publisher.participant_id, "audio").track
            async with asyncio.timeout(20):
                frames = await _count_frames(video, 10)
                samples = await _count_frames(audio, 10)
            picture, sound = frames[-1], samples[-1]
            assert isinstance(picture, VideoFrame) and isinstance(sound, AudioFrame)
            assert picture.width == 320 and picture.height == 240
            assert sound.sample_rate == 48000
    finally:
        for client in (publisher, *viewers):
            await client.close()


async def test_the_server_forwards_through_the_native_fan_out(server: RunningServer) -> None:
    async with stage_and_viewers(server, [ToneTrack(0.2), PatternTrack()]) as (publisher, viewers):
        await receive(remote_track(viewers[0], publisher.participant_id, "video").track, 5)
        producers = member(server, publisher.participant_id).producers.values()
        assert producers and all(p.fanout.native_path for p in producers)
        consumers = local_consumers(server, viewers[0].participant_id)
        assert all(c.packets_sent > 0 for c in consumers)
