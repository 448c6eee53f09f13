"""SDP answers a viewer would give to the server's subscribe offers, for unit tests
that drive a real transport without a browser."""

from __future__ import annotations

from sfu import sdp
from sfu.rtp_parameters import URI_TRANSPORT_CC


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
