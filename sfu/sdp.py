"""SDP offers and answers (RFC 8866) as immutable values: `parse` and `serialize`.

The SFU writes its own SDP instead of using aiortc's: it answers a browser's publish
offer and offers sendonly m-sections to viewers, so it controls SSRCs, payload types
and extension ids exactly. The value types and the serializer live in `sfu.sdp_build`
and are re-exported here; import everything from this module.

Parsing is tolerant of what browsers add (unknown attributes and line types are
ignored) and strict about what it understands: a malformed attribute the SFU relies
on raises NegotiationError naming the line, as does anything that is not SDP. No
other exception escapes `parse`.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass, field

from sfu.errors import NegotiationError
from sfu.sdp_build import (
    MAX_SDP_BYTES,
    Candidate,
    Codec,
    Direction,
    Extension,
    Fingerprint,
    MediaSection,
    SessionDescription,
    Setup,
    TransportParameters,
    parse_uint,
    require,
    require_token,
    serialize,
)

__all__ = [
    "EXT_ABS_SEND_TIME",
    "EXT_AUDIO_LEVEL",
    "EXT_MID",
    "EXT_REPAIRED_RID",
    "EXT_RID",
    "EXT_TRANSPORT_CC",
    "MAX_SDP_BYTES",
    "Candidate",
    "Codec",
    "Direction",
    "Extension",
    "Fingerprint",
    "MediaSection",
    "NegotiationError",
    "SessionDescription",
    "Setup",
    "TransportParameters",
    "parse",
    "serialize",
]

# Header extension URIs (RFC 8285) the SFU looks up by name.
EXT_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
EXT_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
EXT_RID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
EXT_REPAIRED_RID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
EXT_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
EXT_TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"

_RTPMAP = re.compile(r"([0-9]{1,3}) ([^/\s]+)/([0-9]{1,10})(?:/([0-9]{1,3}))?")
_DIRECTIONS = {d.value: d for d in Direction}
_SETUPS = {s.value: s for s in Setup}

# RFC 3551 §6: static payload types may appear on the m-line without an rtpmap.
_STATIC_PTS: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000), 3: ("GSM", 8000), 4: ("G723", 8000), 8: ("PCMA", 8000),
    9: ("G722", 8000), 13: ("CN", 8000), 18: ("G729", 8000), 34: ("H263", 90000),
}  # fmt: skip

_Attr = tuple[str, str, int]  # (name, value, line number)


@dataclass(slots=True)
class _Inherited:
    """Session-level attributes that apply to every m-section lacking its own."""

    direction: Direction | None = None
    ice_options: tuple[str, ...] = ()
    extensions: list[Extension] = field(default_factory=list)


def parse(sdp: str, *, require_media: bool = True) -> SessionDescription:
    """Parse an SDP offer or answer with \\r\\n or \\n line endings.

    Raises NegotiationError for input over 64 KiB, text not starting with v=0, a
    missing or bad o= line, no m= sections (unless `require_media` is False), a bad
    m= line or payload type, a malformed attribute that the SFU uses, SSRCs without
    a cname, duplicate mids, a BUNDLE group naming an unknown mid, more than one
    BUNDLE group, or an a=rid max-width/max-height that is not a number.
    """
    # The char count bounds the cost of the byte count; surrogatepass: never raise.
    size_ok = len(sdp) <= MAX_SDP_BYTES
    size_ok = size_ok and len(sdp.encode("utf-8", "surrogatepass")) <= MAX_SDP_BYTES
    require(size_ok, f"SDP is larger than {MAX_SDP_BYTES} bytes")
    lines = [(n, line.rstrip("\r")) for n, line in enumerate(sdp.split("\n"), start=1)]
    lines = [(n, line) for n, line in lines if line.strip()]
    require(bool(lines) and lines[0][1].strip() == "v=0", "SDP must start with 'v=0'")

    session_attrs: list[_Attr] = []
    sections: list[tuple[str, int, list[_Attr]]] = []
    origin: tuple[int, int] | None = None
    for number, line in lines[1:]:
        ok = len(line) >= 2 and line[1] == "=" and line[0].isascii() and line[0].isalpha()
        require(ok, f"line {number} is not '<type>=<value>': {line[:60]!r}")
        kind, value = line[0], line[2:]
        if kind == "m":
            sections.append((value, number, []))
        elif kind == "o" and not sections:
            origin = _origin(value, number)
        elif kind == "a":
            name, _, attr_value = value.partition(":")
            (sections[-1][2] if sections else session_attrs).append((name, attr_value, number))
        # c=, b=, s=, t=, i= ... carry nothing the SFU uses: c= is derived on output.
    require(origin is not None, "SDP has no o= line (RFC 8866 §5.2)")
    require(bool(sections) or not require_media, "SDP has no m= sections")
    assert origin is not None  # narrowed by require() above

    inherited = _Inherited()
    bundle: tuple[str, ...] | None = None
    fields: dict[str, str] = {}
    fingerprints: list[Fingerprint] = []
    flags: set[str] = set()
    for name, value, number in session_attrs:
        match name:
            case "group" if value.split()[:1] == ["BUNDLE"]:
                require(bundle is None, "more than one BUNDLE group is not supported")
                bundle = tuple(require_token(mid, "BUNDLE mid") for mid in value.split()[1:])
            case "ice-lite" | "extmap-allow-mixed":
                flags.add(name)
            case "ice-ufrag" | "ice-pwd" | "msid-semantic":
                fields.setdefault(name, value.strip())
            case "setup":
                fields.setdefault(name, _enum(_SETUPS, value, "a=setup", number))
            case "fingerprint":
                fingerprints.append(_fingerprint(value, number))
            case "ice-options":
                inherited.ice_options = tuple(value.split())
            case "extmap":
                inherited.extensions.append(_extension(value, number))
            case "sendrecv" | "sendonly" | "recvonly" | "inactive":
                inherited.direction = _DIRECTIONS[name]
    media = [_section(mline, number, attrs, inherited, flags) for mline, number, attrs in sections]
    setup = fields.get("setup")
    return SessionDescription(
        origin_session_id=origin[0],
        origin_session_version=origin[1],
        bundle_mids=bundle or (),
        ice_ufrag=fields.get("ice-ufrag"),
        ice_pwd=fields.get("ice-pwd"),
        ice_lite="ice-lite" in flags,
        fingerprints=tuple(fingerprints),
        setup=None if setup is None else _SETUPS[setup],
        media=tuple(media),
        extmap_allow_mixed="extmap-allow-mixed" in flags,
        msid_semantic=fields.get("msid-semantic"),
    )


def _origin(value: str, number: int) -> tuple[int, int]:
    # RFC 8866 §5.2: o=<username> <sess-id> <sess-version> <nettype> <addrtype> <addr>
    parts = value.split()
    require(len(parts) == 6, f"line {number}: bad o= line {value[:80]!r}")
    return (
        parse_uint(parts[1], "o= session id", 2**64 - 1),
        parse_uint(parts[2], "o= session version", 2**64 - 1),
    )


def _enum(table: Container[str], value: str, what: str, number: int) -> str:
    require(value.strip() in table, f"line {number}: unknown {what} value {value[:40]!r}")
    return value.strip()


def _fingerprint(value: str, number: int) -> Fingerprint:
    parts = value.split()
    require(len(parts) == 2, f"line {number}: bad a=fingerprint {value[:120]!r}")
    return Fingerprint(algorithm=parts[0].lower(), value=parts[1].upper())


def _extension(value: str, number: int) -> Extension:
    # RFC 8285 §5: a=extmap:<id>[/<direction>] <uri> [<extension attributes>]
    parts = value.split()
    require(len(parts) >= 2, f"line {number}: bad a=extmap {value[:80]!r}")
    ident, _, direction = parts[0].partition("/")
    return Extension(
        id=parse_uint(ident, f"line {number}: extension id", 255, 1),
        uri=parts[1],
        direction=_DIRECTIONS[_enum(_DIRECTIONS, direction, "extmap direction", number)]
        if direction
        else None,
    )


def _pt_and_rest(value: str, what: str, number: int) -> tuple[str, str]:
    pt, _, rest = value.strip().partition(" ")
    require(bool(rest.strip()), f"line {number}: bad {what} {value[:80]!r}")
    return pt, rest.strip()


def _section(
    mline: str, number: int, attrs: list[_Attr], inherited: _Inherited, flags: set[str]
) -> MediaSection:
    # RFC 8866 §5.14: m=<media> <port>[/<number of ports>] <proto> <fmt> ...
    parts = mline.split()
    require(len(parts) >= 4, f"line {number}: bad m-line {mline[:80]!r}, need media port proto fmt")
    kind, port_text, protocol, *formats = parts
    port = parse_uint(port_text.partition("/")[0], f"line {number}: m={kind} port", 65535)
    rtp = "RTP/" in protocol
    pts = [parse_uint(f, f"line {number}: m={kind} payload type", 127) for f in formats if rtp]
    require(len(set(pts)) == len(pts), f"line {number}: m={kind} repeats a payload type")

    values: dict[str, str] = {}
    present: set[str] = set()
    direction = inherited.direction
    ice_options = inherited.ice_options
    rtpmaps: dict[int, tuple[str, int, int | None]] = {}
    fmtps: dict[int, tuple[tuple[str, str], ...]] = {}
    feedback: dict[str, list[str]] = {}
    extensions: list[Extension] = []
    fingerprints: list[Fingerprint] = []
    candidates: list[Candidate] = []
    ssrcs: dict[int, None] = {}  # insertion-ordered set
    ssrc_attrs: dict[str, str] = {}
    groups: list[tuple[str, tuple[int, ...]]] = []
    rids: list[tuple[str, str]] = []
    rid_restrictions: dict[str, str] = {}
    for name, value, line_no in attrs:
        where = f"line {line_no}"
        match name:
            case "mid" | "msid" | "simulcast" | "ice-ufrag" | "ice-pwd":
                values.setdefault(name, value.strip())
            case "sctp-port" | "max-message-size":
                values.setdefault(name, str(parse_uint(value.strip(), f"{where}: {name}", 2**53)))
            case "setup":
                values.setdefault(name, _enum(_SETUPS, value, "a=setup", line_no))
            case "sendrecv" | "sendonly" | "recvonly" | "inactive":
                direction = _DIRECTIONS[name]
            case "rtcp-mux" | "rtcp-rsize" | "end-of-candidates" | "bundle-only":
                present.add(name)
            case "extmap-allow-mixed":
                flags.add(name)  # RFC 8285 §6 allows it per section; the SFU treats it as global
            case "ice-options":
                ice_options = tuple(value.split())
            case "fingerprint":
                fingerprints.append(_fingerprint(value, line_no))
            case "candidate":
                candidates.append(Candidate.from_sdp(value))
            case "extmap":
                extensions.append(_extension(value, line_no))
            case "rtpmap":
                match_ = _RTPMAP.fullmatch(value.strip())
                require(match_ is not None, f"{where}: bad a=rtpmap {value[:80]!r}")
                assert match_ is not None
                pt = parse_uint(match_[1], f"{where}: rtpmap payload type", 127)
                channels = None if match_[4] is None else int(match_[4])
                rtpmaps.setdefault(pt, (match_[2], int(match_[3]), channels))
            case "fmtp":
                pt_text, params = _pt_and_rest(value, "a=fmtp", line_no)
                pt = parse_uint(pt_text, f"{where}: fmtp payload type", 127)
                fmtps.setdefault(pt, _fmtp_params(params))
            case "rtcp-fb":
                # RFC 4585 §4.2: "*" applies the feedback to every payload type.
                pt_text, kind_text = _pt_and_rest(value, "a=rtcp-fb", line_no)
                if pt_text != "*":
                    pt_text = str(parse_uint(pt_text, f"{where}: rtcp-fb payload type", 127))
                feedback.setdefault(pt_text, []).append(" ".join(kind_text.split()))
            case "ssrc":
                # RFC 5576 §4.1: a=ssrc:<ssrc-id> <attribute>[:<value>]
                ssrc_text, _, source_attr = value.strip().partition(" ")
                ssrc = parse_uint(ssrc_text, f"{where}: ssrc", 2**32 - 1)
                ssrcs[ssrc] = None
                attr_name, _, attr_value = source_attr.partition(":")
                if attr_name in ("cname", "msid") and attr_value.strip():
                    ssrc_attrs.setdefault(attr_name, attr_value.strip())
            case "ssrc-group":
                # RFC 5576 §4.2: a=ssrc-group:<semantics> <ssrc-id> ...
                group = value.split()
                require(len(group) >= 2, f"{where}: bad a=ssrc-group {value[:80]!r}")
                members = tuple(
                    parse_uint(s, f"{where}: ssrc-group ssrc", 2**32 - 1) for s in group[1:]
                )
                groups.append((require_token(group[0], "ssrc-group semantics"), members))
            case "rid":
                # RFC 8851 §4: a=rid:<rid-id> <send|recv> [restrictions]
                rid = value.split(maxsplit=2)
                require(
                    len(rid) >= 2 and rid[1] in ("send", "recv"),
                    f"{where}: bad a=rid {value[:80]!r}",
                )
                rids.append((require_token(rid[0], "rid"), rid[1]))
                if len(rid) == 3 and rid[2].strip():
                    rid_restrictions.setdefault(rid[0], rid[2].strip())

    codecs: list[Codec] = []
    for pt in pts:
        mapped = rtpmaps.get(pt)
        if mapped is None:
            static = _STATIC_PTS.get(pt)
            require(static is not None, f"line {number}: payload type {pt} has no a=rtpmap")
            assert static is not None
            mapped = (static[0], static[1], None)
        fb = feedback.get("*", []) + feedback.get(str(pt), [])
        name, clock_rate, channels = mapped
        codecs.append(
            Codec(kind=kind, payload_type=pt, name=name, clock_rate=clock_rate,
                  channels=channels, fmtp=fmtps.get(pt, ()), rtcp_fb=tuple(fb))
        )  # fmt: skip
    own_ids = {e.id for e in extensions}
    extensions += [e for e in inherited.extensions if e.id not in own_ids]
    setup = values.get("setup")
    sctp_port, max_size = values.get("sctp-port"), values.get("max-message-size")
    return MediaSection(
        kind=require_token(kind, "media type"),
        port=port,
        protocol=protocol,
        mid=values.get("mid"),
        direction=direction or Direction.SENDRECV,
        codecs=tuple(codecs),
        extensions=tuple(extensions),
        ssrcs=tuple(ssrcs),
        ssrc_groups=tuple(groups),
        cname=ssrc_attrs.get("cname"),
        msid=values.get("msid") or ssrc_attrs.get("msid"),
        rids=tuple(rids),
        rid_restrictions=tuple(rid_restrictions.items()),
        simulcast=values.get("simulcast"),
        rtcp_mux="rtcp-mux" in present,
        rtcp_rsize="rtcp-rsize" in present,
        ice_ufrag=values.get("ice-ufrag"),
        ice_pwd=values.get("ice-pwd"),
        ice_options=ice_options,
        fingerprints=tuple(fingerprints),
        setup=None if setup is None else _SETUPS[setup],
        candidates=tuple(candidates),
        end_of_candidates="end-of-candidates" in present,
        bundle_only="bundle-only" in present,
        formats=() if rtp else tuple(formats),
        sctp_port=None if sctp_port is None else int(sctp_port),
        max_message_size=None if max_size is None else int(max_size),
    )


def _fmtp_params(params: str) -> tuple[tuple[str, str], ...]:
    # Tokens without a key (RFC 2198 red "111/111", or a stray "=x") keep an empty
    # key and their whole text, as libwebrtc does, so they serialize back unchanged.
    pairs = []
    for item in params.split(";"):
        token = item.strip()
        if not token:
            continue
        key, eq, value = token.partition("=")
        pairs.append((key.strip(), value.strip()) if eq and key.strip() else ("", token))
    return tuple(pairs)
