"""What a simulcast publisher is told (REMB) follows what its consumers' tiles want, as the
producer sends it: time from a fake clock, the producer ticked as the router does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from sfu.direct_transport import DirectTransport
from sfu.options import MediaOptions, WorkerOptions
from sfu.producer import Producer
from sfu.rtp import rtcp
from sfu.rtp_parameters import CodecParameters, ReceiveParameters
from sfu.types import MediaKind, Mid
from sfu.upstream_rate import HOLD, WARM_UP, needed_bitrate
from sfu.worker import Worker
from tests.fakes import EventRecorder, FakeClock
from tests.packets import make_rtp, make_vp8_payload

CEILING = 3_000_000
SSRCS = (0x1000, 0x2000, 0x3000)
VP8 = CodecParameters(kind=MediaKind.VIDEO, name="VP8", payload_type=96, clock_rate=90000)
STEP = 0.02
# Bytes per encoding every 20 ms: 150 kbit/s, 500 kbit/s and 1.5 Mbit/s with headers.
SIZES = (375, 1250, 3750)
SIZES_BPS = tuple(size * 8 * 50 for size in SIZES)
MTU = 1250


@dataclass
class Stage:
    clock: FakeClock
    publisher: DirectTransport
    producer: Producer
    viewers: DirectTransport
    upstream: list[bytes] = field(default_factory=list)
    seq: int = 0

    def publish(self, seconds: float) -> None:
        """The publisher sends every encoding for `seconds`, ticked every 20 ms."""
        for _ in range(round(seconds / STEP)):
            self.clock.advance(STEP)
            self.seq += 1
            for layer in range(len(SSRCS)):
                for offset in range(0, SIZES[layer], MTU):
                    size = min(MTU, SIZES[layer] - offset)
                    payload = make_vp8_payload(False, body=b"x" * (size - 25))
                    ssrc = SSRCS[layer]
                    self.publisher.send_rtp(
                        make_rtp(self.seq, self.seq * 3000, ssrc, 96, True, (), payload)
                    )
            self.producer.tick(self.clock.now())

    def rembs(self) -> list[rtcp.Remb]:
        return [
            packet
            for data in self.upstream
            for packet in rtcp.parse_compound(data)
            if isinstance(packet, rtcp.Remb)
        ]

    def last_remb(self) -> rtcp.Remb:
        return self.rembs()[-1]


@pytest.fixture
async def stage() -> AsyncIterator[Stage]:
    clock = FakeClock()
    options = WorkerOptions(media=MediaOptions(publisher_max_bitrate=CEILING))
    worker = Worker(options, clock=clock)
    router = worker.create_router(on_event=EventRecorder())
    upstream: list[bytes] = []
    publisher = router.create_direct_transport(on_rtp=lambda data: None, on_rtcp=upstream.append)
    producer = publisher.produce(
        ReceiveParameters(mid=Mid("1"), codec=VP8, ssrc=SSRCS[0], encoding_ssrcs=SSRCS)
    )
    viewers = router.create_direct_transport(on_rtp=lambda data: None)
    yield Stage(clock, publisher, producer, viewers, upstream)
    worker.close()
    await worker.wait_closed()


def _need(layer: int) -> int:
    """What the rule asks for when encodings up to `layer` are wanted (REMB rounds it to
    an 18-bit mantissa)."""
    return needed_bitrate(SIZES_BPS, layer, CEILING)


def _about(bps: int, expected: int) -> bool:
    return abs(bps - expected) <= expected * 0.03


async def test_small_tiles_ask_for_the_small_encodings_and_a_large_one_for_all_at_once(
    stage: Stage,
) -> None:
    thumbnails = [stage.viewers.consume(stage.producer) for _ in range(3)]
    for consumer in thumbnails:
        consumer.set_preferred_layer(0)
    stage.publish(WARM_UP + 1.0)
    assert stage.last_remb().bitrate_bps == CEILING  # measured only now: still the ceiling
    stage.publish(1.0)

    remb = stage.last_remb()
    assert _about(remb.bitrate_bps, _need(0))
    assert remb.ssrcs == SSRCS[:1]

    stage.upstream.clear()
    thumbnails[1].set_preferred_layer(2)  # one viewer makes its tile large
    stage.publish(STEP)  # the next tick, not the next report
    (remb,) = stage.rembs()
    assert (remb.bitrate_bps, remb.ssrcs) == (CEILING, SSRCS)
    assert stage.producer.remb_raises == 1


async def test_a_viewer_whose_downlink_is_short_does_not_lower_the_request(
    stage: Stage,
) -> None:
    large = stage.viewers.consume(stage.producer)
    small = stage.viewers.consume(stage.producer)
    small.set_preferred_layer(0)
    large.set_bandwidth_layer(0)  # its link carries the smallest encoding only
    stage.publish(WARM_UP + 2.0)
    assert large.target_layer == 0
    assert stage.last_remb().bitrate_bps == CEILING


async def test_a_shrunk_tile_lowers_the_request_only_after_the_hold(stage: Stage) -> None:
    viewer = stage.viewers.consume(stage.producer)
    stage.publish(WARM_UP + 2.0)
    assert stage.last_remb().bitrate_bps == CEILING

    viewer.set_preferred_layer(1)
    stage.publish(HOLD - 1.0)
    assert stage.last_remb().bitrate_bps == CEILING
    stage.publish(2.0)
    assert _about(stage.last_remb().bitrate_bps, _need(1))


async def test_hidden_paused_and_closed_viewers_want_nothing(stage: Stage) -> None:
    hidden, paused, closed = (stage.viewers.consume(stage.producer) for _ in range(3))
    hidden.set_view(visible=False)
    paused.pause()
    closed.close()
    stage.publish(WARM_UP + HOLD + 1.0)
    assert _about(stage.last_remb().bitrate_bps, _need(0))  # nobody: the lowest only

    hidden.set_view(visible=True)  # no height: no limit
    stage.publish(STEP)
    assert stage.last_remb().bitrate_bps == CEILING


async def test_a_pipe_copy_wants_its_encoding_while_the_far_viewers_do(stage: Stage) -> None:
    copies = [stage.viewers.consume(stage.producer) for _ in SSRCS]
    for layer, copy in enumerate(copies):
        copy.pin_layer(layer)
    stage.publish(WARM_UP + 1.0)
    assert stage.last_remb().bitrate_bps == CEILING

    for copy in copies[1:]:
        copy.set_wanted_downstream(False)  # the far end's REMB named the lowest only
    stage.publish(HOLD + 1.5)
    assert _about(stage.last_remb().bitrate_bps, _need(0))

    copies[1].set_wanted_downstream(True)
    stage.publish(STEP)
    assert _about(stage.last_remb().bitrate_bps, _need(1))
    assert stage.last_remb().ssrcs == SSRCS[:2]


async def test_one_encoding_publishers_are_asked_for_the_ceiling(stage: Stage) -> None:
    single = stage.publisher.produce(ReceiveParameters(mid=Mid("2"), codec=VP8, ssrc=0x4000))
    viewer = stage.viewers.consume(single)
    viewer.set_view(visible=True, height=90)
    for seq in range(1, 400):
        stage.clock.advance(STEP)
        payload = make_vp8_payload(False, body=b"x" * 300)
        stage.publisher.send_rtp(make_rtp(seq, seq * 3000, 0x4000, 96, True, (), payload))
        single.tick(stage.clock.now())
    rembs = stage.rembs()
    assert len(rembs) >= WARM_UP + 2
    assert all(remb.bitrate_bps == CEILING and remb.ssrcs == (0x4000,) for remb in rembs)


async def test_a_tile_shown_before_the_sizes_were_known_fits_once_they_are(stage: Stage) -> None:
    # As on a far worker, whose mirror learns each encoding's size from its next key
    # frame: a view that came first was taken as wanting the top encoding.
    viewer = stage.viewers.consume(stage.producer)
    viewer.set_view(visible=True, height=90)
    assert viewer.preferred_layer == 2
    stage.publish(WARM_UP + 1.0)

    for stream, height in zip(stage.producer.streams, (180, 360, 720), strict=True):
        stream.height = height  # what the key frames said
    stage.publish(1.0)
    assert viewer.preferred_layer == 0
    stage.publish(HOLD + 1.0)
    assert _about(stage.last_remb().bitrate_bps, _need(0))

    viewer.set_preferred_layer(1)  # a preference set directly is not refitted
    stage.producer.streams[0].height = 200
    stage.publish(1.0)
    assert viewer.preferred_layer == 1
