"""For unit tests that drive a real subscribe transport without a browser: producers
on a router to consume, and the SDP answers a viewer would give."""

from __future__ import annotations

from sfu import sdp
from sfu.ortc import EXTENSION_IDS
from sfu.producer import Producer
from sfu.router import Router
from sfu.rtp_parameters import URI_TRANSPORT_CC, CodecParameters, ReceiveParameters
from sfu.types import Mid, ProducerId
from tests.fakes import EventRecorder


def viewer_answer(offer_text: str, *, extensions: bool = False, transport_cc: bool = True) -> str:
    """A browser-like answer: every section accepted, recvonly, with the offered codecs;
    with `extensions`, keeping the offered header extensions (but transport-cc unless
    `transport_cc`)."""
    offer = sdp.parse(offer_text)
    fingerprint = sdp.Fingerprint(algorithm="sha-256", value=":".join(["AB"] * 32))
    candidate = sdp.Candidate(foundation="1", component=1, transport="udp", priority=1,
                              host="127.0.0.1", port=9, type="host")  # fmt: skip
    media = tuple(
        sdp.MediaSection(
            kind=section.kind,
            port=9 if section.port else 0,
            mid=section.mid,
            direction=sdp.Direction.RECVONLY if section.port else sdp.Direction.INACTIVE,
            codecs=section.codecs,
            extensions=tuple(
                e
                for e in section.extensions
                if extensions and (transport_cc or e.uri != URI_TRANSPORT_CC)
            ),
            rtcp_mux=True,
            ice_ufrag="abcd",
            ice_pwd="a" * 22,
            fingerprints=(fingerprint,),
            setup=sdp.Setup.ACTIVE,
            candidates=(candidate,),
        )
        for section in offer.media
    )
    return sdp.serialize(
        sdp.SessionDescription(
            origin_session_id=1,
            bundle_mids=tuple(s.mid for s in media if s.port and s.mid is not None),
            media=media,
        )
    )


def router_producer(router: Router, name: str, codec: CodecParameters) -> Producer:
    """A producer of `codec` on `router`, fed by nothing: something to consume."""
    producer = Producer(
        producer_id=ProducerId(name),
        parameters=ReceiveParameters(mid=Mid("0"), codec=codec, ssrc=1234),
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
