"""Producer + Consumer together: what one publisher packet becomes for each viewer:
its header fields, its numbering, the reports around it (repair: test_forwarding_repair.py).

Packets are built by hand, time comes from a FakeClock, and every send is a
list that captures bytes, so each test reads exactly what would go on the wire.
"""

from __future__ import annotations

import itertools

import pytest

from sfu.options import MediaOptions
from sfu.rtp import rtcp
from sfu.types import MediaKind
from tests.forwarding_harness import (
    AUDIO_FRAME,
    CANON_ABS_SEND_TIME_ID,
    CANON_AUDIO_LEVEL_ID,
    CANON_MID_ID,
    CANON_ORIENTATION_ID,
    PUB_ABS_SEND_TIME_ID,
    PUB_AUDIO_LEVEL_ID,
    PUB_MID,
    PUB_MID_ID,
    PUB_OPUS_PT,
    PUB_ORIENTATION_ID,
    PUB_RTX_PT,
    PUB_RTX_SSRC,
    PUB_SSRC,
    PUB_UNNEGOTIATED_ID,
    VIDEO_FRAME,
    Harness,
    Viewer,
    assert_continuous,
)
from tests.packets import make_rtp, make_rtx, make_vp8_payload, rtcp_of

# -- per-consumer header fields -------------------------------------------------


def test_each_viewer_gets_its_own_ssrc_payload_type_and_mid() -> None:
    h = Harness(MediaKind.AUDIO)
    a = h.add_viewer(ssrc=0xAAAA_0001, payload_type=111, mid="0", initial_sequence=10)
    b = h.add_viewer(ssrc=0xBBBB_0002, payload_type=100, mid="7", initial_sequence=20_000)
    for i in range(3):
        h.audio(300 + i, 9000 + i * AUDIO_FRAME)
        h.clock.advance(0.02)

    for viewer, ssrc, pt, mid in ((a, 0xAAAA_0001, 111, b"0"), (b, 0xBBBB_0002, 100, b"7")):
        views = viewer.packets
        assert len(views) == 3
        assert {v.ssrc for v in views} == {ssrc}
        assert {v.payload_type for v in views} == {pt}
        assert {v.extension(CANON_MID_ID) for v in views} == {mid}
    assert a.packets[0].sequence_number == 10
    assert b.packets[0].sequence_number == 20_000


def test_publisher_extension_ids_are_rewritten_to_the_sfu_table() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer(mid="3")
    h.audio(
        1,
        960,
        extensions=(
            (PUB_MID_ID, PUB_MID),
            (PUB_AUDIO_LEVEL_ID, bytes([0x80 | 42])),
            (PUB_UNNEGOTIATED_ID, b"\x01\x02"),
        ),
    )

    (view,) = viewer.packets
    assert view.ext_profile == 0xBEDE
    assert dict(view.extensions()) == {
        CANON_MID_ID: b"3",
        CANON_AUDIO_LEVEL_ID: bytes([0x80 | 42]),
    }
    assert CANON_AUDIO_LEVEL_ID != PUB_AUDIO_LEVEL_ID  # the test would prove nothing otherwise


def test_video_orientation_is_translated_and_the_publishers_mid_is_replaced() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(mid="12")
    h.video(
        5,
        0,
        keyframe=True,
        extensions=((PUB_MID_ID, PUB_MID), (PUB_ORIENTATION_ID, b"\x01")),
    )

    (view,) = viewer.packets
    assert view.extension(CANON_ORIENTATION_ID) == b"\x01"
    assert view.extension(CANON_MID_ID) == b"12"
    assert [i for i, _ in view.extensions()].count(CANON_MID_ID) == 1


def test_abs_send_time_carries_the_sfu_send_time_not_the_publishers() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    h.clock.advance(0.25)
    h.video(5, 0, keyframe=True, extensions=((PUB_ABS_SEND_TIME_ID, b"\x00\x00\x01"),))

    (view,) = viewer.packets
    expected = int(h.clock.now() * 262144) & 0xFFFFFF  # 6.18 fixed-point seconds
    assert view.extension(CANON_ABS_SEND_TIME_ID) == expected.to_bytes(3, "big")


def test_payload_marker_and_padding_reach_the_viewer_unchanged() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer()
    payload = bytes(range(200))
    original = make_rtp(7, 700, PUB_SSRC, PUB_OPUS_PT, True, (), payload, padding=4)
    h.receive(original)

    (view,) = viewer.packets
    assert view.payload == payload
    assert view.marker is True
    assert view.data[-4:] == original[-4:]


def test_packets_without_extensions_get_only_the_viewers_mid() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer(mid="5")
    h.audio(1, 960, extensions=())

    (view,) = viewer.packets
    assert view.extensions() == [(CANON_MID_ID, b"5")]
    assert (view.ext_end - view.ext_start) % 4 == 0


def test_packets_with_an_unnegotiated_payload_type_are_discarded() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer()
    h.receive(make_rtp(1, 960, PUB_SSRC, PUB_OPUS_PT + 1, payload=b"x"))

    assert viewer.rtp.sent == []
    assert h.producer.packets_discarded == 1
    assert h.producer.packets_received == 0


# -- continuous numbering -------------------------------------------------------


def test_sequence_and_timestamp_continue_across_pause_resume_and_a_new_source() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer(initial_sequence=65533, initial_timestamp=0xFFFF_FE00)
    consumer = viewer.consumer
    for i in range(5):
        h.audio(100 + i, 1000 + i * AUDIO_FRAME)
        h.clock.advance(0.02)
    last_sent_at = h.clock.now() - 0.02

    consumer.pause()
    for i in range(5, 8):
        h.audio(100 + i, 1000 + i * AUDIO_FRAME)  # nothing reaches the paused viewer
        h.clock.advance(0.02)
    h.clock.advance(1.5)
    consumer.resume()
    resumed_at = h.clock.now() + 0.02
    # A different source: unrelated seq (about to wrap) and timestamp ranges. Its first
    # packet is a jump not yet believed (RFC 3550 A.1): the second confirms it.
    h.audio(65533, 7_000_000 - AUDIO_FRAME)
    h.clock.advance(0.02)
    for i in range(5):
        h.audio((65534 + i) & 0xFFFF, 7_000_000 + i * AUDIO_FRAME)
        h.clock.advance(0.02)

    views = viewer.packets
    assert len(views) == 10
    assert_continuous(views)
    assert [v.sequence_number for v in views] == [65533, 65534, 65535, *range(0, 7)]
    before, after = views[:5], views[5:]
    assert [v.timestamp for v in before] == [
        (0xFFFF_FE00 + i * AUDIO_FRAME) & 0xFFFF_FFFF for i in range(5)
    ]
    gap = round((resumed_at - last_sent_at) * 48000)
    first_after = (before[-1].timestamp + gap) & 0xFFFF_FFFF
    assert [v.timestamp for v in after] == [
        (first_after + i * AUDIO_FRAME) & 0xFFFF_FFFF for i in range(5)
    ]


def test_video_output_continues_across_a_new_source_after_resume() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(initial_sequence=65534, initial_timestamp=123)
    h.video(10, 90_000, keyframe=True)
    h.clock.advance(0.033)
    h.video(11, 90_000 + VIDEO_FRAME)
    h.clock.advance(2.0)
    viewer.consumer.pause()
    viewer.consumer.resume()
    h.video(30_000, 5_000_000)  # delta from the new source: dropped, not numbered
    h.video(30_001, 5_000_000 + VIDEO_FRAME, keyframe=True)
    h.clock.advance(0.033)
    h.video(30_002, 5_000_000 + 2 * VIDEO_FRAME)

    views = viewer.packets
    assert [v.sequence_number for v in views] == [65534, 65535, 0, 1]
    assert views[2].payload == make_vp8_payload(True)
    assert views[3].timestamp - views[2].timestamp == VIDEO_FRAME


def test_an_upstream_gap_stays_a_gap_so_the_viewer_can_nack_it() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer(initial_sequence=500)
    for seq in (40, 41, 43, 44):
        h.audio(seq, seq * AUDIO_FRAME)

    assert [v.sequence_number for v in viewer.packets] == [500, 501, 503, 504]


def test_publisher_sequence_wraparound_is_invisible_to_the_viewer() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer(initial_sequence=30_000, initial_timestamp=0)
    for i in range(6):
        h.audio((65533 + i) & 0xFFFF, (0xFFFF_FC00 + i * AUDIO_FRAME) & 0xFFFF_FFFF)

    views = viewer.packets
    assert [v.sequence_number for v in views] == list(range(30_000, 30_006))
    assert [v.timestamp for v in views] == [i * AUDIO_FRAME for i in range(6)]


# -- sender reports ---------------------------------------------------------------


def _sender_report(rtp_timestamp: int, ntp: int = 0xE000_0000_8000_0000) -> rtcp.SenderReport:
    return rtcp.SenderReport(
        ssrc=PUB_SSRC,
        ntp_timestamp=ntp,
        rtp_timestamp=rtp_timestamp,
        packet_count=10,
        octet_count=1000,
    )


TICK = 1 / 64  # about the router's 20 ms, but exact in binary: 64 ticks are 1 s exactly


def _reports_after(h: Harness, seconds: float) -> None:
    """The producer's periodic ticks over `seconds`, as the router runs them."""
    for _ in range(round(seconds / TICK)):
        h.clock.advance(TICK)
        h.producer.tick(h.clock.now())


def test_sender_report_is_the_publishers_carried_forward_onto_the_viewers_timeline() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer(ssrc=0xABCD_0001, initial_timestamp=0xFFFF_FF00)
    for i in range(3):
        h.audio(10 + i, 5_000 + i * AUDIO_FRAME)
    first = viewer.packets[0]
    offset = (first.timestamp - 5_000) & 0xFFFF_FFFF
    h.producer.tick(h.clock.now())
    received = h.clock.now()

    h.producer.receive_sender_report(_sender_report(rtp_timestamp=7_000, ntp=0x1234_5678_9ABC))
    assert rtcp_of(viewer.rtcp.sent, rtcp.SenderReport) == []  # not in the SR's own callback
    _reports_after(h, 1.0)

    (report,) = rtcp_of(viewer.rtcp.sent, rtcp.SenderReport)
    elapsed = viewer.rtcp.times[-1] - received
    assert 0 < elapsed <= 1.0
    assert report.ssrc == 0xABCD_0001
    assert report.rtp_timestamp == (7_000 + round(elapsed * 48_000) + offset) & 0xFFFF_FFFF
    assert report.ntp_timestamp == 0x1234_5678_9ABC + round(elapsed * 0x1_0000_0000)
    assert report.packet_count == 3
    assert report.octet_count == 3 * len(b"opus")
    (sdes,) = rtcp_of(viewer.rtcp.sent, rtcp.SourceDescription)
    assert sdes.chunks == ((0xABCD_0001, "stream-1"),)


def test_sender_reports_are_spread_over_the_second_once_per_viewer() -> None:
    h = Harness(MediaKind.AUDIO)
    viewers = [h.add_viewer(ssrc=0x5000_0000 + 7919 * i) for i in range(200)]
    h.audio(10, 5_000)
    h.producer.tick(h.clock.now())
    h.producer.receive_sender_report(_sender_report(rtp_timestamp=7_000))

    per_tick = []
    for _ in range(64):
        before = sum(len(v.rtcp.sent) for v in viewers)
        _reports_after(h, TICK)
        per_tick.append(sum(len(v.rtcp.sent) for v in viewers) - before)

    assert all(len(rtcp_of(v.rtcp.sent, rtcp.SenderReport)) == 1 for v in viewers)
    assert max(per_tick) <= 12  # about 3 per tick; all 200 in one callback before
    _reports_after(h, 1.0)
    assert all(len(rtcp_of(v.rtcp.sent, rtcp.SenderReport)) == 2 for v in viewers)


def test_sender_report_follows_the_offset_of_a_new_source() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer()
    h.audio(10, 5_000)
    viewer.consumer.pause()
    h.clock.advance(1.0)
    viewer.consumer.resume()
    h.audio(39_999, 9_999_000 - AUDIO_FRAME)  # a jump is believed from its second packet
    h.audio(40_000, 9_999_000)
    offset = (viewer.packets[-1].timestamp - 9_999_000) & 0xFFFF_FFFF
    h.producer.tick(h.clock.now())
    received = h.clock.now()

    h.producer.receive_sender_report(_sender_report(rtp_timestamp=9_999_960))
    _reports_after(h, 1.0)

    (report,) = rtcp_of(viewer.rtcp.sent, rtcp.SenderReport)
    elapsed = viewer.rtcp.times[-1] - received
    assert report.rtp_timestamp == (9_999_960 + round(elapsed * 48_000) + offset) & 0xFFFF_FFFF


def test_no_sender_report_reaches_a_viewer_that_has_no_media_yet() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    h.video(1, 0)  # not a key frame: the viewer is still waiting
    h.producer.tick(h.clock.now())

    h.producer.receive_sender_report(_sender_report(rtp_timestamp=0))
    _reports_after(h, 2.0)

    assert viewer.rtcp.sent == []


def _receiver_report(viewer: Viewer, last_sr: int, *, held: float) -> rtcp.ReportBlock:
    """The viewer's report block naming SR `last_sr`, received `held` seconds before."""
    return rtcp.ReportBlock(
        ssrc=viewer.consumer.ssrc,
        fraction_lost=0,
        packets_lost=0,
        highest_sequence=0,
        jitter=0,
        last_sr=last_sr,
        delay_since_last_sr=round(held * 65536),
    )


def test_round_trip_time_is_measured_from_our_own_report_send_time() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer()
    h.audio(10, 5_000)
    h.producer.tick(h.clock.now())
    h.producer.receive_sender_report(_sender_report(rtp_timestamp=7_000))
    _reports_after(h, 1.0)
    (report,) = rtcp_of(viewer.rtcp.sent, rtcp.SenderReport)
    sent_at = viewer.rtcp.times[-1]
    h.clock.advance(0.08)  # the viewer held our SR for 50 ms of this

    viewer.consumer.receive_report(
        _receiver_report(viewer, rtcp.ntp_middle_32(report.ntp_timestamp), held=0.05)
    )

    expected = h.clock.now() - sent_at - 0.05
    assert viewer.consumer.round_trip_time == pytest.approx(expected, abs=1e-4)


def test_a_report_naming_no_sr_of_ours_gives_no_round_trip_time() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer()
    h.audio(10, 5_000)

    viewer.consumer.receive_report(_receiver_report(viewer, 0x1234_5678, held=0.0))

    assert viewer.consumer.round_trip_time is None


# -- RTX from the publisher ---------------------------------------------------------


def test_rtx_packet_is_forwarded_as_the_original_on_the_primary_ssrc() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(ssrc=0xD00D_0001, payload_type=96, initial_sequence=4000)
    h.video(500, 0, keyframe=True)
    h.video(501, VIDEO_FRAME)
    h.video(503, 3 * VIDEO_FRAME)
    lost = make_vp8_payload(False, body=b"the lost one")

    h.receive(
        make_rtx(9, 2 * VIDEO_FRAME, PUB_RTX_SSRC, PUB_RTX_PT, 502, lost, ((PUB_MID_ID, PUB_MID),))
    )

    repaired = viewer.packets[-1]
    assert repaired.sequence_number == 4002
    assert repaired.ssrc == 0xD00D_0001
    assert repaired.payload_type == 96
    assert repaired.payload == lost
    assert repaired.timestamp == viewer.packets[0].timestamp + 2 * VIDEO_FRAME
    assert h.producer.retransmissions_received == 1


def test_a_repaired_packet_can_then_be_resent_to_a_viewer_that_nacks_it() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(initial_sequence=4000)
    h.video(500, 0, keyframe=True)
    h.video(502, 2 * VIDEO_FRAME)
    lost = make_vp8_payload(False, body=b"late")
    h.receive(make_rtx(1, VIDEO_FRAME, PUB_RTX_SSRC, PUB_RTX_PT, 501, lost))
    repaired = viewer.rtp.sent[-1]
    h.clock.advance(0.1)

    viewer.consumer.receive_nack([4001])

    assert viewer.rtp.sent[-1] == repaired
    assert viewer.consumer.retransmissions_sent == 1


def test_padding_only_rtx_probe_is_discarded() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    h.video(500, 0, keyframe=True)
    received = h.producer.packets_received

    h.receive(make_rtp(77, 0, PUB_RTX_SSRC, PUB_RTX_PT, payload=b"", padding=224))

    assert len(viewer.rtp.sent) == 1
    assert h.producer.packets_received == received
    assert h.producer.packets_discarded == 1


# -- feedback toward the publisher ---------------------------------------------------


def test_a_gap_in_the_publishers_sequence_is_nacked_upstream() -> None:
    h = Harness(MediaKind.VIDEO)
    h.add_viewer()
    for seq in (10, 11, 14, 15):
        h.video(seq, seq * VIDEO_FRAME, keyframe=seq == 10)

    h.producer.tick(h.clock.now())

    (nack,) = rtcp_of(h.upstream.sent, rtcp.GenericNack)
    assert nack.media_ssrc == PUB_SSRC
    assert sorted(nack.lost) == [12, 13]
    assert h.producer.nacks_sent == 1


def test_a_packet_repaired_by_rtx_is_not_nacked_again() -> None:
    h = Harness(MediaKind.VIDEO)
    h.add_viewer()
    for seq in (10, 11, 14):
        h.video(seq, seq * VIDEO_FRAME, keyframe=seq == 10)
    h.producer.tick(h.clock.now())
    h.receive(make_rtx(1, 12 * VIDEO_FRAME, PUB_RTX_SSRC, PUB_RTX_PT, 12, b"\x00abc"))
    h.upstream.clear()

    h.clock.advance(0.06)
    h.producer.tick(h.clock.now())

    (nack,) = rtcp_of(h.upstream.sent, rtcp.GenericNack)
    assert nack.lost == (13,)


def test_wraparound_gap_is_nacked_with_the_right_numbers() -> None:
    h = Harness(MediaKind.VIDEO)
    h.add_viewer()
    h.video(65534, 0, keyframe=True)
    h.video(1, VIDEO_FRAME)

    h.producer.tick(h.clock.now())

    (nack,) = rtcp_of(h.upstream.sent, rtcp.GenericNack)
    assert sorted(nack.lost) == [0, 65535]


def test_receiver_report_and_remb_go_upstream_once_a_second() -> None:
    options = MediaOptions(publisher_max_bitrate=2_500_000, native_fastpath=False)
    h = Harness(MediaKind.VIDEO, options=options)
    h.add_viewer()
    for i in range(20):
        h.video(300 + i, i * VIDEO_FRAME, keyframe=i == 0)
    h.upstream.clear()

    h.tick_for(3.5)

    reports = [
        (time, rtcp.parse_compound(data))
        for time, data in zip(h.upstream.times, h.upstream.sent, strict=True)
        if any(isinstance(p, rtcp.ReceiverReport) for p in rtcp.parse_compound(data))
    ]
    assert len(reports) in (3, 4)
    times = [t for t, _ in reports]
    assert all(1.0 <= b - a < 1.0 + 0.021 for a, b in itertools.pairwise(times))
    for _, packets in reports:
        rr = next(p for p in packets if isinstance(p, rtcp.ReceiverReport))
        remb = next(p for p in packets if isinstance(p, rtcp.Remb))
        (block,) = rr.reports
        assert block.ssrc == PUB_SSRC
        assert block.highest_sequence == 319
        assert block.packets_lost == 0
        assert remb.bitrate_bps == 2_500_000
        assert remb.ssrcs == (PUB_SSRC,)


def test_receiver_report_counts_publisher_loss() -> None:
    h = Harness(MediaKind.AUDIO)
    h.add_viewer()
    for seq in (1, 2, 3, 6, 7):
        h.audio(seq, seq * AUDIO_FRAME)

    h.producer.tick(h.clock.now())

    (rr,) = rtcp_of(h.upstream.sent, rtcp.ReceiverReport)
    (block,) = rr.reports
    assert block.packets_lost == 2
    assert block.highest_sequence == 7
    assert rtcp_of(h.upstream.sent, rtcp.Remb) == []  # audio: no bandwidth estimate


def test_no_reports_go_upstream_before_the_first_packet() -> None:
    h = Harness(MediaKind.VIDEO)
    h.tick_for(2.0)

    assert h.upstream.sent == []


# -- a slow viewer is its own problem ------------------------------------------------


@pytest.mark.parametrize("kind", [MediaKind.AUDIO, MediaKind.VIDEO])
def test_a_viewer_that_cannot_take_packets_never_affects_another(kind: MediaKind) -> None:
    h = Harness(kind)
    dead = h.add_viewer(ssrc=0xDEAD_0001, accept=False)
    alive = h.add_viewer(ssrc=0xA11F_0001, initial_sequence=9)
    for i in range(20):
        if kind == MediaKind.AUDIO:
            h.audio(100 + i, i * AUDIO_FRAME, payload=bytes([i]) * 10)
        else:
            h.video(100 + i, i * VIDEO_FRAME, keyframe=i == 0, body=bytes([i]) * 10)
        h.clock.advance(0.02)

    views = alive.packets
    assert len(views) == 20
    assert [v.sequence_number for v in views] == list(range(9, 29))
    assert alive.consumer.packets_sent == 20
    assert alive.consumer.packets_dropped == 0
    assert dead.consumer.packets_dropped == 20
    assert dead.consumer.packets_sent == 0
    assert dead.rtp.refused == 20


def test_a_viewer_that_drops_some_packets_keeps_its_numbering() -> None:
    h = Harness(MediaKind.AUDIO)
    flaky = h.add_viewer(initial_sequence=0)
    steady = h.add_viewer(initial_sequence=0)
    for i in range(10):
        flaky.rtp.accept = i % 2 == 0
        h.audio(i, i * AUDIO_FRAME)

    assert [v.sequence_number for v in flaky.packets] == [0, 2, 4, 6, 8]
    assert flaky.consumer.packets_dropped == 5
    assert [v.sequence_number for v in steady.packets] == list(range(10))


def test_a_paused_producer_forwards_nothing_until_resumed() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer(initial_sequence=0)
    h.audio(1, 960)
    h.producer.pause()
    h.audio(2, 1920)
    h.clock.advance(0.5)
    h.producer.resume()
    h.audio(3, 2880)

    assert [v.sequence_number for v in viewer.packets] == [0, 1]


def test_a_paused_audio_producer_reports_no_levels_so_a_muted_person_never_speaks() -> None:
    h = Harness(MediaKind.AUDIO)
    levels: list[int] = []
    h.producer.level_tap = lambda producer_id, level, now: levels.append(level)
    loud = ((PUB_MID_ID, PUB_MID), (PUB_AUDIO_LEVEL_ID, bytes([0x80 | 10])))

    h.audio(1, 960, extensions=loud)
    h.producer.pause()
    for seq in range(2, 50):
        h.audio(seq, seq * AUDIO_FRAME, extensions=loud)
    assert levels == [10]

    h.producer.resume()
    h.audio(50, 50 * AUDIO_FRAME, extensions=loud)
    assert levels == [10, 10]



@pytest.mark.parametrize("jump", [40_000, 5_000, 65_000 - 200])
def test_a_publisher_restarting_its_numbering_resyncs_its_viewers(jump: int) -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(initial_sequence=1000)
    for i in range(5):
        h.video(100 + i, i * VIDEO_FRAME, keyframe=i == 0)
        h.clock.advance(0.033)
    h.tick_for(1.5)
    h.upstream.clear()
    # The publisher starts over: a jump back (40 000 ahead is 25 536 behind), a jump
    # ahead, a jump back by 200; then its first frame is a key frame, as it is.
    base = (104 + jump) & 0xFFFF
    h.video(base, 5 * VIDEO_FRAME, keyframe=True)  # a stray until the next confirms it
    for i in range(1, 6):
        h.video((base + i) & 0xFFFF, (5 + i) * VIDEO_FRAME, keyframe=i == 1)
        h.clock.advance(0.033)

    views = viewer.packets
    assert [v.sequence_number for v in views] == list(range(1000, 1010))
    assert_continuous(views)
    assert h.producer.numbering_restarts == 1
    assert len(h.plis()) == 1  # the new epoch starts from a key frame, asked for


def test_a_single_stray_packet_does_not_restart_anything() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer(initial_sequence=1000)
    for i in range(3):
        h.audio(100 + i, i * AUDIO_FRAME)
    h.audio(30_000, 3 * AUDIO_FRAME)  # garbage, or a packet from nowhere
    for i in range(3, 6):
        h.audio(100 + i, i * AUDIO_FRAME)
    assert [v.sequence_number for v in viewer.packets] == list(range(1000, 1006))
    assert h.producer.numbering_restarts == 0
    assert h.producer.packets_discarded == 1

