"""Transport-wide sequence numbers on what a viewer's transport sends: one counter for
all its consumers, originals and retransmissions, in the element right after the MID;
a send log answering which packet went out when and how large; the viewer's feedback
routed to its transport. Each behaviour on both fan-outs (the Python reference and the
native one, whose bytes test_fanout_identity.py holds identical)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from sfu import fastpath
from sfu.consumer import Consumer
from sfu.fanout import CallableEgress
from sfu.native_types import NativeEgress
from sfu.options import MediaOptions
from sfu.ortc import EXTENSION_IDS
from sfu.producer import Producer
from sfu.router import Router
from sfu.rtp import rtcp
from sfu.rtp.header import RtpPacketView
from sfu.rtp.send_log import HISTORY, SendLog
from sfu.rtp_parameters import (
    URI_AUDIO_LEVEL,
    URI_MID,
    URI_TRANSPORT_CC,
    CodecParameters,
    ReceiveParameters,
)
from sfu.srtp import SessionKeys, SrtpProfile, SrtpSender
from sfu.types import ConsumerId, MediaKind, Mid, ProducerId, TransportId
from sfu.worker import Worker
from tests.fakes import EventRecorder, FakeClock
from tests.packets import make_rtp, make_vp8_payload, parse_all

TCC_ID = EXTENSION_IDS[URI_TRANSPORT_CC]
MID_ID = EXTENSION_IDS[URI_MID]
PUB_MID_ID = 1
AUDIO_SSRC, VIDEO_SSRC = 0x1111_0001, 0x1111_0002
PATHS = ("python", "native")


@dataclass
class ViewerEgress:
    """One viewer transport's egress with stamping on, as WebRtcTransport opens it:
    the Python path's CallableEgress carrying a SendLog, or a native egress (capture
    mode: what it would send is kept). `profile` None: plain RTP."""

    native: bool
    profile: SrtpProfile | None = None
    captured: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        profile = self.profile
        keys = None
        if profile is not None:
            master = bytes(range(profile.key_length + profile.salt_length))
            keys = SessionKeys.from_master(profile, master)
        self.capture: NativeEgress | None = None
        if self.native:
            self.capture = fastpath.native_egress(
                profile=str(profile) if keys else "NONE",
                key=keys.rtp_key if keys else b"",
                salt=keys.rtp_salt if keys else b"",
                auth_key=keys.rtp_auth if keys else b"",
                fd=-1,
                address=("0.0.0.0", 0),
                transport_cc_id=TCC_ID,
            )
            self.egress: fastpath.AnyEgress = self.capture
            return
        protect: Callable[[bytes], bytes] = SrtpSender(keys).protect if keys else bytes
        overhead = profile.rtp_overhead if profile else 0

        def send(packet: bytes) -> bool:
            self.captured.append(protect(packet))
            return True

        self.egress = CallableEgress(send, SendLog(TCC_ID, overhead=overhead))

    def take(self) -> list[bytes]:
        """What went to the viewer since the last call (after SRTP, if any)."""
        if self.capture is not None:
            return self.capture.take_captured()
        taken, self.captured = self.captured, []
        return taken


def _transport_seq(view: RtpPacketView) -> int:
    value = view.extension(TCC_ID)
    assert value is not None and len(value) == 2, view.extensions()
    return int.from_bytes(value, "big")


class Stage:
    """An audio and a video producer, and one viewer transport consuming both."""

    def __init__(self, native: bool) -> None:
        self.clock = FakeClock()
        self.viewer = ViewerEgress(native)
        options = MediaOptions(native_fastpath=native)
        self.audio = self._producer(options, MediaKind.AUDIO, AUDIO_SSRC)
        self.video = self._producer(options, MediaKind.VIDEO, VIDEO_SSRC)
        self.audio_consumer = self._consumer(self.audio, 0xA0, Mid("0"))
        self.video_consumer = self._consumer(self.video, 0xB0, Mid("1"))
        self.seq = {AUDIO_SSRC: 100, VIDEO_SSRC: 5000}

    def _producer(self, options: MediaOptions, kind: MediaKind, ssrc: int) -> Producer:
        codec = (
            CodecParameters(kind=kind, name="opus", payload_type=109, clock_rate=48000, channels=2)
            if kind == MediaKind.AUDIO
            else CodecParameters(kind=kind, name="VP8", payload_type=120, clock_rate=90000)
        )
        return Producer(
            producer_id=ProducerId(str(kind)),
            parameters=ReceiveParameters(
                mid=Mid(str(kind)), codec=codec, ssrc=ssrc, extensions={URI_MID: PUB_MID_ID}
            ),
            stream_id="alice",
            track_id=str(kind),
            canonical_ext_ids=EXTENSION_IDS,
            options=options,
            clock=self.clock,
            send_rtcp=lambda data: True,
            on_event=EventRecorder(),
        )

    def _consumer(self, producer: Producer, ssrc: int, mid: Mid) -> Consumer:
        consumer = Consumer(
            consumer_id=ConsumerId(f"c-{mid}"),
            producer_id=producer.id,
            transport_id=TransportId("viewer"),
            kind=producer.kind,
            ssrc=ssrc,
            payload_type=producer.parameters.codec.payload_type,
            clock_rate=producer.parameters.codec.clock_rate,
            mid=mid,
            mid_extension_id=MID_ID,
            cname="alice",
            clock=self.clock,
            fanout=producer.fanout,
            connected_egress=lambda: self.viewer.egress,  # one egress for the transport
            send_rtcp=lambda data: True,
            request_key_frame=producer.request_key_frame,
            on_event=EventRecorder(),
            initial_sequence=ssrc * 10,
            initial_timestamp=ssrc * 1000,
        )
        producer.consumers = (*producer.consumers, consumer)
        consumer.set_ready()
        return consumer

    def send(self, producer: Producer, *, keyframe: bool = False) -> None:
        ssrc = producer.parameters.ssrc
        assert ssrc is not None
        seq = self.seq[ssrc]
        self.seq[ssrc] = seq + 1
        video = producer.kind == MediaKind.VIDEO
        payload = make_vp8_payload(keyframe) if video else b"opus"
        pt = producer.parameters.codec.payload_type
        data = make_rtp(seq, seq * 960, ssrc, pt, video, ((PUB_MID_ID, b"x"),), payload)
        producer.receive_rtp(RtpPacketView.parse(data))  # type: ignore[arg-type]
        self.clock.advance(0.01)


@pytest.mark.parametrize("path", PATHS)
def test_one_counter_numbers_every_consumer_of_the_transport(path: str) -> None:
    stage = Stage(path == "native")
    stage.send(stage.video, keyframe=True)
    for _ in range(4):
        stage.send(stage.audio)
        stage.send(stage.video)

    views = parse_all(stage.viewer.take())

    assert [v.ssrc for v in views] == [0xB0] + [0xA0, 0xB0] * 4
    assert [_transport_seq(v) for v in views] == list(range(9))
    for view in views:  # the MID first, the transport-wide number right after it
        assert [element_id for element_id, _ in view.extensions()][:2] == [MID_ID, TCC_ID]


@pytest.mark.parametrize("path", PATHS)
def test_a_retransmission_takes_the_next_number_not_the_original_one(path: str) -> None:
    stage = Stage(path == "native")
    stage.send(stage.video, keyframe=True)
    stage.send(stage.video)
    stage.send(stage.audio)
    first = parse_all(stage.viewer.take())
    nacked = first[0]

    stage.video_consumer.receive_nack([nacked.sequence_number])
    stage.send(stage.audio)
    again, audio = parse_all(stage.viewer.take())

    assert stage.video_consumer.retransmissions_sent == 1
    assert again.sequence_number == nacked.sequence_number
    assert again.payload == nacked.payload
    assert [_transport_seq(v) for v in (*first, again, audio)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("path", PATHS)
def test_the_send_log_has_each_packets_send_time_and_size(path: str) -> None:
    stage = Stage(path == "native")
    times = []
    for _ in range(3):
        times.append(stage.clock.now())
        stage.send(stage.audio)
    sent = stage.viewer.take()

    logged = stage.viewer.egress.sent_packets(0, 4)

    assert logged == [(t, len(p)) for t, p in zip(times, sent, strict=True)] + [None]


def _forwarder(viewer: ViewerEgress) -> Callable[[float], None]:
    """A one-slot fan-out sending one small packet to `viewer` per call, at `now`."""
    fan = fastpath.create_fanout(native=viewer.native, history=0, max_age=1.0)
    spec = fastpath.FanOutSlotSpec(
        ssrc=7, payload_type=111, mid_element=bytes([MID_ID << 4]) + b"0", clock_rate=48000,
        initial_sequence=0, initial_timestamp=0,
    )  # fmt: skip
    slot = fan.add_slot(spec, viewer.egress)  # type: ignore[arg-type]
    slot.activate(wait_for_key_frame=False)
    counter = [0]

    def forward(now: float) -> None:
        seq = counter[0] = counter[0] + 1
        fan.forward(make_rtp(seq, seq * 960, 1, payload=b"opus" * 10), 12, b"", False, now)

    return forward


@pytest.mark.parametrize("profile", [*SrtpProfile], ids=str)
@pytest.mark.parametrize("path", PATHS)
def test_logged_sizes_are_those_on_the_wire_after_srtp(path: str, profile: SrtpProfile) -> None:
    viewer = ViewerEgress(path == "native", profile)
    forward = _forwarder(viewer)
    forward(5.0)
    forward(6.0)

    wire = viewer.take()

    assert viewer.egress.sent_packets(0, 2) == [(5.0, len(wire[0])), (6.0, len(wire[1]))]
    # header, extension block (MID, number, padding), payload, SRTP tag
    assert len(wire[0]) == 12 + 12 + 40 + profile.rtp_overhead


@pytest.mark.parametrize("path", PATHS)
def test_numbers_wrap_and_old_ones_are_overwritten(path: str) -> None:
    viewer = ViewerEgress(path == "native")
    forward = _forwarder(viewer)
    total = 0x10000 + 5  # 0..65535, then 0..4 again
    for i in range(total):
        forward(float(i))
    last = viewer.take()
    log = viewer.egress

    assert [_transport_seq(v) for v in parse_all(last[-6:])] == [65535, 0, 1, 2, 3, 4]
    assert log.sent_packets(65535, 3) == [(65535.0, 64), (65536.0, 64), (65537.0, 64)]
    oldest = (0x10000 + 5 - HISTORY) & 0xFFFF  # the oldest number still remembered
    assert log.sent_packets(oldest - 1, 2)[0] is None  # overwritten
    assert log.sent_packets(oldest, 1) == [(float(total - HISTORY), 64)]
    assert log.sent_packets(5, 1) == [None]  # sent in the first round, overwritten


@pytest.mark.parametrize("path", PATHS)
def test_numbers_never_sent_are_not_in_the_log(path: str) -> None:
    viewer = ViewerEgress(path == "native")
    assert viewer.egress.sent_packets(0, 2) == [None, None]
    forward = _forwarder(viewer)
    forward(1.0)
    forward(2.0)

    assert viewer.egress.sent_packets(65534, 5) == [None, None, (1.0, 64), (2.0, 64), None]
    with pytest.raises(ValueError):
        viewer.egress.sent_packets(0, 65537)


def test_a_send_log_is_made_for_a_one_byte_id() -> None:
    for bad in (0, 15):
        with pytest.raises(ValueError):
            SendLog(bad, overhead=0)
    with pytest.raises(ValueError):
        SendLog(TCC_ID, overhead=-1)
    with pytest.raises(ValueError):
        fastpath.native_egress(profile="NONE", key=b"", salt=b"", auth_key=b"", fd=-1,
                               address=("0.0.0.0", 0), transport_cc_id=15)  # fmt: skip


def test_an_unstamping_egress_logs_nothing() -> None:
    plain = fastpath.native_egress(
        profile="NONE", key=b"", salt=b"", auth_key=b"", fd=-1, address=("0.0.0.0", 0)
    )
    assert plain.sent_packets(0, 2) == [None, None]
    python = CallableEgress(lambda packet: True)
    assert python.sent_packets(0, 1) == [None]
    for egress in (plain, python):
        with pytest.raises(ValueError):
            egress.sent_packets(0, -1)


# -- feedback from the viewer -------------------------------------------------------


@pytest.fixture
async def router() -> AsyncIterator[tuple[Router, FakeClock]]:
    clock = FakeClock()
    worker = Worker(clock=clock)
    yield worker.create_router(on_event=EventRecorder()), clock
    worker.close()
    await worker.wait_closed()


FCI = bytes.fromhex("0005000316ab9c01a0030000")  # base 5, 3 statuses, a run-length chunk


async def test_transport_wide_feedback_reaches_its_transport_with_the_arrival_time(
    router: tuple[Router, FakeClock],
) -> None:
    media, clock = router
    transport = media.create_direct_transport(on_rtp=lambda data: None)
    received: list[tuple[bytes, float]] = []
    transport.on_transport_feedback = lambda fci, at: received.append((fci, at))
    report = rtcp.ReceiverReport(ssrc=9, reports=())

    transport.send_rtcp(rtcp.compound((report, rtcp.TransportFeedbackRaw(9, 0xA0, FCI))))
    clock.advance(0.05)
    transport.send_rtcp(rtcp.serialize(rtcp.TransportFeedbackRaw(9, 12345, FCI[:4])))

    assert received == [(FCI, 1000.0), (FCI[:4], 1000.05)]
    assert transport.transport_feedbacks_received == 2


@pytest.mark.parametrize("fci", [b"", b"\xff", b"\x00" * 3, bytes(range(256)) * 3])
async def test_garbage_feedback_is_counted_and_handed_on_without_raising(
    router: tuple[Router, FakeClock], fci: bytes
) -> None:
    media, _ = router
    transport = media.create_direct_transport(on_rtp=lambda data: None)
    transport.send_rtcp(rtcp.serialize(rtcp.TransportFeedbackRaw(1, 2, fci)))  # no hook
    received: list[bytes] = []
    transport.on_transport_feedback = lambda data, at: received.append(data)
    transport.send_rtcp(rtcp.serialize(rtcp.TransportFeedbackRaw(1, 2, fci)))

    assert transport.transport_feedbacks_received == 2
    assert received == [fci]


async def test_a_transport_wide_number_from_upstream_is_not_forwarded(
    router: tuple[Router, FakeClock],
) -> None:
    # Each transport numbers its own packets: a publisher's (or a pipe's) numbers are
    # dropped by the producer, so a stamping viewer transport writes the only one.
    media, _ = router
    upstream = media.create_direct_transport(on_rtp=lambda data: None)
    opus = CodecParameters(
        kind=MediaKind.AUDIO, name="opus", payload_type=109, clock_rate=48000, channels=2
    )
    extensions = {URI_MID: 1, URI_TRANSPORT_CC: 5, URI_AUDIO_LEVEL: 2}
    producer = upstream.produce(
        ReceiveParameters(mid=Mid("0"), codec=opus, ssrc=5, extensions=extensions)
    )
    out: list[bytes] = []
    media.create_direct_transport(on_rtp=out.append).consume(producer)

    elements = ((1, b"0"), (5, b"\x12\x34"), (2, b"\x85"))
    upstream.send_rtp(make_rtp(1, 960, 5, 109, False, elements, b"opus"))
    await asyncio.sleep(0.01)  # the native fan-out sends at the end of the loop iteration

    [view] = parse_all(out)
    assert [element_id for element_id, _ in view.extensions()] == [EXTENSION_IDS[URI_AUDIO_LEVEL]]
