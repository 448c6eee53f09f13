"""The bots' SDP: a publisher's offer and a viewer's answer, written by the SFU's own
negotiation code.

Both carry the bot's host candidate, ICE credentials and DTLS fingerprints from a
gathered `sfu.aiortc_bridge.PeerConnection` through `sfu.sdp_transport`, as the SFU's
own descriptions do. The offer uses the SFU-wide payload types and extension ids
(`sfu.ortc`) so the SFU's per-packet translation is the same as for a browser that
numbers things our way; the answer is the one the SFU itself gives a publisher's
offer (`ortc.answer_publish_section`): the bot receives what the SFU would.

A simulcast offer (`SendStreams.video_rids`) describes video as Chromium does for
three `sendEncodings`: `a=rid:<rid> send` per encoding, `a=simulcast:send q;h;f`
(lowest first), the rid and repaired-rid header extensions, and no `a=ssrc` for
video: the SFU learns each encoding's SSRC from the rid extension of its packets.
Video is VP8, or H.264 (`SendStreams.video_codec`) with the fmtp Chromium gives
constrained baseline (packetization-mode 1, the only mode the SFU takes).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sfu import ortc, sdp, sdp_transport
from sfu.aiortc_bridge import PeerConnection, RemoteEndpoint
from sfu.rtp_parameters import URI_REPAIRED_RID, URI_RID, URI_TRANSPORT_CC, CodecParameters
from sfu.types import MediaKind

from .h264_clips import PROFILE_LEVEL_ID

AUDIO_MID = "0"
VIDEO_MID = "1"

OPUS = ortc.consumer_codec(
    CodecParameters(
        kind=MediaKind.AUDIO,
        name="opus",
        payload_type=ortc.PAYLOAD_TYPES["opus"],
        clock_rate=48000,
        channels=2,
        parameters=(("minptime", "10"), ("useinbandfec", "1")),
    )
)
VP8 = ortc.consumer_codec(
    CodecParameters(
        kind=MediaKind.VIDEO, name="VP8", payload_type=ortc.PAYLOAD_TYPES["VP8"], clock_rate=90000
    )
)
# Chromium's constrained-baseline H.264: the SFU takes packetization-mode 1 only.
H264 = ortc.consumer_codec(
    CodecParameters(
        kind=MediaKind.VIDEO,
        name="H264",
        payload_type=ortc.PAYLOAD_TYPES["H264"],
        clock_rate=90000,
        parameters=(
            ("level-asymmetry-allowed", "1"),
            ("packetization-mode", "1"),
            ("profile-level-id", PROFILE_LEVEL_ID),
        ),
    )
)
VIDEO_CODECS = {"VP8": VP8, "H264": H264}

# The SFU-wide table (sfu.ortc.EXTENSION_IDS) has no ids for these: the SFU never
# sends them. Chromium's numbers (any free ids would do: the answer keeps the offer's).
RID_EXTENSION_ID = ortc.EXTENSION_IDS.get(URI_RID, 10)
REPAIRED_RID_EXTENSION_ID = ortc.EXTENSION_IDS.get(URI_REPAIRED_RID, 11)
SIMULCAST_RIDS = ("q", "h", "f")  # lowest quality first, as the clips are


@dataclass(frozen=True, slots=True)
class SendStreams:
    """What a publisher sends: SSRCs (None = that kind is not published) and its CNAME.

    With `video_rids`, video is simulcast: those encodings (lowest first), whose SSRCs
    the offer does not name (`video_ssrc` is then None). `video_codec` is a key of
    VIDEO_CODECS, the only video codec offered."""

    audio_ssrc: int | None
    video_ssrc: int | None
    cname: str
    video_rids: tuple[str, ...] = ()
    video_codec: str = "VP8"

    def __post_init__(self) -> None:
        if self.video_rids and self.video_ssrc is not None:
            raise ValueError("video_ssrc: simulcast encodings are not signalled by SSRC")
        if self.video_codec not in VIDEO_CODECS:
            known = sorted(VIDEO_CODECS)
            raise ValueError(f"video_codec: one of {known}, not {self.video_codec!r}")

    @property
    def publishes_video(self) -> bool:
        return self.video_ssrc is not None or bool(self.video_rids)


def publish_offer(peer: PeerConnection, streams: SendStreams, *, session_id: int) -> str:
    """A sendonly offer: Opus on mid 0 and/or the video codec on mid 1, with a=ssrc (or
    video as simulcast, see the module's docstring), setup actpass."""
    sections = [
        sdp.MediaSection(
            kind=codec.kind,
            port=9,  # describe() puts the candidate's port here
            mid=mid,
            direction=sdp.Direction.SENDONLY,
            codecs=(codec,),
            extensions=ortc.consumer_extensions(MediaKind(codec.kind)),
            ssrcs=(ssrc,),
            cname=streams.cname,
            msid=f"{streams.cname} {streams.cname}-{codec.kind}",
            rtcp_rsize=True,
        )
        for mid, ssrc, codec in (
            (AUDIO_MID, streams.audio_ssrc, OPUS),
            (VIDEO_MID, streams.video_ssrc, VIDEO_CODECS[streams.video_codec]),
        )
        if ssrc is not None
    ]
    if streams.video_rids:
        sections.append(_simulcast_video_section(streams))
    description = sdp_transport.describe(
        sections, peer, setup=sdp.Setup.ACTPASS, session_id=session_id, session_version=0
    )
    return sdp.serialize(description)


def _simulcast_video_section(streams: SendStreams) -> sdp.MediaSection:
    rids = streams.video_rids
    return sdp.MediaSection(
        kind="video",
        port=9,
        mid=VIDEO_MID,
        direction=sdp.Direction.SENDONLY,
        codecs=(VIDEO_CODECS[streams.video_codec],),
        extensions=(
            *ortc.consumer_extensions(MediaKind.VIDEO),
            sdp.Extension(id=RID_EXTENSION_ID, uri=URI_RID),
            sdp.Extension(id=REPAIRED_RID_EXTENSION_ID, uri=URI_REPAIRED_RID),
        ),
        cname=streams.cname,
        msid=f"{streams.cname} {streams.cname}-video",
        rids=tuple((rid, "send") for rid in rids),
        simulcast="send " + ";".join(rids),
        rtcp_rsize=True,
    )


def subscribe_answer(
    offer_sdp: str, peer: PeerConnection, *, session_id: int, transport_cc: bool = True
) -> tuple[str, dict[int, str], dict[int, str]]:
    """A recvonly answer (setup active) to a subscribe offer; with `transport_cc` (as a
    browser answers) it keeps the offered transport-wide sequence number extension, so
    the SFU stamps what it sends (the bot sends no feedback).

    Returns the SDP, SSRC -> kind and payload type -> kind for every stream offered,
    so received packets can be told apart by their clear RTP header.
    """
    offer = sdp.parse(offer_sdp)
    kinds: dict[int, str] = {}
    payload_kinds: dict[int, str] = {}
    for section in offer.media:
        if section.rejected or not section.is_rtp or section.kind not in ("audio", "video"):
            continue
        for ssrc in section.ssrcs:
            kinds[ssrc] = section.kind
        for codec in section.codecs:
            payload_kinds[codec.payload_type] = section.kind
    sections = [_answer_section(section, transport_cc) for section in offer.media]
    description = sdp_transport.describe(
        sections, peer, setup=sdp.Setup.ACTIVE, session_id=session_id, session_version=0
    )
    return sdp.serialize(description), kinds, payload_kinds


def _answer_section(offered: sdp.MediaSection, transport_cc: bool) -> sdp.MediaSection:
    """The SFU's own answer to a section (it leaves transport-cc out), with the offered
    transport-cc extension put back when wanted."""
    answered = ortc.answer_publish_section(offered)[0]
    kept = [e for e in offered.extensions if e.uri == URI_TRANSPORT_CC]
    if not transport_cc or answered.rejected or not kept:
        return answered
    return dataclasses.replace(answered, extensions=(*answered.extensions, *kept))


def remote_endpoint(remote_sdp: str, *, we_answered: bool) -> RemoteEndpoint:
    """ICE/DTLS of the peer. As answerer we said setup:active, so we are the DTLS client;
    as offerer (actpass) the peer's answer decides."""
    transport = sdp.parse(remote_sdp).transport_parameters()
    serves = not we_answered and sdp_transport.serves_dtls_after_answer(transport.setup)
    return sdp_transport.remote_endpoint(transport, dtls_server=serves)
