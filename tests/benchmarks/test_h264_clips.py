"""The publisher bot's H.264 simulcast: libx264 clips packetized as libwebrtc does,
offered as Chromium offers constrained baseline, sent as cached."""

from __future__ import annotations

import itertools

import pytest

from benchmarks.h264_clips import LADDER, load_h264_simulcast_clips, packetize, split_annex_b
from benchmarks.media import MAX_VIDEO_PAYLOAD, MediaClip
from benchmarks.negotiation import SIMULCAST_RIDS, SendStreams, publish_offer
from sfu import ortc, sdp
from sfu.aiortc_bridge import PeerConnection
from sfu.rtp import h264
from sfu.rtp.codecs import is_h264_keyframe
from tests.benchmarks.sent_media import (
    SSRCS,
    CapturingPeer,
    by_ssrc,
    payload,
    run_frames,
    simulcast_publisher,
)

STAP_A, FU_A = 24, 28


def _unit(nal_type: int, size: int) -> bytes:
    return bytes([0x60 | nal_type]) + bytes(i % 251 + 1 for i in range(size - 1))


def test_small_units_share_a_stap_a_and_a_large_one_is_split_into_fu_a_fragments() -> None:
    sps, pps, idr = _unit(7, 20), _unit(8, 5), _unit(5, 2500)

    packets = packetize([sps, pps, idr], max_payload=1000)

    assert packets[0] == bytes([0x60 | STAP_A]) + b"\x00\x14" + sps + b"\x00\x05" + pps
    fragments = packets[1:]
    assert len(fragments) == 3 and all(len(p) <= 1000 for p in fragments)
    assert {p[0] for p in fragments} == {0x60 | FU_A}  # the unit's NRI, type FU-A
    assert [p[1] for p in fragments] == [0x80 | 5, 5, 0x40 | 5]  # S, -, E; the IDR type
    assert bytes([idr[0]]) + b"".join(p[2:] for p in fragments) == idr
    assert max(len(p) for p in fragments) - min(len(p) for p in fragments) <= 1  # even


def test_a_unit_alone_is_a_single_nal_unit_packet_and_what_does_not_fit_starts_another() -> None:
    assert packetize([_unit(1, 300)], max_payload=1000) == (_unit(1, 300),)
    a, b, c = _unit(6, 400), _unit(1, 400), _unit(1, 400)
    packets = packetize([a, b, c], max_payload=1000)
    assert [p[0] & 0x1F for p in packets] == [STAP_A, 1]  # a and b fit one, c stands alone


def test_an_annex_b_stream_splits_into_units_at_3_and_4_byte_start_codes() -> None:
    stream = b"\x00\x00\x00\x01\x67\x42" + b"\x00\x00\x01\x68\xce" + b"\x00\x00\x01\x65\x88"
    assert split_annex_b(stream) == [b"\x67\x42", b"\x68\xce", b"\x65\x88"]


@pytest.fixture(scope="module")
def clips() -> tuple[MediaClip, ...]:
    return load_h264_simulcast_clips()  # encoded once (a few seconds), then cached


def test_the_ladder_has_its_idrs_at_the_same_frames_each_started_by_its_sps(
    clips: tuple[MediaClip, ...],
) -> None:
    assert [clip.codec for clip in clips] == ["H264"] * 3
    keyframes = {clip.keyframe_indexes for clip in clips}
    assert len(keyframes) == 1 and len(next(iter(keyframes))) == 5  # every 2 s of 10
    for clip, (width, height, bitrate) in zip(clips, LADDER, strict=True):
        assert 0.7 * bitrate < clip.video_bitrate < 1.3 * bitrate
        for frame in clip.video:
            assert all(len(p) <= MAX_VIDEO_PAYLOAD for p in frame.payloads)
            starts = [is_h264_keyframe(p) for p in frame.payloads]
            assert starts == [frame.keyframe] + [False] * (len(starts) - 1)
            if frame.keyframe:
                first = frame.payloads[0]
                assert h264.key_frame_size(first) == (width, height)
                sps = first[3:] if first[0] & 0x1F == STAP_A else first
                assert sps[1] == 66 and sps[2] & 0x40  # constrained baseline


async def test_the_sfu_takes_the_h264_offer_as_simulcast(bot_peer: PeerConnection) -> None:
    streams = SendStreams(
        audio_ssrc=1, video_ssrc=None, cname="bot", video_rids=SIMULCAST_RIDS, video_codec="H264"
    )
    offer = sdp.parse(publish_offer(bot_peer, streams, session_id=1))

    _, parameters = ortc.answer_publish_section(offer.section("1"))  # type: ignore[arg-type]

    assert parameters is not None and parameters.rids == SIMULCAST_RIDS
    assert parameters.codec.name == "H264"
    assert parameters.codec.payload_type == ortc.PAYLOAD_TYPES["H264"]
    assert parameters.codec.fmtp == {
        "level-asymmetry-allowed": "1",
        "packetization-mode": "1",
        "profile-level-id": "42e01f",
    }


def test_h264_encodings_go_out_under_the_h264_payload_type_as_cached(
    clips: tuple[MediaClip, ...],
) -> None:
    peer = CapturingPeer()
    publisher = simulcast_publisher(peer, clips)
    publisher.start(0.0)
    run_frames(publisher, 0.0, 30)

    streams = by_ssrc(peer)
    for rid, clip in zip(SIMULCAST_RIDS, clips, strict=True):
        packets = streams[SSRCS[rid]]
        assert {p.payload_type for p in packets} == {ortc.PAYLOAD_TYPES["H264"]}
        sent = [payload(p) for p in packets]
        cached = list(itertools.chain.from_iterable(f.payloads for f in clip.video))
        assert sent == cached[: len(sent)]
