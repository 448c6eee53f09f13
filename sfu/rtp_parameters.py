"""Negotiated RTP parameters, independent of SDP: what a producer receives
and what a consumer sends."""

from __future__ import annotations

from dataclasses import dataclass, field

from .types import MediaKind, Mid

URI_MID = "urn:ietf:params:rtp-hdrext:sdes:mid"
URI_AUDIO_LEVEL = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
URI_ABS_SEND_TIME = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
URI_VIDEO_ORIENTATION = "urn:3gpp:video-orientation"
URI_RID = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
URI_REPAIRED_RID = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
# draft-holmer-rmcat-transport-wide-cc-extensions-01 §2: one sequence number per packet
# across every stream of a transport, which the receiver's feedback reports on.
URI_TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"


@dataclass(frozen=True, slots=True, kw_only=True)
class CodecParameters:
    """One codec as negotiated with one peer (`payload_type` is that peer's)."""

    kind: MediaKind
    name: str  # "opus", "VP8", "H264", "VP9"
    payload_type: int
    clock_rate: int
    channels: int | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    rtcp_feedback: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload_type: must be 0..127, got {self.payload_type}")
        if self.clock_rate <= 0:
            raise ValueError("clock_rate: must be > 0")

    @property
    def mime_type(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def fmtp(self) -> dict[str, str]:
        return dict(self.parameters)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiveParameters:
    """What a producer receives from its publisher, in the publisher's numbering.

    `rids` is empty for a single encoding. For simulcast (RFC 8853) it names the
    encodings by their RFC 8851 rid, lowest quality first; their SSRCs are not
    signalled (`ssrc` and `rtx_ssrc` stay None): each is learned from the first
    packet carrying that rid in the `URI_RID` extension (RTX packets carry it in
    `URI_REPAIRED_RID`), whose ids are in `extensions`.
    """

    mid: Mid
    codec: CodecParameters
    rtx_payload_type: int | None = None
    ssrc: int | None = None  # None: learn it from the first packet carrying our MID
    rtx_ssrc: int | None = None
    extensions: dict[str, int] = field(default_factory=dict)  # uri -> publisher's id
    cname: str | None = None
    rids: tuple[str, ...] = ()  # simulcast encodings, lowest quality first
    # Simulcast encodings whose SSRCs are signalled instead (a pipe's mirror of a
    # simulcast producer: one stream per encoding), lowest quality first.
    encoding_ssrcs: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if len(set(self.rids)) != len(self.rids) or not all(self.rids):
            raise ValueError(f"rids: must be distinct and non-empty, got {self.rids!r}")
        if self.rids and self.encoding_ssrcs:
            raise ValueError("rids and encoding_ssrcs: one way to tell encodings apart")
        if len(set(self.encoding_ssrcs)) != len(self.encoding_ssrcs):
            raise ValueError(f"encoding_ssrcs: must be distinct, got {self.encoding_ssrcs!r}")

    @property
    def kind(self) -> MediaKind:
        return self.codec.kind
