"""The transport half of our SDP: a gathered PeerConnection's ICE and DTLS attributes
written into every m-section, and a remote description's read back as a RemoteEndpoint.

WebRtcTransport negotiates with it, and so does anything else that speaks SDP for a
PeerConnection (the benchmark bots), so both sides of a test call write the same SDP.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import sdp
from .aiortc_bridge import PeerConnection, RemoteEndpoint
from .errors import NegotiationError


def describe(
    sections: Sequence[sdp.MediaSection],
    peer: PeerConnection,
    *,
    setup: sdp.Setup,
    session_id: int,
    session_version: int,
) -> sdp.SessionDescription:
    """`sections` with `peer`'s candidates, credentials and fingerprints, BUNDLEd
    (RFC 8843) over every section that is not rejected, with rtcp-mux."""
    candidates = tuple(
        sdp.Candidate(
            foundation=c.foundation[:32],
            component=1,
            transport="udp",
            priority=c.priority,
            host=c.address,
            port=c.port,
            type="host",
        )
        for c in peer.local_candidates
    )
    fingerprints = tuple(
        sdp.Fingerprint(algorithm=a, value=v.upper()) for a, v in peer.fingerprints
    )
    port = candidates[0].port if candidates else 9
    full: list[sdp.MediaSection] = []
    for section in sections:
        # Rejected sections keep ICE/DTLS attributes too: some endpoints
        # (aiortc) validate them on every m-section.
        full.append(
            sdp.MediaSection(
                kind=section.kind,
                port=0 if section.rejected else port,
                protocol=section.protocol,
                mid=section.mid,
                direction=section.direction,
                codecs=section.codecs,
                formats=section.formats,  # a rejected data channel's, say
                extensions=section.extensions,
                ssrcs=section.ssrcs,
                ssrc_groups=section.ssrc_groups,
                cname=section.cname,
                msid=section.msid,
                rids=section.rids,
                rid_restrictions=section.rid_restrictions,
                simulcast=section.simulcast,
                rtcp_mux=True,
                rtcp_rsize=section.rtcp_rsize,
                ice_ufrag=peer.ice_ufrag,
                ice_pwd=peer.ice_pwd,
                fingerprints=fingerprints,
                setup=setup,
                candidates=() if section.rejected else candidates,
                end_of_candidates=not section.rejected,
            )
        )
    return sdp.SessionDescription(
        origin_session_id=session_id,
        origin_session_version=session_version,
        bundle_mids=tuple(s.mid for s in full if not s.rejected and s.mid is not None),
        media=tuple(full),
    )


def serves_dtls_after_answer(answer_setup: sdp.Setup) -> bool:
    """Whether we are the DTLS server once the peer answered our actpass (RFC 5763 §5):
    its active makes us serve; anything but active or passive is refused."""
    if answer_setup not in (sdp.Setup.ACTIVE, sdp.Setup.PASSIVE):
        raise NegotiationError(f"an answer must say a=setup:active or passive, not {answer_setup}")
    return answer_setup == sdp.Setup.ACTIVE


def remote_endpoint(transport: sdp.TransportParameters, *, dtls_server: bool) -> RemoteEndpoint:
    """What ICE and DTLS need of the peer, with our DTLS role already decided."""
    return RemoteEndpoint(
        ice_ufrag=transport.ice_ufrag,
        ice_pwd=transport.ice_pwd,
        ice_lite=transport.ice_lite,
        candidates=[c.to_sdp() for c in transport.candidates],
        fingerprints=[(f.algorithm, f.value) for f in transport.fingerprints],
        dtls_server=dtls_server,
    )
