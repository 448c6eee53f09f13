"""Speaking detection from RFC 6464 levels, and the opt-in decode fallback."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from av import AudioFrame

from signaling.client import StageClient
from signaling.publishing import CAMERA_PRIORITY, SPEAKER_PRIORITY
from tests.integration.helpers import member, poll_until, stage_and_viewers
from tests.media import PatternTrack, ToneTrack
from tests.server import RunningServer, running_server


def _speaking(viewer: StageClient, participant_id: str) -> list[bool]:
    return [
        e["speaking"]
        for e in viewer.events
        if e["type"] == "speaking" and e["participant_id"] == participant_id
    ]


async def _assert_speaking_follows_the_tone(
    publisher: StageClient, viewer: StageClient, tone: ToneTrack
) -> None:
    pid = publisher.participant_id
    assert _speaking(viewer, pid) == []  # silent so far: nothing to announce

    tone.amplitude = 0.3
    await viewer.wait_for(lambda: _speaking(viewer, pid)[-1:] == [True], timeout=10)
    tone.amplitude = 0.0
    await viewer.wait_for(lambda: _speaking(viewer, pid)[-1:] == [False], timeout=10)
    assert _speaking(viewer, pid) == [True, False]  # hysteresis: no flapping in between


async def test_speaking_flips_when_the_level_crosses_the_threshold(
    server: RunningServer,
) -> None:
    tone = ToneTrack(amplitude=0.0)
    async with stage_and_viewers(server, [tone, PatternTrack()]) as (publisher, viewers):
        await _assert_speaking_follows_the_tone(publisher, viewers[0], tone)
        audio = next(
            p
            for p in member(server, publisher.participant_id).producers.values()
            if p.kind == "audio"
        )
        assert audio.audio_level_id is not None
        assert audio.payload_tap is None  # levels come from the extension, nothing is decoded


@pytest.fixture
async def fallback_server() -> AsyncIterator[RunningServer]:
    async with running_server({"audio_level.decode_fallback": True}) as server:
        yield server


def _without_audio_level(sdp: str) -> str:
    return re.sub(r"a=extmap:\d+ urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n", "", sdp)


async def test_publishers_without_the_level_extension_are_measured_by_decoding(
    fallback_server: RunningServer,
) -> None:
    tone = ToneTrack(amplitude=0.0)
    async with stage_and_viewers(
        fallback_server, [tone, PatternTrack()], munge=_without_audio_level
    ) as (publisher, viewers):
        audio = next(
            p
            for p in member(fallback_server, publisher.participant_id).producers.values()
            if p.kind == "audio"
        )
        assert audio.audio_level_id is None
        assert audio.payload_tap is not None
        await _assert_speaking_follows_the_tone(publisher, viewers[0], tone)


async def test_the_fallback_is_not_used_when_the_extension_is_present(
    fallback_server: RunningServer,
) -> None:
    async with stage_and_viewers(fallback_server, [ToneTrack(0.3), PatternTrack()]) as (
        publisher,
        _,
    ):
        audio = next(
            p
            for p in member(fallback_server, publisher.participant_id).producers.values()
            if p.kind == "audio"
        )
        assert audio.audio_level_id is not None
        assert audio.payload_tap is None


class GappyToneTrack(ToneTrack):
    """A tone whose sender skips `gap_frames` 20 ms frames, `gaps` times, with
    `between_frames` frames sent in between: no packets leave during a gap, as when
    they are lost or dropped as late, and the RTP clock jumps over it."""

    def __init__(self, amplitude: float, *, gap_frames: int, between_frames: int) -> None:
        super().__init__(amplitude)
        self.gap_frames = gap_frames
        self.between_frames = between_frames
        self.gaps = 0  # still to make
        self._sent = 0

    async def recv(self) -> AudioFrame:
        frame = await super().recv()
        self._sent += 1
        if self.gaps and self._sent >= self.between_frames:
            for _ in range(self.gap_frames):  # paced but never sent
                frame = await super().recv()
            self.gaps -= 1
            self._sent = 0
        return frame


async def test_gaps_in_a_speakers_audio_do_not_make_speaking_flap(server: RunningServer) -> None:
    # 0.6 s without packets (longer than the 0.5 s hold), ten times within 10 s of speech.
    tone = GappyToneTrack(0.3, gap_frames=30, between_frames=20)
    async with stage_and_viewers(server, [tone, PatternTrack()]) as (publisher, viewers):
        viewer, pid = viewers[0], publisher.participant_id
        await viewer.wait_for(lambda: _speaking(viewer, pid)[-1:] == [True], timeout=10)
        tone.gaps = 10
        await poll_until(lambda: tone.gaps == 0, timeout=30)
        tone.amplitude = 0.0
        await viewer.wait_for(lambda: _speaking(viewer, pid)[-1:] == [False], timeout=10)
        assert _speaking(viewer, pid) == [True, False]


async def test_the_active_speakers_camera_ranks_above_other_cameras(
    server: RunningServer,
) -> None:
    tone = ToneTrack(amplitude=0.0)
    async with stage_and_viewers(server, [tone, PatternTrack()]) as (publisher, viewers):
        camera = next(
            p
            for p in member(server, publisher.participant_id).producers.values()
            if p.kind == "video"
        )
        assert camera.priority == CAMERA_PRIORITY
        tone.amplitude = 0.3
        await poll_until(lambda: camera.priority == SPEAKER_PRIORITY, timeout=10)
        await viewers[0].wait_for(
            lambda: any(
                e["type"] == "active_speaker" and e["participant_id"] == publisher.participant_id
                for e in viewers[0].events
            ),
            timeout=10,
        )  # and the room said so: the same event ranked the camera
