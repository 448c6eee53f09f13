"""Negotiation rules for publishers, on real Chromium and aiortc offers."""

from __future__ import annotations

import re
from pathlib import Path

from sfu import ortc, sdp
from sfu.rtp_parameters import URI_AUDIO_LEVEL, URI_MID, ReceiveParameters
from sfu.types import MediaKind

DATA = Path(__file__).resolve().parents[1] / "data" / "sdp"


def _offer(name: str) -> sdp.SessionDescription:
    return sdp.parse((DATA / name).read_text())


def _answers(
    offer: sdp.SessionDescription,
) -> list[tuple[sdp.MediaSection, ReceiveParameters | None]]:
    return [ortc.answer_publish_section(section) for section in offer.media]


def test_chromium_publish_offer_is_answered_with_opus_and_vp8_plus_rtx() -> None:
    (audio, audio_params), (video, video_params) = _answers(_offer("chromium_publish_offer.sdp"))
    assert [c.name for c in audio.codecs] == ["opus"]
    assert [c.name for c in video.codecs] == ["VP8", "rtx"]
    assert video.codecs[1].apt == video.codecs[0].payload_type
    assert audio.direction == sdp.Direction.RECVONLY
    assert video.direction == sdp.Direction.RECVONLY
    assert audio_params is not None and video_params is not None
    assert video_params.rtx_ssrc is not None and video_params.ssrc is not None
    # The answer keeps the publisher's numbering (RFC 3264 §6.1) ...
    assert audio_params.extensions[URI_AUDIO_LEVEL] == audio.extension_id(URI_AUDIO_LEVEL)
    # ... and only feedback the SFU acts on: no transport-cc, which it does not implement.
    assert "transport-cc" not in video.codecs[0].rtcp_fb
    assert set(video.codecs[0].rtcp_fb) <= {"goog-remb", "ccm fir", "nack", "nack pli"}


def test_h264_is_negotiated_for_pass_through_when_vp8_is_not_offered() -> None:
    text = (DATA / "chromium_publish_offer.sdp").read_text()
    without_vp8 = re.sub(r"a=(rtpmap|rtcp-fb|fmtp):96 [^\r\n]*\r\n", "", text)
    without_vp8 = without_vp8.replace("UDP/TLS/RTP/SAVPF 96 97 ", "UDP/TLS/RTP/SAVPF ")
    (_, _), (video, params) = _answers(sdp.parse(without_vp8))
    assert video.codecs[0].name == "H264"
    assert video.codecs[0].parameters["packetization-mode"] == "1"
    assert params is not None and params.codec.name == "H264"
    offered = ortc.consumer_codec(params.codec)
    assert offered.payload_type == ortc.PAYLOAD_TYPES["H264"]
    assert offered.parameters == video.codecs[0].parameters  # same profile for the viewers


def test_aiortc_offer_is_accepted_in_its_own_numbering() -> None:
    answers = _answers(_offer("aiortc_offer.sdp"))
    kinds = {section.kind: params for section, params in answers}
    audio, video = kinds["audio"], kinds["video"]
    assert audio is not None and video is not None
    assert audio.codec.name == "opus"
    assert video.codec.name == "VP8"


def test_sections_that_cannot_be_forwarded_are_rejected_with_port_zero() -> None:
    section = sdp.MediaSection(
        kind="video",
        port=9,
        mid="0",
        direction=sdp.Direction.SENDONLY,
        codecs=(sdp.Codec(kind="video", payload_type=45, name="AV1", clock_rate=90000),),
    )
    answer, params = ortc.answer_publish_section(section)
    assert answer.rejected and params is None
    recvonly = sdp.MediaSection(
        kind="audio",
        port=9,
        mid="1",
        direction=sdp.Direction.RECVONLY,
        codecs=(
            sdp.Codec(kind="audio", payload_type=111, name="opus", clock_rate=48000, channels=2),
        ),
    )
    answer, params = ortc.answer_publish_section(recvonly)
    assert not answer.rejected and answer.direction == sdp.Direction.INACTIVE and params is None


def test_viewer_offers_use_the_sfu_wide_extension_ids() -> None:
    ids = {e.uri: e.id for e in ortc.consumer_extensions(MediaKind.AUDIO)}
    assert ids[URI_MID] == ortc.EXTENSION_IDS[URI_MID]
    assert ids[URI_AUDIO_LEVEL] == ortc.EXTENSION_IDS[URI_AUDIO_LEVEL]
