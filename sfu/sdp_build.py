"""The SDP value types (RFC 8866) the SFU builds its offers and answers from, and their
text form (`serialize`). Import them from `sfu.sdp`, which adds `parse`.

Every value validates itself in __post_init__ and raises NegotiationError (a
ValueError), so `parse` gets the same checks as code that builds descriptions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from sfu.errors import NegotiationError

MAX_SDP_BYTES = 64 * 1024

_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")  # RFC 8866 §9 token
_ICE_CHARS = re.compile(r"[A-Za-z0-9+/]+")  # RFC 8839 §5.1 ice-char
_FINGERPRINT = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})+")  # RFC 8122 §5


class Direction(StrEnum):
    """RFC 8866 §6.7; the default when absent is sendrecv."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    def reversed(self) -> Direction:
        """The direction an answerer mirrors back (RFC 3264 §6.1)."""
        swap = {Direction.SENDONLY: Direction.RECVONLY, Direction.RECVONLY: Direction.SENDONLY}
        return swap.get(self, self)


class Setup(StrEnum):
    """DTLS role negotiation, RFC 4145 §4 / RFC 8842 §5."""

    ACTPASS = "actpass"
    ACTIVE = "active"
    PASSIVE = "passive"
    HOLDCONN = "holdconn"


def require(condition: bool, message: str) -> None:
    if not condition:
        raise NegotiationError(message)


def parse_uint(text: str, what: str, maximum: int, minimum: int = 0) -> int:
    # ASCII digits only, and bounded length: int() accepts "+1", " 1", "1_0",
    # Unicode digits, and raises its own ValueError past 4300 digits.
    require(
        0 < len(text) <= 20 and text.isascii() and text.isdigit(),
        f"{what} {text[:40]!r} is not a number",
    )
    value = int(text)
    require(minimum <= value <= maximum, f"{what} {value} is outside {minimum}..{maximum}")
    return value


def _is_word(text: str) -> bool:
    """Non-empty and free of whitespace, so it survives a split() of its line."""
    return bool(text) and not any(c.isspace() for c in text)


def require_token(text: str, what: str) -> str:
    require(_TOKEN.fullmatch(text) is not None, f"{what} {text[:60]!r} is not a valid token")
    return text


@dataclass(frozen=True, slots=True, kw_only=True)
class Codec:
    """One payload type of an RTP m-section: rtpmap + fmtp + rtcp-fb (RFC 8866 §6.6, §6.15).

    `fmtp` keeps the parameters in order as (key, value) pairs. Parameters without
    "=" (RFC 2198 red "111/111", RFC 4733 "0-15") are stored as ("", token), the
    way libwebrtc does, and serialize back unchanged.
    """

    kind: str
    payload_type: int
    name: str
    clock_rate: int
    channels: int | None = None
    fmtp: tuple[tuple[str, str], ...] = ()
    rtcp_fb: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        require(0 <= self.payload_type <= 127, f"payload type {self.payload_type} not in 0..127")
        require(_TOKEN.fullmatch(self.name) is not None, f"bad codec name {self.name!r}")
        require(self.clock_rate > 0, f"{self.name}: clock rate must be positive")
        require(self.channels is None or self.channels > 0, f"{self.name}: bad channel count")

    @property
    def mime_type(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def parameters(self) -> dict[str, str]:
        return dict(self.fmtp)

    @property
    def apt(self) -> int | None:
        """The associated payload type of an rtx codec (RFC 4588 §8), else None."""
        value = self.parameters.get("apt", "")
        return int(value) if len(value) <= 3 and value.isascii() and value.isdigit() else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Extension:
    """An a=extmap header extension mapping (RFC 8285 §5); ids 1..255."""

    id: int
    uri: str
    direction: Direction | None = None

    def __post_init__(self) -> None:
        require(1 <= self.id <= 255, f"extension id {self.id} not in 1..255")
        require(_is_word(self.uri), f"bad extension URI {self.uri[:80]!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """An ICE candidate (RFC 8839 §5.1). `extensions` keeps trailing name/value pairs
    such as Chromium's "generation 0 network-id 3" so lines survive a round trip."""

    foundation: str
    component: int
    transport: str
    priority: int
    host: str
    port: int
    type: str
    related_address: str | None = None
    related_port: int | None = None
    tcptype: str | None = None
    extensions: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        ok = _ICE_CHARS.fullmatch(self.foundation) is not None and len(self.foundation) <= 32
        require(ok, f"bad candidate foundation {self.foundation!r}")
        require(1 <= self.component <= 256, f"candidate component {self.component} not in 1..256")
        require(0 <= self.priority < 2**32, f"candidate priority {self.priority} out of range")
        require(0 <= self.port <= 65535, f"candidate port {self.port} out of range")
        require_token(self.transport, "candidate transport")
        require_token(self.type, "candidate type")
        require(_is_word(self.host), f"bad candidate address {self.host[:60]!r}")

    def to_sdp(self) -> str:
        """The value after "a=candidate:" (also what RTCIceCandidate.candidate carries
        after its "candidate:" prefix)."""
        parts = [self.foundation, str(self.component), self.transport, str(self.priority),
                 self.host, str(self.port), "typ", self.type]  # fmt: skip
        if self.related_address is not None:
            parts += ["raddr", self.related_address]
        if self.related_port is not None:
            parts += ["rport", str(self.related_port)]
        if self.tcptype is not None:
            parts += ["tcptype", self.tcptype]
        for name, value in self.extensions:
            parts += [name, value]
        return " ".join(parts)

    @classmethod
    def from_sdp(cls, value: str) -> Candidate:
        """Parse a candidate; an "a=" and/or "candidate:" prefix is accepted (trickle)."""
        text = value.strip().removeprefix("a=").removeprefix("candidate:")
        parts = text.split()
        require(len(parts) >= 8 and parts[6] == "typ", f"malformed candidate {text[:80]!r}")
        require(len(parts) % 2 == 0, f"candidate has an unpaired trailing field: {text[:80]!r}")
        extras = dict[str, str]()
        extensions: list[tuple[str, str]] = []
        for name, item in zip(parts[8::2], parts[9::2], strict=True):
            if name in ("raddr", "rport", "tcptype") and name not in extras:
                extras[name] = item
            else:
                extensions.append((name, item))
        rport = extras.get("rport")
        return cls(
            foundation=parts[0],
            component=parse_uint(parts[1], "candidate component", 256),
            transport=parts[2].lower(),  # case-insensitive per RFC 8839 §5.1
            priority=parse_uint(parts[3], "candidate priority", 2**32 - 1),
            host=parts[4],
            port=parse_uint(parts[5], "candidate port", 65535),
            type=parts[7],
            related_address=extras.get("raddr"),
            related_port=None if rport is None else parse_uint(rport, "candidate rport", 65535),
            tcptype=extras.get("tcptype"),
            extensions=tuple(extensions),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Fingerprint:
    """A DTLS certificate fingerprint (RFC 8122 §5); hex is kept upper case."""

    algorithm: str
    value: str

    def __post_init__(self) -> None:
        require_token(self.algorithm, "fingerprint algorithm")
        require(_FINGERPRINT.fullmatch(self.value) is not None, "fingerprint is not hex pairs")


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaSection:
    """One m-section. `kind` stays a str: an unknown media type must survive parsing so
    the answer can reject it with port 0 (RFC 3264 §6). RTP sections list their
    formats through `codecs`; other protocols (SCTP data channels) through `formats`.
    """

    kind: str
    port: int
    protocol: str = "UDP/TLS/RTP/SAVPF"
    mid: str | None = None
    direction: Direction = Direction.SENDRECV
    codecs: tuple[Codec, ...] = ()
    extensions: tuple[Extension, ...] = ()
    ssrcs: tuple[int, ...] = ()
    ssrc_groups: tuple[tuple[str, tuple[int, ...]], ...] = ()
    cname: str | None = None
    msid: str | None = None
    rids: tuple[tuple[str, str], ...] = ()  # (rid-id, "send" | "recv"), RFC 8851 §4
    # (rid-id, restriction text) for the rids whose a=rid line has restrictions, as
    # written: "max-width=1280;max-height=720". Read them with rid_restrictions_of().
    rid_restrictions: tuple[tuple[str, str], ...] = ()
    simulcast: str | None = None
    rtcp_mux: bool = False
    rtcp_rsize: bool = False
    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    ice_options: tuple[str, ...] = ()
    fingerprints: tuple[Fingerprint, ...] = ()
    setup: Setup | None = None
    candidates: tuple[Candidate, ...] = ()
    end_of_candidates: bool = False
    bundle_only: bool = False
    formats: tuple[str, ...] = ()
    sctp_port: int | None = None
    max_message_size: int | None = None

    def __post_init__(self) -> None:
        require_token(self.kind, "media type")
        # RFC 8866 §5.14: proto = token *("/" token)
        ok = all(_TOKEN.fullmatch(part) for part in self.protocol.split("/"))
        require(ok, f"bad m-line protocol {self.protocol[:60]!r}")
        require(0 <= self.port <= 65535, f"m={self.kind} port {self.port} out of range")
        require(not (self.is_rtp and self.formats), "RTP m-sections list formats via codecs")
        require(self.is_rtp or not self.codecs, "codecs need an RTP protocol")
        if self.mid is not None:
            require_token(self.mid, "mid")
        pts = [codec.payload_type for codec in self.codecs]
        require(len(set(pts)) == len(pts), f"m={self.kind} repeats a payload type")
        ids = [ext.id for ext in self.extensions]
        require(len(set(ids)) == len(ids), f"m={self.kind} maps one extension id twice")
        require(all(0 <= s < 2**32 for s in self.ssrcs), "SSRC out of range")
        # Every a=ssrc line needs an attribute (RFC 5576 §4.1); cname is the one we write.
        require(not self.ssrcs or self.cname is not None, f"m={self.kind} has SSRCs but no cname")
        rid_ids = {rid for rid, _ in self.rids}
        restricted = [rid for rid, _ in self.rid_restrictions]
        require(len(set(restricted)) == len(restricted), f"m={self.kind} restricts a rid twice")
        for rid, text in self.rid_restrictions:
            require(rid in rid_ids, f"m={self.kind} restricts rid {rid!r}, which has no a=rid")
            ok = bool(text) and "\r" not in text and "\n" not in text
            require(ok, f"m={self.kind} rid {rid!r}: bad restrictions {text[:80]!r}")
            for name, value in _restriction_pairs(text):
                if name in _SIZE_RESTRICTIONS and value:
                    parse_uint(value, f"rid {rid!r} {name}", 2**32 - 1)
        _check_ice_credentials(self.ice_ufrag, self.ice_pwd)

    @property
    def is_rtp(self) -> bool:
        return "RTP/" in self.protocol

    @property
    def rejected(self) -> bool:
        """Port 0 without bundle-only means disabled (RFC 3264 §6, RFC 8843 §6)."""
        return self.port == 0 and not self.bundle_only

    def codec(self, payload_type: int) -> Codec | None:
        return next((c for c in self.codecs if c.payload_type == payload_type), None)

    def extension_id(self, uri: str) -> int | None:
        return next((e.id for e in self.extensions if e.uri == uri), None)

    def rid_restrictions_of(self, rid: str) -> dict[str, str]:
        """The restrictions of `rid`'s a=rid line (RFC 8851 §4) by name, e.g.
        {"max-width": "1280", "max-height": "720"}; a name without "=" maps to "".
        Empty when the line has none. max-width and max-height, when they have a
        value, are checked to be numbers."""
        text = dict(self.rid_restrictions).get(rid, "")
        return dict(_restriction_pairs(text))

    @property
    def default_address(self) -> str:
        """The c= address: the default candidate's, i.e. the one on the m= port
        (RFC 8839 §4.2.1.2); 0.0.0.0 when no candidate matches (e.g. port 9)."""
        for cand in self.candidates:
            if cand.component == 1 and cand.port == self.port and cand.transport == "udp":
                return cand.host
        return "0.0.0.0"


# RFC 8851 §10: restrictions the SFU reads; their values must be integers.
_SIZE_RESTRICTIONS = ("max-width", "max-height")


def _restriction_pairs(text: str) -> list[tuple[str, str]]:
    # RFC 8851 §10: rid-param *(";" rid-param), rid-param = name ["=" value];
    # the optional leading "pt=<fmt-list>" has the same shape.
    pairs = []
    for item in text.split(";"):
        name, _, value = item.strip().partition("=")
        if name.strip():
            pairs.append((name.strip(), value.strip()))
    return pairs


def _check_ice_credentials(ufrag: str | None, pwd: str | None) -> None:
    # RFC 8839 §5.4: ufrag 4..256 and pwd 22..256 ice-chars. Chromium rejects others too.
    for value, low, what in ((ufrag, 4, "ice-ufrag"), (pwd, 22, "ice-pwd")):
        ok = value is None or (_ICE_CHARS.fullmatch(value) is not None and low <= len(value) <= 256)
        require(ok, f"{what} must be {low}..256 ice-chars (RFC 8839 §5.4)")


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportParameters:
    """What the BUNDLE transport needs from a remote description, fully resolved."""

    ice_ufrag: str
    ice_pwd: str
    ice_lite: bool
    fingerprints: tuple[Fingerprint, ...]
    setup: Setup
    candidates: tuple[Candidate, ...]
    end_of_candidates: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDescription:
    """A whole offer or answer. Session-level ICE/DTLS fields hold only what appeared
    at session level; use the `effective_*` helpers to resolve the bundle's values."""

    origin_session_id: int
    origin_session_version: int = 0
    bundle_mids: tuple[str, ...] = ()
    ice_ufrag: str | None = None
    ice_pwd: str | None = None
    ice_lite: bool = False
    fingerprints: tuple[Fingerprint, ...] = ()
    setup: Setup | None = None
    media: tuple[MediaSection, ...] = ()
    extmap_allow_mixed: bool = False
    msid_semantic: str | None = "WMS *"

    def __post_init__(self) -> None:
        require(0 <= self.origin_session_id < 2**64, "origin session id out of range")
        require(0 <= self.origin_session_version < 2**64, "origin session version out of range")
        mids = [m.mid for m in self.media if m.mid is not None]
        dupes = sorted({mid for mid in mids if mids.count(mid) > 1})
        require(not dupes, f"duplicate mid {', '.join(dupes)!r} (RFC 5888 §4: mids are unique)")
        missing = [mid for mid in self.bundle_mids if mid not in mids]
        require(not missing, f"BUNDLE group names mid {missing!r} with no m-section")
        _check_ice_credentials(self.ice_ufrag, self.ice_pwd)

    def section(self, mid: str) -> MediaSection | None:
        return next((m for m in self.media if m.mid == mid), None)

    @property
    def bundle_tag(self) -> MediaSection | None:
        """The tagged m-section whose transport the bundle uses: the first mid of the
        BUNDLE group (RFC 8843 §7.2, §7.3); without BUNDLE, the first live section."""
        if self.bundle_mids:
            return self.section(self.bundle_mids[0])
        return next((m for m in self.media if not m.rejected), None)

    # Media-level values override session-level ones (RFC 8839 §5.4, RFC 8122 §5).
    @property
    def effective_ice_ufrag(self) -> str | None:
        tag = self.bundle_tag
        return tag.ice_ufrag if tag is not None and tag.ice_ufrag else self.ice_ufrag

    @property
    def effective_ice_pwd(self) -> str | None:
        tag = self.bundle_tag
        return tag.ice_pwd if tag is not None and tag.ice_pwd else self.ice_pwd

    @property
    def effective_fingerprints(self) -> tuple[Fingerprint, ...]:
        tag = self.bundle_tag
        return tag.fingerprints if tag is not None and tag.fingerprints else self.fingerprints

    @property
    def effective_setup(self) -> Setup | None:
        tag = self.bundle_tag
        return tag.setup if tag is not None and tag.setup else self.setup

    def transport_parameters(self) -> TransportParameters:
        """Resolve ICE/DTLS for the bundle; NegotiationError if anything is missing.
        An absent a=setup means "active" (RFC 4145 §4)."""
        tag = self.bundle_tag
        ufrag, pwd = self.effective_ice_ufrag, self.effective_ice_pwd
        require(tag is not None, "no usable m-section carries the transport")
        require(ufrag is not None and pwd is not None, "missing a=ice-ufrag or a=ice-pwd")
        require(bool(self.effective_fingerprints), "missing a=fingerprint (RFC 8122)")
        assert tag is not None and ufrag is not None and pwd is not None  # narrowed above
        return TransportParameters(
            ice_ufrag=ufrag,
            ice_pwd=pwd,
            ice_lite=self.ice_lite,
            fingerprints=self.effective_fingerprints,
            setup=self.effective_setup or Setup.ACTIVE,
            candidates=tag.candidates,
            end_of_candidates=tag.end_of_candidates,
        )


def serialize(desc: SessionDescription) -> str:
    """Render `desc` as SDP with \\r\\n endings, in the order Chromium writes it.

    ICE and DTLS attributes go into every m-section (RFC 8843 §7: browsers accept
    them on every bundled section), resolved media-level first, then session-level;
    only a=ice-lite stays at session level (RFC 8839 §5.3). So parse(serialize(d))
    equals d whenever the sections carry their own credentials, as browsers' do, and
    is transport-equivalent otherwise. Raises NegotiationError for an RTP m-section
    without codecs, which SDP cannot express (RFC 8866 §5.14 needs a format).
    """
    lines = ["v=0", f"o=- {desc.origin_session_id} {desc.origin_session_version} IN IP4 0.0.0.0",
             "s=-", "t=0 0"]  # fmt: skip
    if desc.ice_lite:
        lines.append("a=ice-lite")
    if desc.bundle_mids:
        lines.append("a=group:BUNDLE " + " ".join(desc.bundle_mids))
    if desc.extmap_allow_mixed:
        lines.append("a=extmap-allow-mixed")
    if desc.msid_semantic is not None:
        lines.append("a=msid-semantic: " + desc.msid_semantic)
    for section in desc.media:
        _section_lines(desc, section, lines)
    return "\r\n".join(lines) + "\r\n"


def _section_lines(desc: SessionDescription, m: MediaSection, out: list[str]) -> None:
    if m.is_rtp:
        require(bool(m.codecs), f"cannot serialize m={m.kind} (mid {m.mid}) without codecs")
        formats = [str(codec.payload_type) for codec in m.codecs]
    else:
        require(bool(m.formats), f"cannot serialize m={m.kind} (mid {m.mid}) without formats")
        formats = list(m.formats)
    address = m.default_address
    out.append(f"m={m.kind} {m.port} {m.protocol} {' '.join(formats)}")
    out.append(f"c=IN {'IP6' if ':' in address else 'IP4'} {address}")
    if m.is_rtp:
        out.append("a=rtcp:9 IN IP4 0.0.0.0")  # as Chromium writes it; moot under rtcp-mux
    ufrag, pwd = m.ice_ufrag or desc.ice_ufrag, m.ice_pwd or desc.ice_pwd
    if ufrag is not None:
        out.append("a=ice-ufrag:" + ufrag)
    if pwd is not None:
        out.append("a=ice-pwd:" + pwd)
    if m.ice_options:
        out.append("a=ice-options:" + " ".join(m.ice_options))
    for fp in m.fingerprints or desc.fingerprints:
        out.append(f"a=fingerprint:{fp.algorithm} {fp.value}")
    setup = m.setup or desc.setup
    if setup is not None:
        out.append("a=setup:" + setup)
    if m.mid is not None:
        out.append("a=mid:" + m.mid)
    if m.bundle_only:
        out.append("a=bundle-only")
    for ext in m.extensions:
        suffix = "" if ext.direction is None else "/" + ext.direction
        out.append(f"a=extmap:{ext.id}{suffix} {ext.uri}")
    out.append("a=" + m.direction)
    if m.msid is not None:
        out.append("a=msid:" + m.msid)
    if m.rtcp_mux:
        out.append("a=rtcp-mux")
    if m.rtcp_rsize:
        out.append("a=rtcp-rsize")
    for codec in m.codecs:
        pt = codec.payload_type
        channels = "" if codec.channels is None else f"/{codec.channels}"
        out.append(f"a=rtpmap:{pt} {codec.name}/{codec.clock_rate}{channels}")
        out.extend(f"a=rtcp-fb:{pt} {fb}" for fb in codec.rtcp_fb)
        if codec.fmtp:
            params = ";".join(f"{k}={v}" if k else v for k, v in codec.fmtp)
            out.append(f"a=fmtp:{pt} {params}")
    for semantics, group in m.ssrc_groups:
        out.append(f"a=ssrc-group:{semantics} {' '.join(map(str, group))}")
    for ssrc in m.ssrcs:
        out.append(f"a=ssrc:{ssrc} cname:{m.cname}")
        if m.msid is not None:
            out.append(f"a=ssrc:{ssrc} msid:{m.msid}")  # the pre-RFC 8830 form, still read
    restrictions = dict(m.rid_restrictions)
    for rid, direction in m.rids:
        text = restrictions.get(rid)
        out.append(f"a=rid:{rid} {direction}" + ("" if text is None else " " + text))
    if m.simulcast is not None:
        out.append("a=simulcast:" + m.simulcast)
    if m.sctp_port is not None:
        out.append(f"a=sctp-port:{m.sctp_port}")
    if m.max_message_size is not None:
        out.append(f"a=max-message-size:{m.max_message_size}")
    out.extend("a=candidate:" + cand.to_sdp() for cand in m.candidates)
    if m.end_of_candidates:
        out.append("a=end-of-candidates")
