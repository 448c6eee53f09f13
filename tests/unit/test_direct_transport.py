"""Router behaviour with real producers and consumers on in-process transports:
no UDP, ICE or DTLS, on the native fan-out and on the pure-Python one."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator

import pytest

from sfu import fastpath
from sfu.consumer import Consumer
from sfu.direct_transport import DirectTransport
from sfu.events import ConsumerClosed, ProducerClosed, TransportClosed
from sfu.options import MediaOptions, WorkerOptions
from sfu.producer import Producer
from sfu.router import Router
from sfu.rtp import rtcp
from sfu.rtp_parameters import CodecParameters, ReceiveParameters
from sfu.types import CloseReason, MediaKind, Mid
from sfu.worker import Worker
from tests.fakes import EventRecorder, FakeClock
from tests.packets import make_rtp, make_vp8_payload, parse_all, rtcp_of

OPUS = CodecParameters(
    kind=MediaKind.AUDIO, name="opus", payload_type=111, clock_rate=48000, channels=2
)
VP8 = CodecParameters(kind=MediaKind.VIDEO, name="VP8", payload_type=96, clock_rate=90000)
PUBLISHED_SSRC = 0x1234


class Endpoint:
    """A direct transport and what it was given to deliver."""

    def __init__(self, router: Router) -> None:
        self.rtp: list[bytes] = []
        self.rtcp: list[bytes] = []
        self.transport: DirectTransport = router.create_direct_transport(
            on_rtp=self.rtp.append, on_rtcp=self.rtcp.append
        )


@pytest.fixture(
    params=[
        pytest.param(True, id="native"),
        pytest.param(False, id="python"),
    ]
)
def native(request: pytest.FixtureRequest) -> bool:
    if request.param and not fastpath.native_available():
        pytest.skip("the native fast path is not built")
    return bool(request.param)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> EventRecorder:
    return EventRecorder()


@pytest.fixture
async def router(native: bool, clock: FakeClock, events: EventRecorder) -> AsyncIterator[Router]:
    worker = Worker(WorkerOptions(media=MediaOptions(native_fastpath=native)), clock=clock)
    yield worker.create_router(on_event=events)
    worker.close()
    await worker.wait_closed()


async def _delivered() -> None:
    """Let the loop flush the native queues (the Python path has delivered already)."""
    await asyncio.sleep(0)


def _published(codec: CodecParameters) -> ReceiveParameters:
    return ReceiveParameters(mid=Mid("0"), codec=codec, ssrc=PUBLISHED_SSRC)


def _one_viewer(
    router: Router, codec: CodecParameters
) -> tuple[Endpoint, Endpoint, Producer, Consumer]:
    """A publisher's stream of `codec`, consumed by one viewer."""
    publisher, viewer = Endpoint(router), Endpoint(router)
    producer = publisher.transport.produce(_published(codec))
    return publisher, viewer, producer, viewer.transport.consume(producer)


async def test_a_producers_packets_reach_two_consumers_through_the_router(router: Router) -> None:
    publisher, first, second = Endpoint(router), Endpoint(router), Endpoint(router)
    producer = publisher.transport.produce(_published(OPUS))
    consumers = [viewer.transport.consume(producer) for viewer in (first, second)]

    for seq in range(3):
        publisher.transport.send_rtp(make_rtp(seq, seq * 960, PUBLISHED_SSRC, pt=111,
                                              payload=b"opus-%d" % seq))  # fmt: skip
    await _delivered()

    for viewer, consumer in zip((first, second), consumers, strict=True):
        packets = parse_all(viewer.rtp)
        assert [p.data[p.payload_start : p.payload_end] for p in packets] == [
            b"opus-0", b"opus-1", b"opus-2",
        ]  # fmt: skip
        assert {p.ssrc for p in packets} == {consumer.ssrc}
        assert consumer.packets_sent == 3
    assert consumers[0].ssrc != PUBLISHED_SSRC


async def test_closing_the_producer_closes_its_consumers_and_says_so(
    router: Router, events: EventRecorder
) -> None:
    publisher, first, second = Endpoint(router), Endpoint(router), Endpoint(router)
    producer = publisher.transport.produce(_published(OPUS))
    consumers = [viewer.transport.consume(producer) for viewer in (first, second)]

    producer.close()

    assert all(consumer.closed for consumer in consumers)
    assert not first.transport.consumers and not second.transport.consumers
    assert producer.id not in router.producers
    closed = events.of(ConsumerClosed)
    assert {event.consumer_id for event in closed} == {c.id for c in consumers}
    assert {event.reason for event in closed} == {CloseReason.PRODUCER_CLOSED}
    assert events.of(ProducerClosed) == [
        ProducerClosed(producer_id=producer.id, reason=CloseReason.REQUESTED)
    ]
    publisher.transport.send_rtp(make_rtp(1, 960, PUBLISHED_SSRC, pt=111))
    await _delivered()
    assert first.rtp == second.rtp == []


async def test_a_consumers_key_frame_request_reaches_the_producer(
    router: Router, clock: FakeClock
) -> None:
    publisher, viewer, _, consumer = _one_viewer(router, VP8)
    # Starting video asks for a key frame at once; the viewer's own request comes later.
    assert len(rtcp_of(publisher.rtcp, rtcp.PictureLossIndication)) == 1
    publisher.transport.send_rtp(
        make_rtp(0, 0, PUBLISHED_SSRC, pt=96, payload=make_vp8_payload(True))
    )
    await _delivered()  # it plays: what it asks for now is its own decoder's need
    clock.advance(router._options.media.key_frame_min_interval)

    pli = rtcp.PictureLossIndication(sender_ssrc=1, media_ssrc=consumer.ssrc)
    viewer.transport.send_rtcp(rtcp.serialize(pli))

    requests = rtcp_of(publisher.rtcp, rtcp.PictureLossIndication)
    assert len(requests) == 2
    assert requests[-1].media_ssrc == PUBLISHED_SSRC
    assert consumer.key_frame_requests_received == 1


async def test_video_reaches_a_consumer_from_the_first_key_frame(router: Router) -> None:
    publisher, viewer, _, _ = _one_viewer(router, VP8)

    for seq, key in enumerate((False, True, False)):
        publisher.transport.send_rtp(make_rtp(seq, seq * 3000, PUBLISHED_SSRC, pt=96,
                                              payload=make_vp8_payload(key)))  # fmt: skip
    await _delivered()

    assert len(viewer.rtp) == 2  # the delta frame before the key frame is held back


async def test_a_closed_transport_closes_its_media_and_is_freed_without_the_collector(
    router: Router, events: EventRecorder
) -> None:
    publisher, viewer, producer, consumer = _one_viewer(router, OPUS)
    publisher.transport.send_rtp(make_rtp(0, 0, PUBLISHED_SSRC, pt=111))
    await _delivered()
    transport_id = viewer.transport.id
    freed = weakref.ref(viewer.transport)

    gc.disable()
    try:
        viewer.transport.close()
        del viewer.transport, consumer
        assert freed() is None
    finally:
        gc.enable()
    assert transport_id not in router.transports
    assert producer.consumers == ()
    assert events.of(TransportClosed) == [
        TransportClosed(transport_id=transport_id, reason=CloseReason.REQUESTED)
    ]
