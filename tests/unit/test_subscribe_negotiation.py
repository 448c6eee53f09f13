"""Server-offered subscribe negotiation on a real transport: answers, races and roles."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from sfu import sdp
from sfu.ortc import EXTENSION_IDS
from sfu.producer import Producer
from sfu.router import Router
from sfu.rtp_parameters import CodecParameters, ReceiveParameters
from sfu.types import MediaKind, Mid, ProducerId
from sfu.webrtc_transport import WebRtcTransport
from sfu.worker import Worker
from tests.fakes import EventRecorder
from tests.viewer_answers import viewer_answer


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    worker = Worker()
    yield worker.create_router(on_event=EventRecorder())
    worker.close()
    await worker.wait_closed()


def _producer(router: Router, name: str) -> Producer:
    producer = Producer(
        producer_id=ProducerId(name),
        parameters=ReceiveParameters(
            mid=Mid("0"),
            codec=CodecParameters(
                kind=MediaKind.AUDIO, name="opus", payload_type=111, clock_rate=48000, channels=2
            ),
            ssrc=1234,
        ),
        stream_id=f"stream-{name}",
        track_id=f"track-{name}",
        canonical_ext_ids=EXTENSION_IDS,
        options=router._options.media,
        clock=router._clock,
        send_rtcp=lambda data: True,
        on_event=EventRecorder(),
    )
    router.producer_added(producer)
    return producer


async def test_a_consumer_added_while_an_offer_is_out_waits_for_the_next_offer(
    router: Router,
) -> None:
    transport: WebRtcTransport = await router.create_webrtc_transport()
    first = transport.consume(_producer(router, "a"))
    offer = transport.create_offer()
    late = transport.consume(_producer(router, "b"))  # e.g. a second speaker, 60 ms later

    await transport.apply_answer(viewer_answer(offer))  # answers what was offered: accepted

    assert not transport.offer_pending
    assert not first.closed and not late.closed
    second = transport.create_offer()
    mids = [section.mid for section in sdp.parse(second).media]
    assert mids == [first.mid, late.mid]
    await transport.apply_answer(viewer_answer(second))
    assert not transport.offer_pending


async def test_the_offerer_controls_ice_as_soon_as_the_offer_is_written(router: Router) -> None:
    transport = await router.create_webrtc_transport()
    transport.consume(_producer(router, "a"))
    assert not transport._peer._connection.ice_controlling
    transport.create_offer()
    assert transport._peer._connection.ice_controlling


async def _negotiate(transport: WebRtcTransport) -> list[sdp.MediaSection]:
    offer = transport.create_offer()
    await transport.apply_answer(viewer_answer(offer))
    return list(sdp.parse(offer).media)


async def test_an_ended_m_section_is_reused_for_a_new_track_under_a_new_mid(
    router: Router,
) -> None:
    transport = await router.create_webrtc_transport()
    tag = transport.consume(_producer(router, "tag"))
    gone = transport.consume(_producer(router, "gone"))
    await _negotiate(transport)
    gone.close()
    ended = await _negotiate(transport)  # offered closed, answered closed
    assert [s.rejected for s in ended] == [False, True]

    fresh = transport.consume(_producer(router, "fresh"))
    sections = await _negotiate(transport)

    assert [s.mid for s in sections] == [tag.mid, fresh.mid]
    assert fresh.mid != gone.mid  # a recycled m-section gets a new mid (JSEP)
    assert not sections[1].rejected and sections[1].direction is sdp.Direction.SENDONLY


async def test_an_m_section_is_not_reused_before_the_peer_has_answered_it_closed(
    router: Router,
) -> None:
    transport = await router.create_webrtc_transport()
    transport.consume(_producer(router, "tag"))
    gone = transport.consume(_producer(router, "gone"))
    await _negotiate(transport)
    gone.close()

    fresh = transport.consume(_producer(router, "fresh"))  # the end is not negotiated yet
    sections = await _negotiate(transport)

    assert [s.mid for s in sections][1:] == [gone.mid, fresh.mid]
    assert [s.rejected for s in sections] == [False, True, False]


async def test_the_bundle_tag_is_never_reused(router: Router) -> None:
    transport = await router.create_webrtc_transport()
    tag = transport.consume(_producer(router, "tag"))
    await _negotiate(transport)
    tag.close()
    await _negotiate(transport)

    fresh = transport.consume(_producer(router, "fresh"))
    sections = await _negotiate(transport)

    assert [s.mid for s in sections] == [tag.mid, fresh.mid]


async def test_the_offer_stays_the_same_size_however_many_tracks_came_and_went(
    router: Router,
) -> None:
    transport = await router.create_webrtc_transport()
    transport.consume(_producer(router, "tag"))
    sizes = []
    for n in range(300):  # a long panel: people take the stage and leave it
        audio = transport.consume(_producer(router, f"speaker-{n}"))
        await _negotiate(transport)
        audio.close()
        offer = transport.create_offer()
        sizes.append(len(offer))
        await transport.apply_answer(viewer_answer(offer))

    assert len(sdp.parse(offer).media) == 2
    assert max(sizes) - min(sizes) < 64  # only the mid's digits grow


async def test_a_closed_consumers_ssrc_is_never_used_again_on_its_connection(
    router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its SRTP packet index was dropped with it: the same SSRC under the same keys would
    # restart the index and reuse keystream (RFC 3711 §9.1).
    transport = await router.create_webrtc_transport()
    first = transport.consume(_producer(router, "a"))
    retired = first.ssrc
    first.close()
    next_producer = _producer(router, "b")
    draws = [retired, 0xC0FFEE]  # the first SSRC drawn is the retired one
    real = random.getrandbits

    def draw(bits: int) -> int:
        return draws.pop(0) if bits == 32 and draws else real(bits)

    monkeypatch.setattr("sfu.types.random.getrandbits", draw)
    second = transport.consume(next_producer)
    assert second.ssrc == 0xC0FFEE
    transport.close()
