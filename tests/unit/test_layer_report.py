"""What a viewer's statistics say about each consumer: the encoding forwarded, the one it
is headed for, and the first reason it is not the publisher's best."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sfu.bandwidth_allocation import PAUSED
from sfu.consumer import Consumer
from sfu.direct_transport import DirectTransport
from sfu.layer_report import Limit, consumer_report, receive_report
from sfu.metrics import MediaCollector
from sfu.router import Router
from sfu.rtp_parameters import CodecParameters, ReceiveParameters
from sfu.types import MediaKind, Mid
from sfu.worker import Worker
from tests.fakes import EventRecorder
from tests.packets import make_rtp, make_vp8_payload, parse_rtp

VP8 = CodecParameters(kind=MediaKind.VIDEO, name="VP8", payload_type=96, clock_rate=90000)
OPUS = CodecParameters(
    kind=MediaKind.AUDIO, name="opus", payload_type=111, clock_rate=48000, channels=2
)
SSRCS = (11, 12, 13)
LADDER = (150_000, 500_000, 1_500_000)


class Stage:
    """A simulcast publisher (q, h, f) and one viewer of it, on a real router."""

    def __init__(self, router: Router) -> None:
        self.router = router
        publisher = router.create_direct_transport(on_rtp=lambda data: None)
        self.video = publisher.produce(
            ReceiveParameters(mid=Mid("1"), codec=VP8, ssrc=SSRCS[0], encoding_ssrcs=SSRCS)
        )
        self.audio = publisher.produce(ReceiveParameters(mid=Mid("0"), codec=OPUS, ssrc=21))
        self.viewer: DirectTransport = router.create_direct_transport(on_rtp=lambda data: None)
        self.seq = 0
        self.sending(LADDER)
        self.consumer: Consumer = self.viewer.consume(self.video)

    def sending(self, bitrates: tuple[int, ...]) -> None:
        """The publisher sends the encodings with a non-zero rate (as measured), 180, 360
        and 720 lines tall (as their key frames say)."""
        now = self.router._clock.now()
        for stream, bps in zip(self.video.streams, bitrates, strict=True):
            stream.bitrate = bps
            stream.last_packet_at = now if bps else None
            stream.height = 180 << stream.layer

    def key_frame(self, layer: int) -> None:
        self.seq += 1
        data = make_rtp(self.seq, self.seq * 3000, SSRCS[layer], 96, True, (),
                        make_vp8_payload(True))  # fmt: skip
        self.video.receive_rtp(parse_rtp(data))


def _state(consumer: Consumer) -> tuple[int, int, Limit | None]:
    report = consumer_report(consumer)
    return report.layer, report.target_layer, report.limit


async def test_a_new_viewer_waits_for_a_key_frame_then_nothing_holds_it_back(
    router: Router,
) -> None:
    stage = Stage(router)
    assert _state(stage.consumer) == (2, 2, Limit.KEY_FRAME)
    stage.key_frame(2)
    report = consumer_report(stage.consumer)
    assert (report.layer, report.target_layer, report.limit) == (2, 2, None)
    assert (report.kind, report.producer_id, report.layer_switches) == (
        MediaKind.VIDEO, stage.video.id, 0,
    )  # fmt: skip
    assert report.temporal_layer is None  # no temporal layers measured


async def test_a_small_tile_moves_down_and_says_it_is_the_tile(router: Router) -> None:
    stage = Stage(router)
    stage.key_frame(2)
    stage.consumer.set_view(visible=True, height=180)
    # Still on f until q's key frame; the target and its reason are known at once.
    assert _state(stage.consumer) == (2, 0, Limit.TILE_SIZE)
    stage.key_frame(0)
    assert _state(stage.consumer) == (0, 0, Limit.TILE_SIZE)
    stage.consumer.set_view(visible=True, height=0)
    assert _state(stage.consumer) == (0, 2, Limit.KEY_FRAME)  # on its way up
    stage.key_frame(2)
    assert _state(stage.consumer) == (2, 2, None)
    consumer = stage.consumer
    assert (consumer.layer_switches_down, consumer.layer_switches_up) == (1, 1)
    assert consumer_report(consumer).layer_switches == 2


async def test_the_downlink_and_the_publisher_are_named_when_they_are_the_limit(
    router: Router,
) -> None:
    stage = Stage(router)
    stage.key_frame(2)
    consumer = stage.consumer
    consumer.set_bandwidth_layer(1)
    assert _state(consumer)[1:] == (1, Limit.BANDWIDTH)
    consumer.set_bandwidth_layer(PAUSED)
    assert _state(consumer)[2] == Limit.BANDWIDTH_PAUSED
    consumer.set_bandwidth_layer(None)
    stage.key_frame(2)

    stage.sending((150_000, 500_000, 0))  # the publisher's uplink dropped f
    consumer.on_layers_changed()
    assert _state(consumer)[1:] == (1, Limit.PUBLISHER)
    # Asked for h by the tile while only q is sent: it is still the publisher.
    stage.sending((150_000, 0, 0))
    consumer.set_view(visible=True, height=360)
    assert _state(consumer)[1:] == (0, Limit.PUBLISHER)


async def test_hidden_and_paused_tracks_say_why_nothing_flows(router: Router) -> None:
    stage = Stage(router)
    consumer = stage.consumer
    consumer.set_view(visible=False)
    assert _state(consumer)[2] == Limit.HIDDEN
    consumer.set_view(visible=True)
    stage.video.pause()
    assert _state(consumer)[2] == Limit.PAUSED
    audio = consumer_report(stage.viewer.consume(stage.audio))
    assert (audio.kind, audio.limit, audio.temporal_layer) == (MediaKind.AUDIO, None, None)


async def test_a_connection_without_an_estimate_reports_none(router: Router) -> None:
    stage = Stage(router)
    stage.viewer.consume(stage.audio)
    report = receive_report(stage.viewer.consumers.values(), None)
    assert report.downlink_bps is None
    assert [c.kind for c in report.consumers] == [MediaKind.VIDEO, MediaKind.AUDIO]


def _switches(worker: Worker) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(MediaCollector(worker))
    families = {
        f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())
    }
    family = families["stage_sfu_layer_switches"]
    assert family.type == "counter"
    return {s.labels["direction"]: s.value for s in family.samples if s.name.endswith("_total")}


async def test_layer_switches_are_exported_by_direction_and_outlive_the_viewer() -> None:
    worker = Worker()
    try:
        stage = Stage(worker.create_router(on_event=EventRecorder()))
        assert _switches(worker) == {"up": 0, "down": 0}
        stage.key_frame(2)
        stage.consumer.set_view(visible=True, height=180)
        stage.key_frame(0)
        stage.consumer.set_view(visible=True, height=0)  # up begun...
        stage.consumer.set_view(visible=True, height=180)  # ... and dropped: still on q
        assert _switches(worker) == {"up": 1, "down": 1}
        stage.viewer.close()
        assert _switches(worker) == {"up": 1, "down": 1}
    finally:
        worker.close()
        await worker.wait_closed()
