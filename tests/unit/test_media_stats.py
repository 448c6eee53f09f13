"""Media counters for metrics: key-frame wait, reported loss, and totals that survive closing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sfu.consumer import Consumer
from sfu.fanout import CallableEgress
from sfu.metrics import MediaCollector
from sfu.options import MediaOptions
from sfu.ortc import EXTENSION_IDS
from sfu.producer import Producer
from sfu.rtp import rtcp
from sfu.rtp_parameters import URI_MID, CodecParameters, ReceiveParameters
from sfu.stats import (
    MediaTotals,
    media_totals,
    retire_consumer,
    retire_producer,
    retire_transport,
)
from sfu.types import ConsumerId, MediaKind, Mid, ProducerId, TransportId
from sfu.worker import Worker
from tests.fakes import EventRecorder, FakeClock
from tests.packets import make_rtp, make_vp8_payload, parse_rtp

SSRC = 0x1111_1111
VP8_PT = 120
FRAME = 3000


class Video:
    """One VP8 producer and its consumers, driven by hand with a fake clock."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.upstream: list[bytes] = []
        self.producer = Producer(
            producer_id=ProducerId("p1"),
            parameters=ReceiveParameters(
                mid=Mid("0"),
                codec=CodecParameters(
                    kind=MediaKind.VIDEO, name="VP8", payload_type=VP8_PT, clock_rate=90000
                ),
                ssrc=SSRC,
                extensions={URI_MID: 1},
            ),
            stream_id="s",
            track_id="t",
            canonical_ext_ids=EXTENSION_IDS,
            options=MediaOptions(native_fastpath=False),
            clock=self.clock,
            send_rtcp=self._upstream,
            on_event=EventRecorder(),
        )
        self.seq = 0

    def _upstream(self, data: bytes) -> bool:
        self.upstream.append(data)
        return True

    def consumer(self, name: str = "c1") -> Consumer:
        consumer = Consumer(
            consumer_id=ConsumerId(name),
            producer_id=self.producer.id,
            transport_id=TransportId("viewer"),
            kind=MediaKind.VIDEO,
            ssrc=0xCAFE_0001,
            payload_type=96,
            clock_rate=90000,
            mid=Mid("0"),
            mid_extension_id=None,
            cname="s",
            clock=self.clock,
            fanout=self.producer.fanout,
            connected_egress=lambda: CallableEgress(lambda data: True),
            send_rtcp=lambda data: True,
            request_key_frame=self.producer.request_key_frame,
            on_event=EventRecorder(),
            initial_sequence=100,
            initial_timestamp=1000,
        )
        self.producer.consumers = (*self.producer.consumers, consumer)
        return consumer

    def frame(self, *, keyframe: bool = False) -> None:
        self.seq += 1
        payload = make_vp8_payload(keyframe)
        data = make_rtp(self.seq, self.seq * FRAME, SSRC, VP8_PT, True, (), payload)
        self.producer.receive_rtp(parse_rtp(data))


def test_key_frame_wait_runs_from_activation_to_the_first_forwarded_key_frame() -> None:
    video = Video()
    consumer = video.consumer()
    consumer.set_ready()
    assert (consumer.waiting_key_frame, consumer.key_frame_wait) == (True, None)
    video.clock.advance(0.2)
    video.frame()
    video.clock.advance(0.3)
    video.frame(keyframe=True)

    assert not consumer.waiting_key_frame
    assert consumer.key_frame_wait == 0.5
    assert (consumer.key_frame_waits, consumer.key_frame_wait_total) == (1, 0.5)
    video.clock.advance(1.0)
    video.frame(keyframe=True)  # a later key frame is not a wait
    assert consumer.key_frame_waits == 1


def test_each_resume_measures_a_new_key_frame_wait() -> None:
    video = Video()
    consumer = video.consumer()
    consumer.set_ready()
    video.frame(keyframe=True)
    consumer.pause()
    video.clock.advance(5.0)  # paused time is not waiting time
    consumer.resume()
    video.clock.advance(0.25)
    video.frame(keyframe=True)
    assert consumer.key_frame_wait == 0.25
    assert (consumer.key_frame_waits, consumer.key_frame_wait_total) == (2, 0.25)


def test_viewer_reported_loss_only_grows() -> None:
    consumer = Video().consumer()

    def report(lost: int) -> None:
        consumer.receive_report(
            rtcp.ReportBlock(
                ssrc=consumer.ssrc, fraction_lost=10, packets_lost=lost, highest_sequence=1,
                jitter=0, last_sr=0, delay_since_last_sr=0,
            )
        )  # fmt: skip

    report(7)
    report(3)  # cumulative loss may shrink (duplicates); the counter must not
    assert consumer.packets_lost == 7
    report(9)
    assert consumer.packets_lost == 9


@dataclass
class FakeTransport:
    producers: dict[ProducerId, Producer] = field(default_factory=dict)
    consumers: dict[ConsumerId, Consumer] = field(default_factory=dict)
    rtp_packets_received: int = 0
    rtcp_packets_received: int = 0
    packets_malformed: int = 0
    packets_unknown_ssrc: int = 0
    packets_late: int = 0
    dropped_egress_packets: int = 0
    probe_clusters: tuple[int, int] = (3, 1)
    padding_bytes_sent: int = 7_000


@dataclass
class FakeRouter:
    transports: dict[str, FakeTransport] = field(default_factory=dict)
    pipes: dict[str, Any] = field(default_factory=dict)
    observers: list[Any] = field(default_factory=list)


def test_totals_do_not_change_when_live_objects_are_retired() -> None:
    video = Video()
    consumer = video.consumer()
    consumer.set_ready()
    for n in range(10):
        video.frame(keyframe=n == 0)
    video.seq += 3  # a gap of three packets upstream
    video.frame()
    transport = FakeTransport(
        producers={video.producer.id: video.producer},
        consumers={consumer.id: consumer},
        rtp_packets_received=11,
        rtcp_packets_received=2,
    )
    router = FakeRouter(transports={"t": transport})
    retired = MediaTotals()

    def totals() -> MediaTotals:
        return media_totals(retired, cast(Any, [router]))

    live = totals()
    assert live.video.packets_received == 11
    assert live.video.packets_sent == 11
    assert live.video.packets_lost == 3
    assert live.video.key_frame_waits == 1
    assert live.transports.rtp_packets_received == 11

    # The close paths: each object leaves its live collection and is folded, once.
    del transport.consumers[consumer.id]
    retire_consumer(retired, consumer)
    assert totals() == live
    del transport.producers[video.producer.id]
    retire_producer(retired, video.producer)
    assert totals() == live
    del router.transports["t"]
    retire_transport(retired, cast(Any, transport))
    assert totals() == live
    assert retired.audio == MediaTotals().audio


async def test_collector_exposes_counters_and_live_counts_of_a_fresh_worker() -> None:
    worker = Worker()
    registry = CollectorRegistry()
    registry.register(MediaCollector(worker))
    families = {
        f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())
    }
    packets = families["stage_sfu_rtp_packets_received"]
    assert packets.type == "counter"
    assert {(s.labels["kind"], s.value) for s in packets.samples} == {("audio", 0), ("video", 0)}
    assert families["stage_sfu_key_frame_wait_seconds"].type == "summary"
    assert families["stage_sfu_jitter_seconds"].samples == []  # no live stream, no made-up value
    assert [s.value for s in families["stage_sfu_routers"].samples] == [0]
    worker.close()
    await worker.wait_closed()
