"""Transport-wide congestion control in subscribe negotiation: our offers carry the
extension and the feedback, the viewer's first answer decides whether its packets are
stamped, and publishers' answers do not change."""

from __future__ import annotations

from aiortc import RTCPeerConnection, RTCSessionDescription

from sfu import ortc, sdp
from sfu.ortc import EXTENSION_IDS
from sfu.router import Router
from sfu.rtp_parameters import URI_MID, URI_TRANSPORT_CC, CodecParameters
from sfu.types import MediaKind
from sfu.webrtc_transport import WebRtcTransport
from tests.subscribe_helpers import router_producer, viewer_answer

TRANSPORT_CC_ID = EXTENSION_IDS[URI_TRANSPORT_CC]
OPUS = CodecParameters(
    kind=MediaKind.AUDIO, name="opus", payload_type=111, clock_rate=48000, channels=2
)
VP8 = CodecParameters(kind=MediaKind.VIDEO, name="VP8", payload_type=96, clock_rate=90000)


async def _viewer_transport(router: Router) -> tuple[WebRtcTransport, str]:
    """A subscribe transport with an audio and a video consumer, and its offer."""
    transport = await router.create_webrtc_transport()
    transport.consume(router_producer(router, "audio", OPUS))
    transport.consume(router_producer(router, "video", VP8))
    return transport, transport.create_offer()


async def _aiortc_answer(offer: str) -> str:
    peer = RTCPeerConnection()
    try:
        await peer.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await peer.setLocalDescription(await peer.createAnswer())
        answer: str = peer.localDescription.sdp
        return answer
    finally:
        await peer.close()


async def test_subscribe_offers_carry_transport_cc_on_audio_and_video(router: Router) -> None:
    _, offer = await _viewer_transport(router)

    sections = sdp.parse(offer).media
    assert [s.kind for s in sections] == ["audio", "video"]
    for section in sections:
        assert section.extension_id(URI_TRANSPORT_CC) == TRANSPORT_CC_ID
        for codec in section.codecs:
            if codec.name != "rtx":  # RTX carries its media codec's packets only
                assert "transport-cc" in codec.rtcp_fb, (section.kind, codec.rtcp_fb)
    text = offer.replace("\r\n", "\n")
    assert f"a=extmap:{TRANSPORT_CC_ID} {URI_TRANSPORT_CC}\n" in text
    assert "a=rtcp-fb:111 transport-cc\n" in text and "a=rtcp-fb:96 transport-cc\n" in text


def test_the_transport_cc_id_is_shared_with_no_other_extension() -> None:
    assert list(EXTENSION_IDS.values()).count(TRANSPORT_CC_ID) == 1
    assert 1 <= TRANSPORT_CC_ID <= 14  # a one-byte header element


async def test_an_answer_keeping_the_extension_turns_stamping_on(router: Router) -> None:
    transport, offer = await _viewer_transport(router)
    assert not transport.transport_cc  # nothing answered yet

    await transport.apply_answer(viewer_answer(offer, extensions=True))

    assert transport.transport_cc


async def test_an_answer_without_the_extension_leaves_packets_unstamped(router: Router) -> None:
    transport, offer = await _viewer_transport(router)

    await transport.apply_answer(viewer_answer(offer, extensions=True, transport_cc=False))

    assert not transport.transport_cc
    assert transport.sent_packet(0) is None
    assert transport.sent_packets(65535, 3) == [None, None, None]


async def test_later_answers_do_not_switch_stamping(router: Router) -> None:
    on, offer = await _viewer_transport(router)
    await on.apply_answer(viewer_answer(offer, extensions=True))
    off, offer = await _viewer_transport(router)
    await off.apply_answer(viewer_answer(offer, extensions=True, transport_cc=False))

    for transport, keep in ((on, False), (off, True)):
        transport.consume(router_producer(router, f"late-{keep}", OPUS))
        answer = viewer_answer(transport.create_offer(), extensions=True, transport_cc=keep)
        await transport.apply_answer(answer)

    assert on.transport_cc and not off.transport_cc


async def test_an_aiortc_viewer_answers_without_transport_cc(router: Router) -> None:
    # aiortc answers only the extensions it implements (mid, audio level, abs-send-time)
    # and no transport-cc feedback: its viewers get packets as before.
    transport, offer = await _viewer_transport(router)
    answer = await _aiortc_answer(offer)

    sections = sdp.parse(answer).media
    assert all(s.extension_id(URI_TRANSPORT_CC) is None for s in sections)
    assert all(s.extension_id(URI_MID) == EXTENSION_IDS[URI_MID] for s in sections)
    assert not any("transport-cc" in c.rtcp_fb for s in sections for c in s.codecs)
    await transport.apply_answer(answer)
    assert not transport.transport_cc


def test_publisher_answers_leave_transport_cc_out() -> None:
    # Chromium offers transport-cc when it publishes; the SFU does not negotiate it
    # toward publishers (yet): the answer keeps neither the extension nor the feedback.
    offered = sdp.MediaSection(
        kind="video",
        port=9,
        mid="0",
        direction=sdp.Direction.SENDONLY,
        codecs=(
            sdp.Codec(
                kind="video", payload_type=100, name="VP8", clock_rate=90000,
                rtcp_fb=("goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"),
            ),
        ),
        extensions=(sdp.Extension(id=1, uri=URI_MID), sdp.Extension(id=5, uri=URI_TRANSPORT_CC)),
        ssrcs=(42,),
        cname="alice",
        rtcp_mux=True,
    )  # fmt: skip

    answered, parameters = ortc.answer_publish_section(offered)

    assert answered.extension_id(URI_TRANSPORT_CC) is None
    assert answered.extension_id(URI_MID) == 1
    assert "transport-cc" not in answered.codecs[0].rtcp_fb
    assert parameters is not None and URI_TRANSPORT_CC not in parameters.extensions


async def test_video_is_offered_with_an_rtx_stream_for_probe_padding(router: Router) -> None:
    transport, offer = await _viewer_transport(router)
    audio, video = sdp.parse(offer).media

    assert [c.name for c in audio.codecs] == ["opus"] and not audio.ssrc_groups
    vp8, rtx = video.codecs
    assert (rtx.name, rtx.payload_type, rtx.apt) == ("rtx", 97, vp8.payload_type)
    ((semantics, (media_ssrc, rtx_ssrc)),) = video.ssrc_groups
    assert semantics == "FID" and video.ssrcs == (media_ssrc, rtx_ssrc)
    assert media_ssrc != rtx_ssrc

    await transport.apply_answer(viewer_answer(offer, extensions=True))
    # A new consumer never takes an SSRC the RTX stream of another one has.
    transport.consume(router_producer(router, "video-2", VP8))
    later = sdp.parse(transport.create_offer()).media[-1]
    assert not {rtx_ssrc, media_ssrc} & set(later.ssrcs)


async def test_an_aiortc_viewer_keeps_the_rtx_it_is_offered(router: Router) -> None:
    transport, offer = await _viewer_transport(router)
    answer = await _aiortc_answer(offer)
    video = sdp.parse(answer).media[1]
    assert any(c.name.lower() == "rtx" and c.apt == 96 for c in video.codecs)
    await transport.apply_answer(answer)
