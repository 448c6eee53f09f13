"""The publisher bot's simulcast: three encodings, each a stream of its own."""

from __future__ import annotations

import itertools

import pytest

from benchmarks.media import MediaClip, load_simulcast_clips
from benchmarks.negotiation import SIMULCAST_RIDS
from sfu.ortc import EXTENSION_IDS
from sfu.rtp import rtcp, vp8
from sfu.rtp.codecs import is_vp8_keyframe
from sfu.rtp.header import RtpPacketView
from sfu.rtp_parameters import URI_RID
from tests.benchmarks.sent_media import (
    SSRCS,
    CapturingPeer,
    by_ssrc,
    payload,
    run_frames,
    simulcast_publisher,
)

RID_ID = 10  # benchmarks.negotiation: Chromium's id, sfu.ortc has none


@pytest.fixture(scope="module")
def clips() -> tuple[MediaClip, ...]:
    return load_simulcast_clips()


def _picture_ids(packets: list[RtpPacketView]) -> list[int]:
    """Each frame's VP8 PictureID (read from its last packet)."""
    return [vp8.picture_numbering(payload(p)).picture_id for p in packets if p.marker]


def _consecutive(picture_ids: list[int]) -> bool:
    return len(picture_ids) > 1 and all(
        (b - a) & 0x7FFF == 1 for a, b in itertools.pairwise(picture_ids)
    )


def test_each_encoding_is_a_stream_of_its_own_named_by_its_rid(
    clips: tuple[MediaClip, ...],
) -> None:
    assert EXTENSION_IDS.get(URI_RID, RID_ID) == RID_ID
    peer = CapturingPeer()
    publisher = simulcast_publisher(peer, clips)
    publisher.start(0.0)
    run_frames(publisher, 0.0, 60)

    streams = by_ssrc(peer)
    assert set(streams) == set(SSRCS.values())
    for rid, ssrc in SSRCS.items():
        packets = streams[ssrc]
        assert {p.extension(RID_ID) for p in packets} == {rid.encode()}
        seqs = [p.sequence_number for p in packets]
        assert seqs == [(seqs[0] + i) & 0xFFFF for i in range(len(seqs))]
        stamps = list(dict.fromkeys(p.timestamp for p in packets))  # in order, once each
        assert len(stamps) == 60
        assert all((b - a) & 0xFFFFFFFF == 3000 for a, b in itertools.pairwise(stamps))
        assert _consecutive(_picture_ids(packets))
    # Random bases, as browsers pick them: the encodings' numbers have nothing in common.
    assert len({streams[s][0].timestamp for s in SSRCS.values()}) == 3
    sizes = [vp8.key_frame_size(payload(streams[SSRCS[r]][0])) for r in SIMULCAST_RIDS]
    assert sizes == [(160, 90), (320, 180), (640, 360)]


def test_every_encoding_gets_a_sender_report_from_the_same_instant(
    clips: tuple[MediaClip, ...],
) -> None:
    peer = CapturingPeer()
    publisher = simulcast_publisher(peer, clips)
    publisher.start(0.0)
    run_frames(publisher, 0.0, 40)  # past the first report, at 1 s

    reports = [p for p in peer.rtcp if isinstance(p, rtcp.SenderReport)]
    assert {r.ssrc for r in reports} == set(SSRCS.values())
    assert len({r.ntp_timestamp for r in reports}) == 1
    # Each report's RTP time is as far from its encoding's first frame as the others':
    # one capture clock for all, which is what lets the SFU line them up.
    streams = by_ssrc(peer)
    elapsed = {(r.rtp_timestamp - streams[r.ssrc][0].timestamp) & 0xFFFFFFFF for r in reports}
    assert len(elapsed) == 1
    assert elapsed.pop() % 3000 == 0


def test_a_pli_for_one_encoding_brings_key_frames_in_all_without_skipping_picture_ids(
    clips: tuple[MediaClip, ...],
) -> None:
    peer = CapturingPeer()
    publisher = simulcast_publisher(peer, clips)
    publisher.start(0.0)
    now = run_frames(publisher, 0.0, 10)  # key frames at the first frame only, the next at 60
    sent = len(peer.rtp)
    assert peer.on_rtcp is not None

    peer.on_rtcp(rtcp.serialize(rtcp.PictureLossIndication(sender_ssrc=9, media_ssrc=SSRCS["h"])))
    run_frames(publisher, now, 1)

    assert publisher.key_frame_requests == 1
    after = peer.rtp[sent:]
    firsts = {p.ssrc: p for p in reversed(after)}
    assert all(is_vp8_keyframe(payload(p)) for p in firsts.values())
    assert len(firsts) == 3
    for packets in by_ssrc(peer).values():
        assert _consecutive(_picture_ids(packets))


def test_a_stopped_encoding_sends_nothing_and_restarts_with_a_key_frame(
    clips: tuple[MediaClip, ...],
) -> None:
    peer = CapturingPeer()
    publisher = simulcast_publisher(peer, clips)
    publisher.start(0.0)
    now = run_frames(publisher, 0.0, 5)

    publisher.set_sending("f", False)
    stopped_at = len(peer.rtp)
    now = run_frames(publisher, now, 10)
    assert {p.ssrc for p in peer.rtp[stopped_at:]} == {SSRCS["q"], SSRCS["h"]}

    publisher.set_sending("f", True)
    restarted_at = len(peer.rtp)
    run_frames(publisher, now, 1)
    first_f = next(p for p in peer.rtp[restarted_at:] if p.ssrc == SSRCS["f"])
    assert is_vp8_keyframe(payload(first_f))
    assert publisher.key_frame_requests == 0  # not a request from the SFU
