"""What a real viewer's network and receiver do to a StageClient, applied from outside:
loss on its downlink, a key-frame request for a track it receives, and a look at the
RTP its receiver gets for a track (after SRTP, before the jitter buffer).

They reach into aiortc/aioice internals (the ICE transport's receive coroutine, the
receiver's PLI sender and packet handler), which is why they live with the tests and
not in the client SDK.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from sfu import sdp
from sfu.ortc import PAYLOAD_TYPES
from sfu.rtp import h264, vp8
from sfu.rtp.codecs import is_h264_keyframe, is_vp8_keyframe
from signaling.client import RemoteTrack, StageClient


@dataclass(eq=False)
class DownlinkLoss:
    """Simulated loss on a viewer's downlink: drops a fraction of incoming video
    packets, each sequence number at most once, so retransmissions get through."""

    rate: float
    seed: int = 1
    dropped: int = 0
    received: dict[int, set[int]] = field(default_factory=dict)  # ssrc -> sequence numbers
    dropped_packets: set[tuple[int, int]] = field(default_factory=set)  # (ssrc, seq)

    def holes(self, ssrc: int, settle: int = 30) -> list[int]:
        """Sequence numbers never received, ignoring the newest `settle` (still repairable)."""
        seqs = self.received.get(ssrc, set())
        if not seqs:
            return []
        unwrapped = sorted(_unwrap(seqs))
        first, last = unwrapped[0], unwrapped[-1] - settle
        have = set(unwrapped)
        return [s & 0xFFFF for s in range(first, last) if s not in have]


def _unwrap(seqs: set[int]) -> list[int]:
    # Test streams are short: a wrap shows as both ends of the 16-bit space being used.
    if min(seqs) < 0x4000 and max(seqs) > 0xC000:
        return [s + 0x10000 if s < 0x8000 else s for s in seqs]
    return list(seqs)


def simulate_downlink_loss(client: StageClient, rate: float, *, seed: int = 1) -> DownlinkLoss:
    """Drop `rate` of the video packets `client` receives from now on (each at most once),
    also on transports that later subscribe offers bring."""
    impairment = _Impairment(client, DownlinkLoss(rate=rate, seed=seed))
    impairment.install()
    # aiortc emits "track" once a new offer's transports are bundled and in place.
    client.subscriber.on("track", lambda _track: impairment.install())
    return impairment.loss


class _Impairment:
    def __init__(self, client: StageClient, loss: DownlinkLoss) -> None:
        self.loss = loss
        self._client = client
        self._rng = random.Random(loss.seed)
        self._video_payload_types: set[int] = set()  # shared with every wrapped transport
        self._impaired: set[int] = set()  # id() of the DTLS transports already wrapped

    def install(self) -> None:
        for event in self._client.events:
            if event.get("type") == "subscribe_offer":
                self._video_payload_types |= _video_payload_types(event["sdp"])
        for transceiver in self._client.subscriber.getTransceivers():
            dtls: Any = transceiver.receiver.transport
            if dtls is None or id(dtls) in self._impaired:
                continue
            self._impaired.add(id(dtls))
            self._wrap(dtls.transport)

    def _wrap(self, ice: Any) -> None:
        loss, rng, video_pts = self.loss, self._rng, self._video_payload_types
        original = ice._recv

        # Dropped before SRTP decryption, as the network would: a packet the
        # receiver decrypted once would be refused later as a replay.
        async def recv() -> bytes:
            while True:
                data: bytes = await original()
                if len(data) < 12 or not 127 < data[0] < 192 or data[1] & 0x7F not in video_pts:
                    return data  # STUN, DTLS, RTCP (PT 72..79 after masking) or audio
                seq, ssrc = (data[2] << 8) | data[3], int.from_bytes(data[8:12])
                seen = loss.received.setdefault(ssrc, set())
                first_time = seq not in seen and (ssrc, seq) not in loss.dropped_packets
                if first_time and rng.random() < loss.rate:
                    loss.dropped_packets.add((ssrc, seq))
                    loss.dropped += 1
                    continue
                seen.add(seq)
                return data

        ice._recv = recv


def _video_payload_types(offer_sdp: str) -> set[int]:
    return {
        codec.payload_type
        for section in sdp.parse(offer_sdp).media
        if section.kind == "video"
        for codec in section.codecs
    }


async def request_key_frame(client: StageClient, remote: RemoteTrack) -> None:
    """Send a PLI (RFC 4585 §6.3.1) for a video track `client` receives."""
    description = client.subscriber.remoteDescription
    for transceiver in client.subscriber.getTransceivers():
        if transceiver.receiver.track is remote.track:
            mid = transceiver.mid
            section = sdp.parse(description.sdp).section(mid) if mid is not None else None
            if section is not None and section.ssrcs:
                await transceiver.receiver._send_rtcp_pli(section.ssrcs[0])
            return


@dataclass(frozen=True, slots=True)
class ReceivedPacket:
    """One RTP packet as the viewer's receiver got it (decrypted), VP8 or H.264."""

    sequence_number: int
    timestamp: int
    marker: bool
    picture_id: int  # VP8 PictureID, -1 without one (and for H.264)
    key_frame_size: tuple[int, int] | None  # (width, height) at a key frame's start
    key_frame: bool  # the first packet of a key frame (H.264: the one with the SPS)
    nal_types: tuple[int, ...] = ()  # H.264: the NAL units it carries or starts


def _received_packet(packet: Any) -> ReceivedPacket:
    payload = bytes(packet.payload)
    seq, timestamp, marker = packet.sequence_number, packet.timestamp, bool(packet.marker)
    if packet.payload_type == PAYLOAD_TYPES["H264"]:  # the SFU's numbering
        return ReceivedPacket(
            seq,
            timestamp,
            marker,
            picture_id=-1,
            key_frame_size=h264.key_frame_size(payload),
            key_frame=is_h264_keyframe(payload),
            nal_types=_nal_types(payload),
        )
    numbering = vp8.picture_numbering(payload)
    return ReceivedPacket(
        seq,
        timestamp,
        marker,
        picture_id=numbering.picture_id if numbering.picture_id_at >= 0 else -1,
        key_frame_size=vp8.key_frame_size(payload),
        key_frame=is_vp8_keyframe(payload),
    )


def _nal_types(payload: bytes) -> tuple[int, ...]:
    """RFC 6184: a single NAL unit's type, a STAP-A's units' (§5.7.1), an FU-A's
    unit's at its start (§5.8), nothing for the rest of a fragmented unit."""
    if not payload:
        return ()
    nal_type = payload[0] & 0x1F
    if nal_type == 28:
        return (payload[1] & 0x1F,) if len(payload) > 1 and payload[1] & 0x80 else ()
    if nal_type != 24:
        return (nal_type,)
    types, pos = [], 1
    while pos + 2 < len(payload):
        types.append(payload[pos + 2] & 0x1F)
        pos += 2 + int.from_bytes(payload[pos : pos + 2], "big")
    return tuple(types)


@dataclass(eq=False)
class ReceivedRtp:
    """The RTP packets of one track, in arrival order, from `observe_rtp` on."""

    packets: list[ReceivedPacket] = field(default_factory=list)


def observe_rtp(client: StageClient, remote: RemoteTrack) -> ReceivedRtp:
    """Record every RTP packet `client` receives for the (VP8 or H.264) track `remote`
    from now on."""
    received = ReceivedRtp()
    transceiver = next(
        t for t in client.subscriber.getTransceivers() if t.receiver.track is remote.track
    )
    receiver: Any = transceiver.receiver
    original = receiver._handle_rtp_packet

    async def handle(packet: Any, arrival_time_ms: int) -> None:
        received.packets.append(_received_packet(packet))
        await original(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle
    return received
