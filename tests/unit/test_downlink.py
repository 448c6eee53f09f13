"""A viewer's downlink: its transport-cc feedback feeds the estimate, and the estimate
is divided over its consumers, audio first."""

from __future__ import annotations

import logging

import pytest

from sfu.bwe.estimator import BandwidthEstimator
from sfu.bwe.results import PacketResult
from sfu.consumer import Consumer
from sfu.direct_transport import DirectTransport
from sfu.downlink import INITIAL_BPS, Downlink
from sfu.producer import Producer
from sfu.received_stream import ReceivedStream
from sfu.router import Router
from sfu.rtp import twcc
from sfu.rtp_parameters import CodecParameters, ReceiveParameters
from sfu.types import MediaKind, Mid

VP8 = CodecParameters(kind=MediaKind.VIDEO, name="VP8", payload_type=96, clock_rate=90000)
OPUS = CodecParameters(
    kind=MediaKind.AUDIO, name="opus", payload_type=111, clock_rate=48000, channels=2
)
LADDER = (150_000, 500_000, 1_500_000)


def _sending(producer: Producer, bitrates: tuple[int, ...], now: float) -> None:
    """The publisher sends each encoding at these rates (as the producer measures them),
    at 180, 360 and 720 lines (as its key frames say)."""
    for stream, bps in zip(producer.streams, bitrates, strict=True):
        stream.bitrate = bps
        stream.last_packet_at = now if bps else None
        stream.height = 180 << stream.layer


def _stage(router: Router) -> tuple[Producer, Producer, DirectTransport]:
    publisher = router.create_direct_transport(on_rtp=lambda data: None)
    video = publisher.produce(
        ReceiveParameters(mid=Mid("1"), codec=VP8, ssrc=11, encoding_ssrcs=(11, 12, 13))
    )
    audio = publisher.produce(ReceiveParameters(mid=Mid("0"), codec=OPUS, ssrc=21))
    viewer = router.create_direct_transport(on_rtp=lambda data: None)
    return video, audio, viewer


def _downlink(
    viewer: DirectTransport, initial_bps: int = INITIAL_BPS, backlog_bytes: int = 0
) -> Downlink:
    """The viewer's downlink; no packet was stamped, so feedback resolves to nothing. Its
    pacer holds `backlog_bytes`."""
    return Downlink(
        consumers=lambda: viewer.consumers.values(),
        sent_packet=lambda s: None,
        initial_bps=initial_bps,
        pacer_backlog=lambda: backlog_bytes,
    )


def _playing(router: Router) -> tuple[Consumer, DirectTransport]:
    """A viewer of a simulcast video (the ladder) and an audio track (40k), both sent now."""
    video, audio, viewer = _stage(router)
    now = router._clock.now()
    _sending(video, LADDER, now)
    _sending(audio, (40_000,), now)
    consumer = viewer.consume(video)
    viewer.consume(audio)
    return consumer, viewer


def _video(viewer: DirectTransport) -> Consumer:
    return next(c for c in viewer.consumers.values() if c.kind == "video")


async def test_the_estimate_is_divided_over_the_viewers_tracks(router: Router) -> None:
    consumer, viewer = _playing(router)
    now = router._clock.now()
    downlink = _downlink(viewer, 1_000_000)

    downlink.allocate(now)  # 1 Mbit/s: q fits, h fits with its margin, f not
    assert (consumer.bandwidth_layer, consumer.target_layer) == (1, 1)

    consumer.set_view(visible=True, height=90)  # a thumbnail: q is enough
    downlink.allocate(now)
    assert consumer.target_layer == 0


async def test_a_backlog_in_the_pacer_is_drained_by_a_lower_layer(router: Router) -> None:
    consumer, viewer = _playing(router)
    now = router._clock.now()
    # 1 Mbit/s fits h (as above); 100 kB waiting is 0.8 Mbit, of which what the pacer
    # sends in 0.1 s (at 1.5 Mbit/s) is allowed: the rest is drained in the next second.
    _downlink(viewer, 1_000_000, backlog_bytes=100_000).allocate(now)
    assert (consumer.bandwidth_layer, consumer.target_layer) == (0, 0)
    _downlink(viewer, 1_000_000, backlog_bytes=15_000).allocate(now)  # a key frame's worth
    assert (consumer.bandwidth_layer, consumer.target_layer) == (1, 1)


async def test_a_downlink_too_slow_for_any_video_pauses_it_and_keeps_audio(
    router: Router,
) -> None:
    video, audio, viewer = _stage(router)
    now = router._clock.now()
    _sending(video, (900_000, 1_500_000, 2_500_000), now)
    _sending(audio, (40_000,), now)
    viewer.consume(video)
    viewer.consume(audio)
    downlink = _downlink(viewer, 500_000)
    downlink.allocate(now)
    consumer = _video(viewer)
    assert (consumer.starved, consumer.active) == (True, False)
    assert all(c.active for c in viewer.consumers.values() if c.kind == "audio")
    _sending(video, LADDER, now)  # the publisher drops to a ladder that fits
    downlink.allocate(now)
    assert (consumer.starved, consumer.active, consumer.target_layer) == (False, True, 0)


async def test_feedback_moves_the_estimate_and_garbage_is_counted(router: Router) -> None:
    video, _, viewer = _stage(router)
    _sending(video, LADDER, router._clock.now())
    viewer.consume(video)
    sent = {seq: (1.0 + seq * 0.01, 1200) for seq in range(200)}  # 960 kbit/s
    downlink = Downlink(consumers=lambda: viewer.consumers.values(), sent_packet=sent.get)
    # Every packet arrives, queueing more and more: the delay grows, the estimate falls.
    arrivals = [0.05 + seq * 0.01 * 1.5 for seq in range(200)]
    for start in range(0, 200, 20):
        fci = twcc.build_feedback(start, 0, arrivals[start : start + 20])
        downlink.on_transport_feedback(fci, 1.0 + (start + 20) * 0.01 + 0.1)
    assert downlink.feedbacks == 10
    assert downlink.estimator.estimate_bps < 1_000_000

    downlink.on_transport_feedback(b"\x00\x01garbage", 5.0)
    assert downlink.feedbacks_malformed == 1


async def test_tracks_go_up_one_per_division_so_key_frames_do_not_come_in_a_burst(
    router: Router,
) -> None:
    publisher = router.create_direct_transport(on_rtp=lambda data: None)
    videos = [
        publisher.produce(
            ReceiveParameters(
                mid=Mid(str(i)), codec=VP8, ssrc=100 + 10 * i,
                encoding_ssrcs=(100 + 10 * i, 101 + 10 * i, 102 + 10 * i),
            )
        )
        for i in range(3)
    ]
    now = router._clock.now()
    for video in videos:
        _sending(video, LADDER, now)
    viewer = router.create_direct_transport(on_rtp=lambda data: None)
    consumers = [viewer.consume(video) for video in videos]
    downlink = _downlink(viewer, 200_000)
    downlink.allocate(now)  # one track at q, two paused
    assert sorted(c.starved for c in consumers) == [False, True, True]

    downlink.probe_succeeded(10_000_000, now)  # the link turns out to be wide
    targets = []
    for step in range(4):
        downlink.allocate(now + step)
        targets.append(sorted((-1 if c.starved else c.target_layer) for c in consumers))
    assert targets == [[-1, -1, 2], [-1, 2, 2], [2, 2, 2], [2, 2, 2]]


async def test_a_narrow_downlink_gets_fewer_frames_of_the_lowest_encoding_not_a_pause(
    router: Router,
) -> None:
    consumer, viewer = _playing(router)
    now = router._clock.now()
    producer = router.producers[consumer.producer_id]
    producer.streams[0].temporal_bitrates = (60_000, 100_000, 150_000)  # TID 0, 0-1, all
    downlink = _downlink(viewer, 150_000)
    downlink.allocate(now)  # 110k after audio: q's TIDs 0 and 1 (100k), not q whole
    assert (consumer.starved, consumer.target_layer, consumer.bandwidth_temporal) == (False, 0, 1)
    assert consumer.demand().current == 1
    downlink.probe_succeeded(400_000, now)
    downlink.allocate(now + 1)  # q whole, then h does not fit with its margin
    assert (consumer.target_layer, consumer.bandwidth_temporal) == (0, 3)


def test_an_encoding_measures_its_temporal_layers_cumulatively() -> None:
    stream = ReceivedStream(layer=0, rid="q", ssrc=1, rtx_ssrc=None, clock_rate=90000, video=True)
    stream.measure(0.0)
    for frame in range(8):  # L1T3: TIDs 0 2 1 2 0 2 1 2, 1000 bytes each
        stream.count(1000, frame * 3000, frame / 8, (0, 2, 1, 2)[frame % 4])
    stream.count(200, 8 * 3000, 0.99)  # a packet without a TID counts in every layer
    stream.measure(1.0)
    assert stream.temporal_bitrates == (17_600, 33_600, 65_600)
    assert stream.bitrate == 65_600
    stream.count(1000, 9 * 3000, 1.5)
    stream.measure(2.0)
    assert not stream.temporal_bitrates  # nothing tagged: no temporal layers to offer


async def test_a_track_goes_up_only_to_what_the_link_was_seen_to_carry(router: Router) -> None:
    video, _, viewer = _stage(router)
    now = router._clock.now()
    _sending(video, LADDER, now)
    consumer = viewer.consume(video)
    downlink = _downlink(viewer, 300_000)
    downlink.allocate(now)
    assert consumer.target_layer == 0
    # 200 kbit/s acknowledged, and an estimate that ran ahead to 2.5 Mbit/s unproven.
    results = [PacketResult(i, now + i * 0.02, 500, 100 + i * 0.02) for i in range(60)]
    downlink.estimator.on_packet_results(results, now + 1.2)
    downlink.estimator.on_probe_result(2_500_000)
    downlink.allocate(now + 1.2)
    assert consumer.target_layer == 0  # staying is judged by the estimate, going up not

    downlink.probe_succeeded(2_500_000, now + 1.5)  # now the link showed it
    downlink.allocate(now + 1.5)
    assert consumer.target_layer == 2


async def test_a_playing_track_is_paused_only_when_the_estimate_stays_short(
    router: Router,
) -> None:
    consumer, viewer = _playing(router)
    now = router._clock.now()
    downlink = _downlink(viewer, 300_000)
    downlink.allocate(now)
    assert (consumer.active, consumer.target_layer) == (True, 0)
    downlink.estimator = BandwidthEstimator(initial_bps=100_000)  # cut after an overuse
    downlink.allocate(now + 0.5)
    downlink.allocate(now + 1.5)
    assert (consumer.starved, consumer.target_layer) == (False, 0)  # held on q meanwhile
    downlink.allocate(now + 2.6)
    assert consumer.starved


async def test_a_short_downlink_keeps_the_track_its_producer_ranks_highest(
    router: Router,
) -> None:
    publisher = router.create_direct_transport(on_rtp=lambda data: None)
    camera, screen = (
        publisher.produce(ReceiveParameters(mid=Mid(str(i)), codec=VP8, ssrc=50 + i))
        for i in range(2)
    )
    screen.priority = 3  # shared content, as the room marks a screen share
    now = router._clock.now()
    for producer in (camera, screen):
        _sending(producer, (300_000,), now)
    viewer = router.create_direct_transport(on_rtp=lambda data: None)
    watching_camera = viewer.consume(camera)  # consumed first: first in a tie
    watching_screen = viewer.consume(screen)
    assert watching_screen.demand().priority == 3

    _downlink(viewer, 400_000).allocate(now)  # room for one of the two

    assert (watching_screen.starved, watching_camera.starved) == (False, True)


async def test_at_debug_level_each_division_logs_what_each_track_really_sent(
    router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    _, viewer = _playing(router)
    downlink = _downlink(viewer, 1_000_000)
    with caplog.at_level(logging.DEBUG, logger="sfu.downlink"):
        downlink.allocate(router._clock.now())
        downlink.allocate(router._clock.now() + 0.5)
    lines = [r.getMessage() for r in caplog.records if "sent bit/s" in r.getMessage()]
    assert len(lines) == 2
    assert "None)]" in lines[0]  # nothing measured before the first division
    assert "0)]" in lines[1]  # nothing forwarded in between: 0 bit/s, not a guess
