"""Negotiation rules for publishers, on real Chromium and aiortc offers."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from sfu import ortc, sdp
from sfu.errors import NegotiationError
from sfu.rtp_parameters import (
    URI_AUDIO_LEVEL,
    URI_MID,
    URI_REPAIRED_RID,
    URI_RID,
    ReceiveParameters,
)
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


# --- simulcast (RFC 8853, RFC 8851, RFC 8852) ----------------------------------------------

# Chromium's video section for sendEncodings [{rid: "q", scaleResolutionDownBy: 4},
# {rid: "h", scaleResolutionDownBy: 2}, {rid: "f"}]: rids, simulcast, no a=ssrc lines.
SIMULCAST_OFFER = (DATA / "chromium_simulcast_offer.sdp").read_bytes().decode()
CHROMIUM_SIMULCAST = "a=rid:q send\r\na=rid:h send\r\na=rid:f send\r\na=simulcast:send q;h;f\r\n"


def _simulcast_video(rid_lines: str) -> sdp.MediaSection:
    """The captured simulcast offer's video section with `rid_lines` (a=rid and
    a=simulcast lines, "\n"-separated) in place of Chromium's."""
    assert SIMULCAST_OFFER.endswith(CHROMIUM_SIMULCAST)
    lines = "".join(line + "\r\n" for line in rid_lines.split("\n") if line)
    video = sdp.parse(SIMULCAST_OFFER.removesuffix(CHROMIUM_SIMULCAST) + lines).section("1")
    assert video is not None
    return video


def _answer_lines(answer: sdp.MediaSection) -> list[str]:
    text = sdp.serialize(sdp.SessionDescription(origin_session_id=1, media=(answer,)))
    return text.split("\r\n")


def test_chromium_simulcast_offer_is_answered_with_recv_rids_simulcast_and_rid_extensions() -> None:
    (audio, audio_params), (video, params) = _answers(sdp.parse(SIMULCAST_OFFER))
    lines = _answer_lines(video)
    at = lines.index("a=simulcast:recv q;h;f")
    assert lines[at - 3 : at] == ["a=rid:q recv", "a=rid:h recv", "a=rid:f recv"]
    assert "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id" in lines
    assert "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id" in lines
    assert [c.name for c in video.codecs] == ["VP8", "rtx"]
    assert video.direction == sdp.Direction.RECVONLY
    assert params is not None
    assert params.rids == ("q", "h", "f")
    # The encodings' SSRCs come from the wire, bound by the rid extensions' ids.
    assert params.ssrc is None and params.rtx_ssrc is None
    assert params.rtx_payload_type == 97
    assert params.extensions[URI_RID] == 10
    assert params.extensions[URI_REPAIRED_RID] == 11
    assert params.extensions[URI_MID] == 4
    # The audio section of the same offer is one encoding, answered as always.
    assert audio_params is not None and audio_params.rids == ()
    assert audio.rids == () and audio.simulcast is None


def test_single_encoding_answers_are_unchanged_and_keep_no_rid_extensions() -> None:
    # Chromium offers the rid extensions on every video section; without simulcast
    # the answer leaves them out, exactly as before simulcast was negotiated.
    (_, _), (video, params) = _answers(_offer("chromium_publish_offer.sdp"))
    assert _answer_lines(video)[4:] == [
        "a=msid-semantic: WMS *", "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0", "a=mid:1",
        "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "a=extmap:13 urn:3gpp:video-orientation",
        "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid", "a=recvonly", "a=rtcp-mux",
        "a=rtcp-rsize", "a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 goog-remb",
        "a=rtcp-fb:96 ccm fir", "a=rtcp-fb:96 nack", "a=rtcp-fb:96 nack pli",
        "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96", "",
    ]  # fmt: skip
    assert params is not None and params.rids == () and params.ssrc == 356537970


def test_rid_lines_without_simulcast_are_ignored() -> None:
    video = _simulcast_video("a=rid:q send\na=rid:h send")
    answer, params = ortc.answer_publish_section(video)
    assert answer.rids == () and answer.simulcast is None
    assert answer.extension_id(URI_RID) is None
    assert params is not None and params.rids == ()


def test_size_restrictions_order_the_rids_lowest_first_and_the_answer_keeps_offer_order() -> None:
    video = _simulcast_video(
        "a=rid:f send max-width=1280;max-height=720\n"
        "a=rid:h send max-width=640;max-height=360\n"
        "a=rid:q send max-width=320;max-height=180\n"
        "a=simulcast:send f;h;q"
    )
    answer, params = ortc.answer_publish_section(video)
    assert params is not None and params.rids == ("q", "h", "f")
    assert answer.rids == (("f", "recv"), ("h", "recv"), ("q", "recv"))
    assert answer.simulcast == "recv f;h;q"
    assert "a=rid:f recv" in _answer_lines(answer)  # restrictions are not echoed


def test_equal_heights_are_ordered_by_width() -> None:
    video = _simulcast_video(
        "a=rid:wide send max-width=1280;max-height=720\n"
        "a=rid:narrow send max-width=960;max-height=720\n"
        "a=simulcast:send wide;narrow"
    )
    _, params = ortc.answer_publish_section(video)
    assert params is not None and params.rids == ("narrow", "wide")


def test_rids_without_size_restrictions_keep_their_offer_position() -> None:
    video = _simulcast_video(
        "a=rid:f send max-height=720\na=rid:h send max-fps=30\na=rid:q send max-height=180\n"
        "a=simulcast:send f;h;q"
    )
    _, params = ortc.answer_publish_section(video)
    assert params is not None and params.rids == ("q", "h", "f")


def test_a_paused_rid_is_accepted_and_stays_paused_in_the_answer() -> None:
    # Chromium writes "~" for an encoding created with active: false and sets each
    # encoding's active flag from the answer: the answer must keep the "~".
    video = _simulcast_video("a=rid:q send\na=rid:h send\na=rid:f send\na=simulcast:send q;~h;f")
    answer, params = ortc.answer_publish_section(video)
    assert params is not None and params.rids == ("q", "h", "f")
    assert answer.simulcast == "recv q;~h;f"
    assert answer.rids == (("q", "recv"), ("h", "recv"), ("f", "recv"))


def test_the_first_alternative_of_each_stream_is_taken_and_the_recv_direction_ignored() -> None:
    video = _simulcast_video(
        "a=rid:q send\na=rid:q2 send\na=rid:h send\na=rid:f send\na=rid:x recv\n"
        "a=simulcast:send q,q2;h;~f,q2 recv x"
    )
    answer, params = ortc.answer_publish_section(video)
    assert params is not None and params.rids == ("q", "h", "f")
    assert answer.rids == (("q", "recv"), ("h", "recv"), ("f", "recv"))
    assert answer.simulcast == "recv q;h;~f"


def test_a_recv_only_simulcast_line_is_one_encoding() -> None:
    video = _simulcast_video("a=rid:q recv\na=rid:h recv\na=simulcast:recv q;h")
    answer, params = ortc.answer_publish_section(video)
    assert answer.simulcast is None and answer.rids == ()
    assert params is not None and params.rids == ()


def test_simulcast_with_signalled_ssrcs_is_bound_by_rid() -> None:
    video = replace(
        _simulcast_video(CHROMIUM_SIMULCAST),
        ssrcs=(1111, 2222),
        ssrc_groups=(("FID", (1111, 2222)),),
        cname="c",
    )
    _, params = ortc.answer_publish_section(video)
    assert params is not None and params.rids == ("q", "h", "f")
    assert params.ssrc is None and params.rtx_ssrc is None


def test_simulcast_on_a_section_that_does_not_send_is_ignored() -> None:
    for direction in (sdp.Direction.RECVONLY, sdp.Direction.INACTIVE):
        video = replace(_simulcast_video(CHROMIUM_SIMULCAST), direction=direction)
        answer, params = ortc.answer_publish_section(video)
        assert answer.direction == sdp.Direction.INACTIVE and params is None
        assert answer.rids == () and answer.simulcast is None
        assert answer.extension_id(URI_RID) is None


def test_a_data_channel_next_to_simulcast_video_is_still_rejected() -> None:
    data_channel = (
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
        "a=mid:2\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n"
    )
    answers = _answers(sdp.parse(SIMULCAST_OFFER + data_channel))
    (_, audio), (_, video), (data, nothing) = answers
    assert audio is not None and video is not None and video.rids == ("q", "h", "f")
    assert data.rejected and nothing is None
    assert data.rids == () and data.simulcast is None


@pytest.mark.parametrize(
    ("rid_lines", "message"),
    [
        pytest.param(
            "a=rid:q send\na=rid:h send\na=simulcast:send q;h;f",
            "a=simulcast names rid 'f' without an 'a=rid:f send' line",
            id="rid-without-a-rid-line",
        ),
        pytest.param(
            "a=rid:q send\na=rid:h recv\na=simulcast:send q;h",
            "a=simulcast names rid 'h' without an 'a=rid:h send' line",
            id="rid-line-for-recv",
        ),
        pytest.param(
            "a=rid:q send\na=rid:h send\na=simulcast:send q;h;q",
            "duplicate rid 'q'",
            id="duplicate-in-simulcast",
        ),
        pytest.param(
            "a=rid:q send\na=rid:q send\na=rid:h send\na=simulcast:send q;h",
            "duplicate rid 'q'",
            id="duplicate-rid-lines",
        ),
        pytest.param(
            "a=rid:q.1 send\na=rid:h send\na=simulcast:send q.1;h",
            "rid 'q.1' in a=simulcast must be 1..16 characters",
            id="rid-with-a-dot",
        ),
        pytest.param(
            f"a=rid:{'r' * 17} send\na=rid:h send\na=simulcast:send {'r' * 17};h",
            f"rid '{'r' * 17}' in a=simulcast must be 1..16 characters",
            id="rid-of-17-characters",
        ),
        pytest.param(
            "a=rid:a send\na=rid:b send\na=rid:c send\na=rid:d send\na=rid:e send\n"
            "a=simulcast:send a;b;c;d;e",
            "simulcast with 5 encodings; at most 4 are supported",
            id="five-encodings",
        ),
        pytest.param("a=simulcast:send", "bad a=simulcast 'send'", id="empty-send-list"),
        pytest.param("a=simulcast:send q;;f", "bad a=simulcast", id="empty-stream"),
        pytest.param("a=simulcast:send q send h", "bad a=simulcast", id="send-twice"),
        pytest.param("a=simulcast:sideways q", "bad a=simulcast", id="unknown-direction"),
    ],
)
def test_bad_simulcast_offers_are_refused_naming_the_problem(rid_lines: str, message: str) -> None:
    video = _simulcast_video(rid_lines)
    with pytest.raises(NegotiationError, match="^m-section 1: " + re.escape(message)):
        ortc.answer_publish_section(video)


def test_simulcast_without_the_rid_extension_is_refused() -> None:
    video = _simulcast_video(CHROMIUM_SIMULCAST)
    without = replace(video, extensions=tuple(e for e in video.extensions if e.uri != URI_RID))
    with pytest.raises(NegotiationError, match=f"needs the {URI_RID} header extension"):
        ortc.answer_publish_section(without)


def test_simulcast_audio_is_refused() -> None:
    audio = sdp.parse(SIMULCAST_OFFER).section("0")
    assert audio is not None
    rid = sdp.Extension(id=10, uri=URI_RID)
    offer = replace(
        audio,
        extensions=(*audio.extensions, rid),
        rids=(("a", "send"), ("b", "send")),
        simulcast="send a;b",
    )
    with pytest.raises(NegotiationError, match="m-section 0: simulcast is supported for video"):
        ortc.answer_publish_section(offer)


def test_receive_parameters_rids_must_be_distinct() -> None:
    _, params = ortc.answer_publish_section(_simulcast_video(CHROMIUM_SIMULCAST))
    assert params is not None
    with pytest.raises(ValueError, match="rids"):
        replace(params, rids=("q", "q"))
    with pytest.raises(ValueError, match="rids"):
        replace(params, rids=("",))
