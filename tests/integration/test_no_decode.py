"""The forwarding path never decodes or encodes: proven by recording every codec
construction in the process and where it came from.

The aiortc clients in these tests decode and encode (they are the endpoints);
the server must not. A positive control shows the recorder does see the one
place the server may decode: the opt-in Opus level fallback.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiortc.codecs
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
import av
import pytest

import sfu
from tests.integration.helpers import receive, remote_track, stage_and_viewers
from tests.integration.test_speaking import _without_audio_level
from tests.media import PatternTrack, ToneTrack
from tests.server import RunningServer, running_server

SFU_DIR = str(Path(sfu.__file__).resolve().parent)


class CodecRecorder:
    """Every codec construction, with whether media-core code was on the stack."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            from_sfu = any(
                frame.filename.startswith(SFU_DIR) for frame in traceback.extract_stack()
            )
            self.calls.append((name, from_sfu))
            return original(*args, **kwargs)

        return recorded

    @property
    def from_sfu(self) -> list[str]:
        return [name for name, sfu_code in self.calls if sfu_code]


@pytest.fixture
def codecs(monkeypatch: pytest.MonkeyPatch) -> Iterator[CodecRecorder]:
    recorder = CodecRecorder()
    # Replaced where they are called; rtcrtpreceiver and rtcrtpsender import them from codecs.
    monkeypatch.setattr(
        aiortc.rtcrtpreceiver,
        "get_decoder",
        recorder.wrap("decoder", aiortc.codecs.get_decoder),
    )
    monkeypatch.setattr(
        aiortc.rtcrtpsender,
        "get_encoder",
        recorder.wrap("encoder", aiortc.codecs.get_encoder),
    )
    monkeypatch.setattr(av.CodecContext, "create", recorder.wrap("av", av.CodecContext.create))
    yield recorder


async def test_forwarding_constructs_no_decoder_or_encoder(
    server: RunningServer, codecs: CodecRecorder
) -> None:
    async with stage_and_viewers(server, [ToneTrack(0.3), PatternTrack()], viewers=2) as (
        publisher,
        viewers,
    ):
        for viewer in viewers:
            await receive(remote_track(viewer, publisher.participant_id, "video").track, 10)
            await receive(remote_track(viewer, publisher.participant_id, "audio").track, 10)
    names = [name for name, _ in codecs.calls]
    # The clients did construct codecs (so the recorder works) ...
    assert names.count("decoder") >= 4 and names.count("encoder") >= 2
    # ... and none of them came from the media core.
    assert codecs.from_sfu == []


async def test_the_recorder_sees_the_opt_in_fallback_decoder(codecs: CodecRecorder) -> None:
    async with (
        running_server({"audio_level.decode_fallback": True}) as server,
        stage_and_viewers(server, [ToneTrack(0.3), PatternTrack()], munge=_without_audio_level) as (
            _,
            viewers,
        ),
    ):
        await viewers[0].wait_for(
            lambda: any(e["type"] == "speaking" for e in viewers[0].events), timeout=10
        )
    assert codecs.from_sfu == ["av"]
