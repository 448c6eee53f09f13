"""Speaking detection from RFC 6464 levels, and the opt-in decode fallback."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from signaling.client import StageClient
from tests.integration.helpers import member, stage_and_viewers
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
        assert audio.payload_sink is None  # levels come from the extension, nothing is decoded


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
        assert audio.payload_sink is not None
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
        assert audio.payload_sink is None
