"""The SFU's RTP capabilities and the pure negotiation rules (no I/O).

One SFU-wide table of payload types and extension ids is used in every offer
we make, so forwarding mostly rewrites SSRC/seq/ts. Answers to publishers
must keep the publisher's numbering (RFC 3264 §6.1); producers translate it
to ours once per packet.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from . import sdp
from .errors import NegotiationError
from .rtp_parameters import (
    URI_ABS_SEND_TIME,
    URI_AUDIO_LEVEL,
    URI_MID,
    URI_REPAIRED_RID,
    URI_RID,
    URI_TRANSPORT_CC,
    URI_VIDEO_ORIENTATION,
    CodecParameters,
    ReceiveParameters,
)
from .types import MediaKind, Mid

EXTENSION_IDS: dict[str, int] = {
    URI_AUDIO_LEVEL: 1,
    URI_ABS_SEND_TIME: 2,
    URI_TRANSPORT_CC: 3,
    URI_MID: 4,
    URI_VIDEO_ORIENTATION: 13,
}
# What producers copy from a publisher's packets into what they forward: every canonical
# extension but the transport-wide sequence number, which each transport writes for
# itself (a publisher's or a pipe's numbers mean nothing to a viewer).
FORWARDED_EXTENSION_IDS: dict[str, int] = {
    uri: ext_id for uri, ext_id in EXTENSION_IDS.items() if uri != URI_TRANSPORT_CC
}
# What publishers' answers keep (transport-cc is not negotiated toward publishers).
_EXTENSIONS_BY_KIND: dict[str, tuple[str, ...]] = {
    "audio": (URI_MID, URI_AUDIO_LEVEL, URI_ABS_SEND_TIME),
    "video": (URI_MID, URI_ABS_SEND_TIME, URI_VIDEO_ORIENTATION),
}
# What our offers to viewers carry: the same, plus transport-wide sequence numbers, which
# the SFU stamps on every packet to a viewer whose answer keeps them.
_CONSUMER_EXTENSIONS_BY_KIND: dict[str, tuple[str, ...]] = {
    kind: (*uris, URI_TRANSPORT_CC) for kind, uris in _EXTENSIONS_BY_KIND.items()
}
# Payload types in our offers to viewers, by codec name.
PAYLOAD_TYPES: dict[str, int] = {"opus": 111, "VP8": 96, "VP9": 98, "H264": 102}
# Each video codec's RTX (RFC 4588) in our offers to viewers: the stream probe padding
# goes on (sfu/padding.py).
RTX_PAYLOAD_TYPES: dict[int, int] = {96: 97, 98: 99, 102: 103}
# Preference when a publisher offers several: every browser decodes VP8.
_VIDEO_PREFERENCE = ("VP8", "H264", "VP9")
_VIDEO_FEEDBACK = ("goog-remb", "ccm fir", "nack", "nack pli")
# draft-holmer-rmcat-transport-wide-cc-extensions-01: the viewer may send transport-wide
# feedback (RTPFB FMT 15) on the packets of this codec.
_TRANSPORT_CC_FEEDBACK = "transport-cc"
# Kept in the answer of a simulcast section only: they tell its encodings apart.
_SIMULCAST_EXTENSIONS = (URI_RID, URI_REPAIRED_RID)
MAX_SIMULCAST_ENCODINGS = 4
# RFC 8851 §10 rid-id, at most 16 bytes so it fits one one-byte header extension
# element (RFC 8285 §4.2).
_RID = re.compile(r"[A-Za-z0-9_-]{1,16}")


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

    A sending video section with `a=simulcast:send` is accepted as simulcast (see
    `_simulcast`); the answer then also carries the rid lines, `a=simulcast:recv` and
    the rid header extensions. Raises NegotiationError for a simulcast offer the SFU
    cannot take (the message says why); nothing else here raises.
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
    sends = section.direction in (sdp.Direction.SENDONLY, sdp.Direction.SENDRECV)
    simulcast = _simulcast(section) if sends else None
    wanted = _EXTENSIONS_BY_KIND[section.kind]
    if simulcast is not None:
        wanted += _SIMULCAST_EXTENSIONS
    extensions = tuple(
        sdp.Extension(id=e.id, uri=e.uri) for e in section.extensions if e.uri in wanted
    )
    answer = sdp.MediaSection(
        kind=section.kind,
        port=9,
        protocol=section.protocol,
        mid=section.mid,
        direction=sdp.Direction.RECVONLY if sends else sdp.Direction.INACTIVE,
        codecs=tuple(codecs),
        extensions=extensions,
        rids=() if simulcast is None else tuple((rid, "recv") for rid in simulcast.offered),
        simulcast=None if simulcast is None else simulcast.answer,
        rtcp_mux=True,
        rtcp_rsize=section.rtcp_rsize,
    )
    if not sends:
        return answer, None
    # Simulcast encodings' SSRCs are learned from the rid extension, even when the
    # offer also lists a=ssrc lines: the rids decide.
    primary, rtx_ssrc = _ssrcs(section) if simulcast is None else (None, None)
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
        rids=() if simulcast is None else simulcast.lowest_first,
    )
    return answer, parameters


@dataclass(frozen=True, slots=True, kw_only=True)
class _Simulcast:
    """An accepted simulcast offer: the rids as offered (the answer lists them in that
    order), the same rids lowest quality first, and our a=simulcast value."""

    offered: tuple[str, ...]
    lowest_first: tuple[str, ...]
    answer: str


def _simulcast(section: sdp.MediaSection) -> _Simulcast | None:
    """The simulcast a sending m-section offers (RFC 8853), or None for one encoding.

    Only the send direction counts for a publisher; an a=rid list without
    `a=simulcast:send` is ignored. Each `;`-separated stream of the send list may
    offer `,`-separated alternatives; the first (the preferred, RFC 8853 §5.1) is
    taken. A leading `~` marks a stream the sender starts paused: it is accepted
    and the answer keeps the `~`, because libwebrtc sets each encoding's `active`
    from the answer's recv list (`UpdateSimulcastLayerStatusInSender`): dropping it
    would switch on an encoding the application created with `active: false`.
    """
    send = _simulcast_send_list(section)
    if send is None:
        return None
    where = f"m-section {section.mid}"
    if section.kind != "video":
        raise NegotiationError(f"{where}: simulcast is supported for video, not {section.kind}")
    if section.extension_id(URI_RID) is None:
        raise NegotiationError(
            f"{where}: simulcast needs the {URI_RID} header extension (RFC 8852), "
            "without it the encodings cannot be told apart"
        )
    streams = [alternatives.split(",")[0] for alternatives in send.split(";")]
    offered = tuple(stream.removeprefix("~") for stream in streams)
    if len(offered) > MAX_SIMULCAST_ENCODINGS:
        raise NegotiationError(
            f"{where}: simulcast with {len(offered)} encodings; "
            f"at most {MAX_SIMULCAST_ENCODINGS} are supported"
        )
    for rid in offered:
        if _RID.fullmatch(rid) is None:
            raise NegotiationError(
                f"{where}: rid {rid[:40]!r} in a=simulcast must be 1..16 characters "
                "of A-Z, a-z, 0-9, '_' and '-' (RFC 8851 §10)"
            )
    for names in (offered, [rid for rid, _ in section.rids]):
        repeated = [rid for rid, count in Counter(names).items() if count > 1]
        if repeated:
            raise NegotiationError(f"{where}: duplicate rid {repeated[0][:40]!r}")
    sending = {rid for rid, direction in section.rids if direction == "send"}
    for rid in offered:
        if rid not in sending:
            raise NegotiationError(
                f"{where}: a=simulcast names rid {rid!r} without an 'a=rid:{rid} send' line"
            )
    return _Simulcast(
        offered=offered,
        lowest_first=_lowest_first(section, offered),
        answer="recv " + ";".join(streams),
    )


def _simulcast_send_list(section: sdp.MediaSection) -> str | None:
    # RFC 8853 §5.1: sc-value = (sc-send [SP sc-recv]) / (sc-recv [SP sc-send]),
    # sc-send = "send" SP sc-str-list.
    if section.simulcast is None:
        return None
    words = section.simulcast.split()
    lists = dict(zip(words[::2], words[1::2], strict=False))
    well_formed = (
        len(words) in (2, 4)
        and len(lists) == len(words) // 2
        and lists.keys() <= {"send", "recv"}
        and all(stream for value in lists.values() for stream in _streams(value))
    )
    if not well_formed:
        raise NegotiationError(
            f"m-section {section.mid}: bad a=simulcast {section.simulcast[:80]!r}, "
            "expected e.g. 'send q;h;f' (RFC 8853 §5.1)"
        )
    return lists.get("send")


def _streams(value: str) -> list[str]:
    """Every alternative of every stream of an sc-str-list ("q;~h,h2" -> q, ~h, h2)."""
    return [alternative for stream in value.split(";") for alternative in stream.split(",")]


def _lowest_first(section: sdp.MediaSection, offered: tuple[str, ...]) -> tuple[str, ...]:
    """The rids ordered lowest quality first.

    Browsers list a section's rids in the order the application gave sendEncodings,
    and clients are expected to give them lowest first, as mediasoup-client and
    LiveKit do (q, h, f); Chromium writes no restrictions, so that order is kept.
    Where a=rid lines restrict the size (RFC 8851 §4: max-height, max-width) the
    restricted rids are sorted ascending by max-height, then max-width, among the
    positions they hold; rids without a size restriction keep their offer position.
    """
    unbounded = 2**32
    sizes: dict[str, tuple[int, int]] = {}
    for rid in offered:
        restrictions = section.rid_restrictions_of(rid)
        height, width = restrictions.get("max-height"), restrictions.get("max-width")
        if height or width:  # validated as numbers by sdp.MediaSection
            sizes[rid] = (int(height or unbounded), int(width or unbounded))
    ranked = iter(sorted(sizes, key=lambda rid: sizes[rid]))  # stable: ties keep order
    return tuple(next(ranked) if rid in sizes else rid for rid in offered)


def _ssrcs(section: sdp.MediaSection) -> tuple[int | None, int | None]:
    for semantics, group in section.ssrc_groups:
        if semantics == "FID" and len(group) == 2:
            return group[0], group[1]
    return (section.ssrcs[0] if section.ssrcs else None), None


def consumer_codec(producer_codec: CodecParameters) -> sdp.Codec:
    """The producer's codec under our payload type, as offered to a viewer: video with
    REMB, FIR, NACK and PLI feedback, both kinds with transport-cc."""
    video = _VIDEO_FEEDBACK if producer_codec.kind == "video" else ()
    feedback = (*video, _TRANSPORT_CC_FEEDBACK)
    return sdp.Codec(
        kind=str(producer_codec.kind),
        payload_type=PAYLOAD_TYPES[producer_codec.name],
        name=producer_codec.name,
        clock_rate=producer_codec.clock_rate,
        channels=producer_codec.channels,
        fmtp=producer_codec.parameters,
        rtcp_fb=feedback,
    )


def consumer_rtx_codec(codec: sdp.Codec) -> sdp.Codec | None:
    """The RTX codec offered with a viewer's video `codec` (None for audio)."""
    payload_type = RTX_PAYLOAD_TYPES.get(codec.payload_type)
    if codec.kind != "video" or payload_type is None:
        return None
    return sdp.Codec(
        kind="video",
        payload_type=payload_type,
        name="rtx",
        clock_rate=codec.clock_rate,
        fmtp=(("apt", str(codec.payload_type)),),
    )


def answer_keeps_rtx(section: sdp.MediaSection, rtx: sdp.Codec) -> bool:
    """Whether the viewer's answer kept the RTX we offered with its codec."""
    kept = section.codec(rtx.payload_type)
    return not section.rejected and kept is not None and kept.name.lower() == "rtx"


def consumer_extensions(kind: MediaKind) -> tuple[sdp.Extension, ...]:
    """The header extensions our offers to viewers carry on a `kind` m-section."""
    return tuple(
        sdp.Extension(id=EXTENSION_IDS[uri], uri=uri) for uri in _CONSUMER_EXTENSIONS_BY_KIND[kind]
    )


def answer_keeps_transport_cc(sections: Iterable[sdp.MediaSection]) -> bool:
    """Whether a viewer's answer (its m-sections for our offer) keeps transport-wide
    sequence numbers: an accepted m-section lists the extension under our id.

    An answerer declines an offered extension by leaving its extmap out (RFC 8285 §7);
    Chromium keeps this one, aiortc leaves it out. Under BUNDLE an id means one
    extension across the group, so one accepted section is enough to stamp every
    packet of the transport (and a receiver ignores elements whose id it did not
    negotiate, RFC 8285).
    """
    wanted = EXTENSION_IDS[URI_TRANSPORT_CC]
    return any(
        not section.rejected and section.extension_id(URI_TRANSPORT_CC) == wanted
        for section in sections
    )
