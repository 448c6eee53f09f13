"""Server-offered subscribe negotiation on a real transport: answers, races and roles."""

from __future__ import annotations

import random

import pytest

from sfu import sdp
from sfu.router import Router
from sfu.rtp_parameters import CodecParameters
from sfu.types import MediaKind
from sfu.webrtc_transport import WebRtcTransport
from tests.subscribe_helpers import router_producer, viewer_answer

OPUS = CodecParameters(
    kind=MediaKind.AUDIO, name="opus", payload_type=111, clock_rate=48000, channels=2
)


async def test_a_consumer_added_while_an_offer_is_out_waits_for_the_next_offer(
    router: Router,
) -> None:
    transport: WebRtcTransport = await router.create_webrtc_transport()
    first = transport.consume(router_producer(router, "a", OPUS))
    offer = transport.create_offer()
    # e.g. a second speaker, 60 ms later
    late = transport.consume(router_producer(router, "b", OPUS))

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
    transport.consume(router_producer(router, "a", OPUS))
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
    tag = transport.consume(router_producer(router, "tag", OPUS))
    gone = transport.consume(router_producer(router, "gone", OPUS))
    await _negotiate(transport)
    gone.close()
    ended = await _negotiate(transport)  # offered closed, answered closed
    assert [s.rejected for s in ended] == [False, True]

    fresh = transport.consume(router_producer(router, "fresh", OPUS))
    sections = await _negotiate(transport)

    assert [s.mid for s in sections] == [tag.mid, fresh.mid]
    assert fresh.mid != gone.mid  # a recycled m-section gets a new mid (JSEP)
    assert not sections[1].rejected and sections[1].direction is sdp.Direction.SENDONLY


async def test_an_m_section_is_not_reused_before_the_peer_has_answered_it_closed(
    router: Router,
) -> None:
    transport = await router.create_webrtc_transport()
    transport.consume(router_producer(router, "tag", OPUS))
    gone = transport.consume(router_producer(router, "gone", OPUS))
    await _negotiate(transport)
    gone.close()

    # the end is not negotiated yet
    fresh = transport.consume(router_producer(router, "fresh", OPUS))
    sections = await _negotiate(transport)

    assert [s.mid for s in sections][1:] == [gone.mid, fresh.mid]
    assert [s.rejected for s in sections] == [False, True, False]


async def test_the_bundle_tag_is_never_reused(router: Router) -> None:
    transport = await router.create_webrtc_transport()
    tag = transport.consume(router_producer(router, "tag", OPUS))
    await _negotiate(transport)
    tag.close()
    await _negotiate(transport)

    fresh = transport.consume(router_producer(router, "fresh", OPUS))
    sections = await _negotiate(transport)

    assert [s.mid for s in sections] == [tag.mid, fresh.mid]


async def test_the_offer_stays_the_same_size_however_many_tracks_came_and_went(
    router: Router,
) -> None:
    transport = await router.create_webrtc_transport()
    transport.consume(router_producer(router, "tag", OPUS))
    sizes = []
    for n in range(300):  # a long panel: people take the stage and leave it
        audio = transport.consume(router_producer(router, f"speaker-{n}", OPUS))
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
    first = transport.consume(router_producer(router, "a", OPUS))
    retired = first.ssrc
    first.close()
    next_producer = router_producer(router, "b", OPUS)
    draws = [retired, 0xC0FFEE]  # the first SSRC drawn is the retired one
    real = random.getrandbits

    def draw(bits: int) -> int:
        return draws.pop(0) if bits == 32 and draws else real(bits)

    monkeypatch.setattr("sfu.types.random.getrandbits", draw)
    second = transport.consume(next_producer)
    assert second.ssrc == 0xC0FFEE
    transport.close()
