"""A producer and its consumers wired as a router would, without a router: packets
built by hand, time from a FakeClock, every send a list that captures bytes, so a
test reads exactly what would go on the wire (tests/unit/test_forwarding_*.py)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from sfu.consumer import Consumer
from sfu.fanout import CallableEgress
from sfu.options import MediaOptions
from sfu.ortc import EXTENSION_IDS
from sfu.producer import Producer
from sfu.rtp import rtcp
from sfu.rtp.header import RtpPacketView
from sfu.rtp_parameters import (
    URI_ABS_SEND_TIME,
    URI_AUDIO_LEVEL,
    URI_MID,
    URI_VIDEO_ORIENTATION,
    CodecParameters,
    ReceiveParameters,
)
from sfu.types import ConsumerId, MediaKind, Mid, ProducerId, TransportId
from tests.fakes import EventRecorder, FakeClock
from tests.packets import make_rtp, make_vp8_payload, parse_all, parse_rtp, rtcp_of

# The publisher's numbering, as aiortc offers it: MID 1, audio level 2.
PUB_MID_ID = 1
PUB_AUDIO_LEVEL_ID = 2
PUB_ABS_SEND_TIME_ID = 3
PUB_ORIENTATION_ID = 5
PUB_UNNEGOTIATED_ID = 7
PUB_OPUS_PT = 109
PUB_VP8_PT = 120
PUB_H264_PT = 125
PUB_RTX_PT = 121
PUB_SSRC = 0x1111_1111
PUB_RTX_SSRC = 0x2222_2222
PUB_MID = b"0"

CANON_MID_ID = EXTENSION_IDS[URI_MID]
CANON_AUDIO_LEVEL_ID = EXTENSION_IDS[URI_AUDIO_LEVEL]
CANON_ABS_SEND_TIME_ID = EXTENSION_IDS[URI_ABS_SEND_TIME]
CANON_ORIENTATION_ID = EXTENSION_IDS[URI_VIDEO_ORIENTATION]

AUDIO_FRAME = 960  # 20 ms at 48 kHz
VIDEO_FRAME = 3000  # 1/30 s at 90 kHz


class Capture:
    """A fake send callable: records what it accepts; `accept=False` is a dead viewer."""

    def __init__(self, clock: FakeClock, accept: bool = True) -> None:
        self._clock = clock
        self.accept = accept
        self.sent: list[bytes] = []
        self.times: list[float] = []
        self.refused = 0

    def __call__(self, data: bytes) -> bool:
        if not self.accept:
            self.refused += 1
            return False
        self.sent.append(data)
        self.times.append(self._clock.now())
        return True

    def clear(self) -> None:
        self.sent.clear()
        self.times.clear()


@dataclass
class Viewer:
    consumer: Consumer
    rtp: Capture
    rtcp: Capture

    @property
    def packets(self) -> list[RtpPacketView]:
        return parse_all(self.rtp.sent)


@dataclass
class Harness:
    kind: MediaKind
    video_codec: str = "VP8"  # or "H264": packets then come from `h264`
    # The Python reference fan-out, so packets can be captured before SRTP; the
    # native one is held to identical bytes by test_fanout_identity.py.
    options: MediaOptions = field(default_factory=lambda: MediaOptions(native_fastpath=False))
    clock: FakeClock = field(default_factory=FakeClock)
    events: EventRecorder = field(default_factory=EventRecorder)

    def __post_init__(self) -> None:
        self.upstream = Capture(self.clock)
        if self.kind == MediaKind.AUDIO:
            codec = CodecParameters(
                kind=MediaKind.AUDIO,
                name="opus",
                payload_type=PUB_OPUS_PT,
                clock_rate=48000,
                channels=2,
            )
            parameters = ReceiveParameters(
                mid=Mid("0"),
                codec=codec,
                ssrc=PUB_SSRC,
                extensions={URI_MID: PUB_MID_ID, URI_AUDIO_LEVEL: PUB_AUDIO_LEVEL_ID},
            )
        else:
            codec = CodecParameters(
                kind=MediaKind.VIDEO,
                name=self.video_codec,
                payload_type=PUB_H264_PT if self.video_codec == "H264" else PUB_VP8_PT,
                clock_rate=90000,
            )
            parameters = ReceiveParameters(
                mid=Mid("1"),
                codec=codec,
                ssrc=PUB_SSRC,
                rtx_ssrc=PUB_RTX_SSRC,
                rtx_payload_type=PUB_RTX_PT,
                extensions={
                    URI_MID: PUB_MID_ID,
                    URI_ABS_SEND_TIME: PUB_ABS_SEND_TIME_ID,
                    URI_VIDEO_ORIENTATION: PUB_ORIENTATION_ID,
                },
            )
        self.clock_rate = codec.clock_rate
        self.producer = Producer(
            producer_id=ProducerId("p1"),
            parameters=parameters,
            stream_id="stream-1",
            track_id="track-1",
            canonical_ext_ids=EXTENSION_IDS,
            options=self.options,
            clock=self.clock,
            send_rtcp=self.upstream,
            on_event=self.events,
        )
        self._next_consumer = 0

    def add_viewer(
        self,
        *,
        ssrc: int = 0xCAFE_0001,
        payload_type: int = 96,
        mid: str = "0",
        initial_sequence: int = 1000,
        initial_timestamp: int = 50_000,
        accept: bool = True,
        ready: bool = True,
    ) -> Viewer:
        self._next_consumer += 1
        rtp_out = Capture(self.clock, accept=accept)
        rtcp_out = Capture(self.clock)
        consumer = Consumer(
            consumer_id=ConsumerId(f"c{self._next_consumer}"),
            producer_id=self.producer.id,
            transport_id=TransportId("viewer"),
            kind=self.kind,
            ssrc=ssrc,
            payload_type=payload_type,
            clock_rate=self.clock_rate,
            mid=Mid(mid),
            mid_extension_id=CANON_MID_ID,
            cname="stream-1",
            clock=self.clock,
            fanout=self.producer.fanout,
            connected_egress=lambda: CallableEgress(rtp_out),
            send_rtcp=rtcp_out,
            request_key_frame=self.producer.request_key_frame,
            on_event=self.events,
            initial_sequence=initial_sequence,
            initial_timestamp=initial_timestamp,
        )
        self.producer.consumers = (*self.producer.consumers, consumer)
        if ready:
            consumer.set_ready()
        return Viewer(consumer, rtp_out, rtcp_out)

    def receive(self, data: bytes) -> None:
        self.producer.receive_rtp(parse_rtp(data))

    def audio(
        self,
        seq: int,
        ts: int,
        payload: bytes = b"opus",
        *,
        extensions: Sequence[tuple[int, bytes]] = ((PUB_MID_ID, PUB_MID),),
        marker: bool = False,
    ) -> bytes:
        data = make_rtp(seq, ts, PUB_SSRC, PUB_OPUS_PT, marker, extensions, payload)
        self.receive(data)
        return data

    def video(
        self,
        seq: int,
        ts: int,
        *,
        keyframe: bool = False,
        start: bool = True,
        body: bytes = b"frame",
        extensions: Sequence[tuple[int, bytes]] = ((PUB_MID_ID, PUB_MID),),
        marker: bool = True,
    ) -> bytes:
        payload = make_vp8_payload(keyframe, start=start, body=body)
        data = make_rtp(seq, ts, PUB_SSRC, PUB_VP8_PT, marker, extensions, payload)
        self.receive(data)
        return data

    def h264(self, seq: int, ts: int, payload: bytes, *, marker: bool = False) -> bytes:
        """One H.264 packet (an RFC 6184 payload) on the video MID."""
        data = make_rtp(seq, ts, PUB_SSRC, PUB_H264_PT, marker, ((PUB_MID_ID, PUB_MID),), payload)
        self.receive(data)
        return data

    def tick_for(self, seconds: float, step: float = 0.02) -> None:
        """Drive the producer's RTCP timer as the router does, every `step` seconds."""
        end = self.clock.now() + seconds
        while self.clock.now() + step <= end + 1e-9:
            self.clock.advance(step)
            self.producer.tick(self.clock.now())

    def plis(self) -> list[rtcp.PictureLossIndication]:
        return rtcp_of(self.upstream.sent, rtcp.PictureLossIndication)

    def pli_times(self) -> list[float]:
        return [
            at
            for data, at in zip(self.upstream.sent, self.upstream.times, strict=True)
            if rtcp_of([data], rtcp.PictureLossIndication)
        ]


def assert_continuous(views: Sequence[RtpPacketView]) -> None:
    seqs = [v.sequence_number for v in views]
    steps = [(b - a) & 0xFFFF for a, b in itertools.pairwise(seqs)]
    assert steps == [1] * len(steps), f"output sequence numbers jump: {seqs}"

