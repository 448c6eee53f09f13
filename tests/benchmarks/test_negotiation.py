"""The viewer bots answer subscribe offers as a browser does (transport-cc kept, so the
SFU's stamping is in what stage-av measures) unless told to answer as aiortc does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from benchmarks.negotiation import VP8, subscribe_answer
from sfu import sdp
from sfu.aiortc_bridge import PeerConnection
from sfu.producer import Producer
from sfu.router import Router
from sfu.rtp_parameters import URI_TRANSPORT_CC, CodecParameters, ReceiveParameters
from sfu.types import MediaKind, Mid, ProducerId
from sfu.worker import Worker
from tests.fakes import EventRecorder


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    worker = Worker()
    yield worker.create_router(on_event=EventRecorder())
    worker.close()
    await worker.wait_closed()


@pytest.mark.parametrize("keep", [True, False])
async def test_bot_answers_keep_transport_cc_unless_told_not_to(
    router: Router, bot_peer: PeerConnection, keep: bool
) -> None:
    producer = Producer(
        producer_id=ProducerId("video"),
        parameters=ReceiveParameters(
            mid=Mid("1"),
            codec=CodecParameters(
                kind=MediaKind.VIDEO, name="VP8", payload_type=VP8.payload_type, clock_rate=90000
            ),
            ssrc=99,
        ),
        stream_id="alice",
        track_id="video",
        canonical_ext_ids={},
        options=router._options.media,
        clock=router._clock,
        send_rtcp=lambda data: True,
        on_event=EventRecorder(),
    )
    router.producer_added(producer)
    transport = await router.create_webrtc_transport()
    transport.consume(producer)

    answer, _, _ = subscribe_answer(
        transport.create_offer(), bot_peer, session_id=1, transport_cc=keep
    )
    await transport.apply_answer(answer)

    section = sdp.parse(answer).media[0]
    assert (section.extension_id(URI_TRANSPORT_CC) is not None) == keep
    assert transport.transport_cc == keep
