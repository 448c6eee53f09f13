"""The SFU's RTP capabilities and the pure negotiation rules (no I/O).

One SFU-wide table of payload types and extension ids is used in every offer
we make, so forwarding mostly rewrites SSRC/seq/ts. Answers to publishers
must keep the publisher's numbering (RFC 3264 §6.1); producers translate it
to ours once per packet.
"""

from __future__ import annotations

from . import sdp
from .rtp_parameters import (
    URI_ABS_SEND_TIME,
    URI_AUDIO_LEVEL,
    URI_MID,
    URI_VIDEO_ORIENTATION,
    CodecParameters,
    ReceiveParameters,
)
from .types import MediaKind, Mid

EXTENSION_IDS: dict[str, int] = {
    URI_AUDIO_LEVEL: 1,
    URI_ABS_SEND_TIME: 2,
    URI_MID: 4,
    URI_VIDEO_ORIENTATION: 13,
}
_EXTENSIONS_BY_KIND: dict[str, tuple[str, ...]] = {
    "audio": (URI_MID, URI_AUDIO_LEVEL, URI_ABS_SEND_TIME),
    "video": (URI_MID, URI_ABS_SEND_TIME, URI_VIDEO_ORIENTATION),
}
# Payload types in our offers to viewers, by codec name.
PAYLOAD_TYPES: dict[str, int] = {"opus": 111, "VP8": 96, "VP9": 98, "H264": 102}
# Preference when a publisher offers several: every browser decodes VP8.
_VIDEO_PREFERENCE = ("VP8", "H264", "VP9")
_VIDEO_FEEDBACK = ("goog-remb", "ccm fir", "nack", "nack pli")


def _acceptable(codec: sdp.Codec) -> bool:
    name = codec.name.upper()
    params = codec.parameters
    if codec.kind == "audio":
        return name == "OPUS" and codec.clock_rate == 48000
    if codec.clock_rate != 90000:
        return False
    if name == "H264":
        # Only the interleaving-free mode every browser decodes (RFC 6184 §5.4).
        return params.get("packetization-mode") == "1"
    if name == "VP9":
        return params.get("profile-id", "0") == "0"
    return name == "VP8"


def _canonical_name(codec: sdp.Codec) -> str:
    upper = codec.name.upper()
    return "opus" if upper == "OPUS" else upper


def choose_publish_codec(section: sdp.MediaSection) -> tuple[sdp.Codec, sdp.Codec | None] | None:
    """The codec we receive from this m-section, and its RTX codec if offered."""
    usable = [c for c in section.codecs if _acceptable(c)]
    if not usable:
        return None
    if section.kind == "video":
        usable.sort(key=lambda c: _VIDEO_PREFERENCE.index(_canonical_name(c)))
    chosen = usable[0]
    rtx = next(
        (c for c in section.codecs if c.name.lower() == "rtx" and c.apt == chosen.payload_type),
        None,
    )
    return chosen, rtx


def answer_publish_section(
    section: sdp.MediaSection,
) -> tuple[sdp.MediaSection, ReceiveParameters | None]:
    """Our answer m-section for one offered m-section, and what we will receive on it.

    Rejects (port 0) what cannot be forwarded: non-RTP sections, unknown kinds,
    no acceptable codec, no mid, or a section that does not send to us.
    """
    rejected = sdp.MediaSection(
        kind=section.kind,
        port=0,
        protocol=section.protocol,
        mid=section.mid,
        direction=sdp.Direction.INACTIVE,
        codecs=section.codecs[:1],
        formats=section.formats,
    )
    if section.rejected or not section.is_rtp or section.kind not in ("audio", "video"):
        return rejected, None
    if section.mid is None:
        return rejected, None
    choice = choose_publish_codec(section)
    if choice is None:
        return rejected, None
    chosen, rtx = choice
    kind = MediaKind(section.kind)
    feedback = _VIDEO_FEEDBACK if kind == "video" else ()
    codecs = [
        sdp.Codec(
            kind=chosen.kind,
            payload_type=chosen.payload_type,
            name=chosen.name,
            clock_rate=chosen.clock_rate,
            channels=chosen.channels,
            fmtp=chosen.fmtp,
            rtcp_fb=tuple(fb for fb in chosen.rtcp_fb if fb in feedback),
        )
    ]
    if rtx is not None:
        codecs.append(rtx)
    wanted = _EXTENSIONS_BY_KIND[section.kind]
    extensions = tuple(
        sdp.Extension(id=e.id, uri=e.uri) for e in section.extensions if e.uri in wanted
    )
    sends = section.direction in (sdp.Direction.SENDONLY, sdp.Direction.SENDRECV)
    answer = sdp.MediaSection(
        kind=section.kind,
        port=9,
        protocol=section.protocol,
        mid=section.mid,
        direction=sdp.Direction.RECVONLY if sends else sdp.Direction.INACTIVE,
        codecs=tuple(codecs),
        extensions=extensions,
        rtcp_mux=True,
        rtcp_rsize=section.rtcp_rsize,
    )
    if not sends:
        return answer, None
    primary, rtx_ssrc = _ssrcs(section)
    parameters = ReceiveParameters(
        mid=Mid(section.mid),
        codec=CodecParameters(
            kind=kind,
            name=_canonical_name(chosen),
            payload_type=chosen.payload_type,
            clock_rate=chosen.clock_rate,
            channels=chosen.channels,
            parameters=chosen.fmtp,
            rtcp_feedback=codecs[0].rtcp_fb,
        ),
        rtx_payload_type=rtx.payload_type if rtx is not None else None,
        ssrc=primary,
        rtx_ssrc=rtx_ssrc if rtx is not None else None,
        extensions={e.uri: e.id for e in extensions},
        cname=section.cname,
    )
    return answer, parameters


def _ssrcs(section: sdp.MediaSection) -> tuple[int | None, int | None]:
    for semantics, group in section.ssrc_groups:
        if semantics == "FID" and len(group) == 2:
            return group[0], group[1]
    return (section.ssrcs[0] if section.ssrcs else None), None


def consumer_codec(producer_codec: CodecParameters) -> sdp.Codec:
    """The producer's codec under our payload type, as offered to a viewer."""
    feedback = _VIDEO_FEEDBACK if producer_codec.kind == "video" else ()
    return sdp.Codec(
        kind=str(producer_codec.kind),
        payload_type=PAYLOAD_TYPES[producer_codec.name],
        name=producer_codec.name,
        clock_rate=producer_codec.clock_rate,
        channels=producer_codec.channels,
        fmtp=producer_codec.parameters,
        rtcp_fb=feedback,
    )


def consumer_extensions(kind: MediaKind) -> tuple[sdp.Extension, ...]:
    return tuple(sdp.Extension(id=EXTENSION_IDS[uri], uri=uri) for uri in _EXTENSIONS_BY_KIND[kind])
