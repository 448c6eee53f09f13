"""A publisher bot's output captured in memory, for the sender tests: a peer that keeps
what it is given, a three-encoding publisher over it, and readers of what it sent."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from benchmarks.media import MediaClip
from benchmarks.negotiation import SIMULCAST_RIDS
from benchmarks.sender import Encoding, Publisher
from sfu.rtp import rtcp
from sfu.rtp.header import RtpPacketView

SSRCS = {"q": 1111, "h": 2222, "f": 3333}
FRAME = 1 / 30


class CapturingPeer:
    """What the publisher sends, kept; its RTCP handler, to feed it feedback."""

    def __init__(self) -> None:
        self.rtp: list[RtpPacketView] = []
        self.rtcp: list[rtcp.RtcpPacket] = []
        self.on_rtcp: Callable[[bytes], None] | None = None

    def send_rtp(self, packet: bytes) -> bool:
        view = RtpPacketView.parse(packet)
        assert view is not None
        self.rtp.append(view)
        return True

    def send_rtcp(self, data: bytes) -> bool:
        self.rtcp.extend(rtcp.parse_compound(data))
        return True


def simulcast_publisher(peer: CapturingPeer, clips: tuple[MediaClip, ...]) -> Publisher:
    """The clips as encodings q, h, f (SSRCS), no audio, over `peer`."""
    encodings = [
        Encoding(rid=r, ssrc=SSRCS[r], clip=c) for r, c in zip(SIMULCAST_RIDS, clips, strict=True)
    ]
    return Publisher(
        peer,  # type: ignore[arg-type]
        clips[-1],
        audio_ssrc=None,
        video_ssrc=None,
        stamp=False,
        deadline=1e9,
        encodings=encodings,
    )


def run_frames(publisher: Publisher, start: float, frames: int) -> float:
    """Service the publisher once a frame from `start`; the time after the last."""
    now = start
    for _ in range(frames):
        publisher.service(now)
        now += FRAME
    return now


def by_ssrc(peer: CapturingPeer) -> dict[int, list[RtpPacketView]]:
    streams: dict[int, list[RtpPacketView]] = defaultdict(list)
    for packet in peer.rtp:
        streams[packet.ssrc].append(packet)
    return streams


def payload(packet: RtpPacketView) -> bytes:
    return packet.data[packet.payload_start : packet.payload_end]
