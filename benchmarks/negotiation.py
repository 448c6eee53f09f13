"""The bots' SDP, built with `sfu.sdp`: a publisher's offer and a viewer's answer.

Both carry the bot's one host candidate, its ICE credentials and DTLS fingerprints
from a gathered `sfu.aiortc_bridge.PeerConnection`, BUNDLE and rtcp-mux, and the
SFU-wide payload types and extension ids (`sfu.ortc`) so the SFU's per-packet
translation is the same as for a browser that numbers things our way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sfu import sdp
from sfu.aiortc_bridge import PeerConnection, RemoteEndpoint
from sfu.ortc import EXTENSION_IDS, PAYLOAD_TYPES
from sfu.rtp_parameters import URI_ABS_SEND_TIME, URI_AUDIO_LEVEL, URI_MID

AUDIO_MID = "0"
VIDEO_MID = "1"
VIDEO_FEEDBACK = ("goog-remb", "ccm fir", "nack", "nack pli")

OPUS = sdp.Codec(
    kind="audio",
    payload_type=PAYLOAD_TYPES["opus"],
    name="opus",
    clock_rate=48000,
    channels=2,
    fmtp=(("minptime", "10"), ("useinbandfec", "1")),
)
VP8 = sdp.Codec(
    kind="video",
    payload_type=PAYLOAD_TYPES["VP8"],
    name="VP8",
    clock_rate=90000,
    rtcp_fb=VIDEO_FEEDBACK,
)
AUDIO_EXTENSIONS = tuple(
    sdp.Extension(id=EXTENSION_IDS[uri], uri=uri)
    for uri in (URI_MID, URI_AUDIO_LEVEL, URI_ABS_SEND_TIME)
)
VIDEO_EXTENSIONS = tuple(
    sdp.Extension(id=EXTENSION_IDS[uri], uri=uri) for uri in (URI_MID, URI_ABS_SEND_TIME)
)


@dataclass(frozen=True, slots=True)
class SendStreams:
    """What a publisher sends: SSRCs (None = that kind is not published) and its CNAME."""

    audio_ssrc: int | None
    video_ssrc: int | None
    cname: str


def _transport_fields(peer: PeerConnection) -> dict[str, object]:
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
    return {
        "port": candidates[0].port if candidates else 9,
        "ice_ufrag": peer.ice_ufrag,
        "ice_pwd": peer.ice_pwd,
        "fingerprints": tuple(
            sdp.Fingerprint(algorithm=a, value=v.upper()) for a, v in peer.fingerprints
        ),
        "candidates": candidates,
        "end_of_candidates": True,
        "rtcp_mux": True,
    }


def publish_offer(peer: PeerConnection, streams: SendStreams, *, session_id: int) -> str:
    """A sendonly offer: Opus on mid 0 and/or VP8 on mid 1, with a=ssrc, setup actpass."""
    common = _transport_fields(peer)
    sections = []
    for mid, ssrc, codec, extensions in (
        (AUDIO_MID, streams.audio_ssrc, OPUS, AUDIO_EXTENSIONS),
        (VIDEO_MID, streams.video_ssrc, VP8, VIDEO_EXTENSIONS),
    ):
        if ssrc is None:
            continue
        sections.append(
            sdp.MediaSection(
                kind=codec.kind,
                mid=mid,
                direction=sdp.Direction.SENDONLY,
                codecs=(codec,),
                extensions=extensions,
                ssrcs=(ssrc,),
                cname=streams.cname,
                msid=f"{streams.cname} {streams.cname}-{codec.kind}",
                rtcp_rsize=True,
                setup=sdp.Setup.ACTPASS,
                **common,  # type: ignore[arg-type]
            )
        )
    description = sdp.SessionDescription(
        origin_session_id=session_id,
        bundle_mids=tuple(s.mid for s in sections if s.mid is not None),
        media=tuple(sections),
    )
    return sdp.serialize(description)


def _answer_codecs(section: sdp.MediaSection) -> tuple[sdp.Codec, ...]:
    """Opus for audio, VP8 for video; the SFU offers exactly one codec, aiortc several."""
    wanted = "opus" if section.kind == "audio" else "vp8"
    chosen = [c for c in section.codecs if c.name.lower() == wanted]
    return tuple(chosen[:1]) or section.codecs[:1]


def subscribe_answer(
    offer_sdp: str, peer: PeerConnection, *, session_id: int
) -> tuple[str, dict[int, str], dict[int, str]]:
    """A recvonly answer (setup active) to a subscribe offer.

    Returns the SDP, SSRC -> kind and payload type -> kind for every stream offered,
    so received packets can be told apart by their clear RTP header.
    """
    offer = sdp.parse(offer_sdp)
    common = _transport_fields(peer)
    sections = []
    kinds: dict[int, str] = {}
    payload_kinds: dict[int, str] = {}
    for section in offer.media:
        if section.rejected or not section.is_rtp or section.kind not in ("audio", "video"):
            sections.append(
                sdp.MediaSection(
                    kind=section.kind,
                    port=0,
                    protocol=section.protocol,
                    mid=section.mid,
                    direction=sdp.Direction.INACTIVE,
                    codecs=section.codecs[:1],
                    formats=section.formats,
                )
            )
            continue
        for ssrc in section.ssrcs:
            kinds[ssrc] = section.kind
        for codec in section.codecs:
            payload_kinds[codec.payload_type] = section.kind
        sections.append(
            sdp.MediaSection(
                kind=section.kind,
                protocol=section.protocol,
                mid=section.mid,
                direction=section.direction.reversed(),
                codecs=_answer_codecs(section),
                extensions=tuple(sdp.Extension(id=e.id, uri=e.uri) for e in section.extensions),
                rtcp_rsize=section.rtcp_rsize,
                setup=sdp.Setup.ACTIVE,
                **common,  # type: ignore[arg-type]
            )
        )
    accepted = tuple(s.mid for s in sections if s.mid is not None and s.port)
    bundle = tuple(mid for mid in offer.bundle_mids if mid in accepted) or accepted
    description = sdp.SessionDescription(
        origin_session_id=session_id, bundle_mids=bundle, media=tuple(sections)
    )
    return sdp.serialize(description), kinds, payload_kinds


def remote_endpoint(remote_sdp: str, *, we_answered: bool) -> RemoteEndpoint:
    """ICE/DTLS of the peer. As answerer we said setup:active, so we are the DTLS client;
    as offerer (actpass) the peer's answer decides: it says active -> we serve."""
    transport = sdp.parse(remote_sdp).transport_parameters()
    return RemoteEndpoint(
        ice_ufrag=transport.ice_ufrag,
        ice_pwd=transport.ice_pwd,
        ice_lite=transport.ice_lite,
        candidates=[c.to_sdp() for c in transport.candidates],
        fingerprints=[(f.algorithm, f.value) for f in transport.fingerprints],
        dtls_server=False if we_answered else transport.setup == sdp.Setup.ACTIVE,
    )
