"""Producer + Consumer together: what one publisher packet becomes for each viewer.

Packets are built by hand, time comes from a FakeClock, and every send is a
list that captures bytes, so each test reads exactly what would go on the wire.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from sfu.consumer import Consumer
from sfu.fanout import CallableEgress
from sfu.options import MediaOptions
from sfu.ortc import EXTENSION_IDS
from sfu.producer import Producer
from sfu.repair_budget import RepairBudget
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
from tests.packets import make_rtp, make_rtx, make_vp8_payload, parse_all, parse_rtp, rtcp_of

# The publisher's numbering, as aiortc offers it: MID 1, audio level 2.
PUB_MID_ID = 1
PUB_AUDIO_LEVEL_ID = 2
PUB_ABS_SEND_TIME_ID = 3
PUB_ORIENTATION_ID = 5
PUB_UNNEGOTIATED_ID = 7
PUB_OPUS_PT = 109
PUB_VP8_PT = 120
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
                kind=MediaKind.VIDEO, name="VP8", payload_type=PUB_VP8_PT, clock_rate=90000
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


# -- per-consumer header fields -------------------------------------------------


def test_each_viewer_gets_its_own_ssrc_payload_type_and_mid() -> None:
    h = Harness(MediaKind.AUDIO)
    a = h.add_viewer(ssrc=0xAAAA_0001, payload_type=111, mid="0", initial_sequence=10)
    b = h.add_viewer(ssrc=0xBBBB_0002, payload_type=100, mid="7", initial_sequence=20_000)
    for i in range(3):
        h.audio(300 + i, 9000 + i * AUDIO_FRAME)
        h.clock.advance(0.02)

    for viewer, ssrc, pt, mid in ((a, 0xAAAA_0001, 111, b"0"), (b, 0xBBBB_0002, 100, b"7")):
        views = viewer.packets
        assert len(views) == 3
        assert {v.ssrc for v in views} == {ssrc}
        assert {v.payload_type for v in views} == {pt}
        assert {v.extension(CANON_MID_ID) for v in views} == {mid}
    assert a.packets[0].sequence_number == 10
    assert b.packets[0].sequence_number == 20_000


def test_publisher_extension_ids_are_rewritten_to_the_sfu_table() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer(mid="3")
    h.audio(
        1,
        960,
        extensions=(
            (PUB_MID_ID, PUB_MID),
            (PUB_AUDIO_LEVEL_ID, bytes([0x80 | 42])),
            (PUB_UNNEGOTIATED_ID, b"\x01\x02"),
        ),
    )

    (view,) = viewer.packets
    assert view.ext_profile == 0xBEDE
    assert dict(view.extensions()) == {
        CANON_MID_ID: b"3",
        CANON_AUDIO_LEVEL_ID: bytes([0x80 | 42]),
    }
    assert CANON_AUDIO_LEVEL_ID != PUB_AUDIO_LEVEL_ID  # the test would prove nothing otherwise


def test_video_orientation_is_translated_and_the_publishers_mid_is_replaced() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(mid="12")
    h.video(
        5,
        0,
        keyframe=True,
        extensions=((PUB_MID_ID, PUB_MID), (PUB_ORIENTATION_ID, b"\x01")),
    )

    (view,) = viewer.packets
    assert view.extension(CANON_ORIENTATION_ID) == b"\x01"
    assert view.extension(CANON_MID_ID) == b"12"
    assert [i for i, _ in view.extensions()].count(CANON_MID_ID) == 1


def test_abs_send_time_carries_the_sfu_send_time_not_the_publishers() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    h.clock.advance(0.25)
    h.video(5, 0, keyframe=True, extensions=((PUB_ABS_SEND_TIME_ID, b"\x00\x00\x01"),))

    (view,) = viewer.packets
    expected = int(h.clock.now() * 262144) & 0xFFFFFF  # 6.18 fixed-point seconds
    assert view.extension(CANON_ABS_SEND_TIME_ID) == expected.to_bytes(3, "big")


def test_payload_marker_and_padding_reach_the_viewer_unchanged() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer()
    payload = bytes(range(200))
    original = make_rtp(7, 700, PUB_SSRC, PUB_OPUS_PT, True, (), payload, padding=4)
    h.receive(original)

    (view,) = viewer.packets
    assert view.payload == payload
    assert view.marker is True
    assert view.data[-4:] == original[-4:]


def test_packets_without_extensions_get_only_the_viewers_mid() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer(mid="5")
    h.audio(1, 960, extensions=())

    (view,) = viewer.packets
    assert view.extensions() == [(CANON_MID_ID, b"5")]
    assert (view.ext_end - view.ext_start) % 4 == 0


def test_packets_with_an_unnegotiated_payload_type_are_discarded() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer()
    h.receive(make_rtp(1, 960, PUB_SSRC, PUB_OPUS_PT + 1, payload=b"x"))

    assert viewer.rtp.sent == []
    assert h.producer.packets_discarded == 1
    assert h.producer.packets_received == 0


# -- continuous numbering -------------------------------------------------------


def test_sequence_and_timestamp_continue_across_pause_resume_and_a_new_source() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer(initial_sequence=65533, initial_timestamp=0xFFFF_FE00)
    consumer = viewer.consumer
    for i in range(5):
        h.audio(100 + i, 1000 + i * AUDIO_FRAME)
        h.clock.advance(0.02)
    last_sent_at = h.clock.now() - 0.02

    consumer.pause()
    for i in range(5, 8):
        h.audio(100 + i, 1000 + i * AUDIO_FRAME)  # nothing reaches the paused viewer
        h.clock.advance(0.02)
    h.clock.advance(1.5)
    consumer.resume()
    resumed_at = h.clock.now() + 0.02
    # A different source: unrelated seq (about to wrap) and timestamp ranges. Its first
    # packet is a jump not yet believed (RFC 3550 A.1): the second confirms it.
    h.audio(65533, 7_000_000 - AUDIO_FRAME)
    h.clock.advance(0.02)
    for i in range(5):
        h.audio((65534 + i) & 0xFFFF, 7_000_000 + i * AUDIO_FRAME)
        h.clock.advance(0.02)

    views = viewer.packets
    assert len(views) == 10
    assert_continuous(views)
    assert [v.sequence_number for v in views] == [65533, 65534, 65535, *range(0, 7)]
    before, after = views[:5], views[5:]
    assert [v.timestamp for v in before] == [
        (0xFFFF_FE00 + i * AUDIO_FRAME) & 0xFFFF_FFFF for i in range(5)
    ]
    gap = round((resumed_at - last_sent_at) * 48000)
    first_after = (before[-1].timestamp + gap) & 0xFFFF_FFFF
    assert [v.timestamp for v in after] == [
        (first_after + i * AUDIO_FRAME) & 0xFFFF_FFFF for i in range(5)
    ]


def test_video_output_continues_across_a_new_source_after_resume() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(initial_sequence=65534, initial_timestamp=123)
    h.video(10, 90_000, keyframe=True)
    h.clock.advance(0.033)
    h.video(11, 90_000 + VIDEO_FRAME)
    h.clock.advance(2.0)
    viewer.consumer.pause()
    viewer.consumer.resume()
    h.video(30_000, 5_000_000)  # delta from the new source: dropped, not numbered
    h.video(30_001, 5_000_000 + VIDEO_FRAME, keyframe=True)
    h.clock.advance(0.033)
    h.video(30_002, 5_000_000 + 2 * VIDEO_FRAME)

    views = viewer.packets
    assert [v.sequence_number for v in views] == [65534, 65535, 0, 1]
    assert views[2].payload == make_vp8_payload(True)
    assert views[3].timestamp - views[2].timestamp == VIDEO_FRAME


def test_an_upstream_gap_stays_a_gap_so_the_viewer_can_nack_it() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer(initial_sequence=500)
    for seq in (40, 41, 43, 44):
        h.audio(seq, seq * AUDIO_FRAME)

    assert [v.sequence_number for v in viewer.packets] == [500, 501, 503, 504]


def test_publisher_sequence_wraparound_is_invisible_to_the_viewer() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer(initial_sequence=30_000, initial_timestamp=0)
    for i in range(6):
        h.audio((65533 + i) & 0xFFFF, (0xFFFF_FC00 + i * AUDIO_FRAME) & 0xFFFF_FFFF)

    views = viewer.packets
    assert [v.sequence_number for v in views] == list(range(30_000, 30_006))
    assert [v.timestamp for v in views] == [i * AUDIO_FRAME for i in range(6)]


# -- key frames -----------------------------------------------------------------


def test_video_viewer_starts_on_a_key_frame_and_asks_the_publisher_for_one() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(initial_sequence=77)

    (pli,) = h.plis()
    assert pli.media_ssrc == PUB_SSRC
    h.video(1, 0)
    h.video(2, VIDEO_FRAME)
    assert viewer.rtp.sent == []

    h.video(3, 2 * VIDEO_FRAME, keyframe=True, marker=False)
    h.video(4, 2 * VIDEO_FRAME, start=False, body=b"rest of the key frame")
    h.video(5, 3 * VIDEO_FRAME)
    views = viewer.packets
    assert [v.sequence_number for v in views] == [77, 78, 79]
    assert views[1].payload == make_vp8_payload(True, start=False, body=b"rest of the key frame")
    assert h.producer.key_frames_received == 1


def test_a_key_frame_request_that_gets_no_answer_is_sent_again_until_one_arrives() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    assert len(h.plis()) == 1
    h.tick_for(0.9)
    assert len(h.plis()) == 1
    h.tick_for(0.2)
    assert len(h.plis()) == 2  # the first was lost: asked again after 1 s
    h.tick_for(2.0)
    assert len(h.plis()) == 3  # then 2 s later
    h.video(1, 0, keyframe=True)
    h.tick_for(20.0)
    assert len(h.plis()) == 3  # answered: no more requests
    assert [v.sequence_number for v in viewer.packets] == [1000]


def test_resumed_video_viewer_waits_for_the_next_key_frame() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    h.video(1, 0, keyframe=True)
    h.video(2, VIDEO_FRAME)
    viewer.consumer.pause()
    h.clock.advance(1.5)  # past the PLI throttle interval
    h.upstream.clear()

    viewer.consumer.resume()
    (pli,) = h.plis()
    assert pli.media_ssrc == PUB_SSRC
    h.video(3, 2 * VIDEO_FRAME)
    assert len(viewer.rtp.sent) == 2
    h.video(4, 3 * VIDEO_FRAME, keyframe=True)
    assert len(viewer.rtp.sent) == 3


def test_a_paused_viewers_key_frame_request_is_not_relayed() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    viewer.consumer.pause()
    h.clock.advance(1.5)
    h.upstream.clear()

    viewer.consumer.receive_key_frame_request()
    h.tick_for(2.0)

    assert h.plis() == []
    assert viewer.consumer.key_frame_requests_received == 1


def test_audio_viewers_never_ask_for_key_frames() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer()
    viewer.consumer.receive_key_frame_request()
    h.tick_for(2.0)

    assert h.plis() == []


def _hundred_ready_viewers(h: Harness) -> list[Viewer]:
    viewers = [h.add_viewer(ssrc=0xC000_0000 + i, mid=str(i)) for i in range(100)]
    h.tick_for(3.0)  # the PLIs their set_ready() caused are sent or released
    assert len(h.plis()) == 2
    h.video(0, 0, keyframe=True)  # they play: their own requests are relayed again
    h.upstream.clear()
    return viewers


def test_hundred_viewers_asking_within_a_second_cause_one_pli_then_one_deferred() -> None:
    h = Harness(MediaKind.VIDEO)
    viewers = _hundred_ready_viewers(h)
    first = h.clock.now()
    for viewer in viewers:
        viewer.consumer.receive_key_frame_request()
        h.clock.advance(0.0099)
        h.producer.tick(h.clock.now())
    assert h.clock.now() - first < 1.0
    assert len(h.plis()) == 1

    h.tick_for(3.0)
    plis = h.plis()
    assert len(plis) == 2
    assert {p.media_ssrc for p in plis} == {PUB_SSRC}
    times = h.pli_times()
    assert times[1] - times[0] >= 1.0
    assert sum(v.consumer.key_frame_requests_received for v in viewers) == 100


def test_a_key_frame_arriving_cancels_the_deferred_pli() -> None:
    h = Harness(MediaKind.VIDEO)
    viewers = _hundred_ready_viewers(h)
    for viewer in viewers:
        viewer.consumer.receive_key_frame_request()
        h.clock.advance(0.005)
        h.producer.tick(h.clock.now())
    assert len(h.plis()) == 1

    h.video(1, 0, keyframe=True)
    h.tick_for(3.0)
    assert len(h.plis()) == 1
    assert all(len(v.rtp.sent) == 2 for v in viewers)


def test_a_delta_frame_does_not_cancel_the_deferred_pli() -> None:
    h = Harness(MediaKind.VIDEO)
    viewers = _hundred_ready_viewers(h)
    viewers[0].consumer.receive_key_frame_request()
    viewers[1].consumer.receive_key_frame_request()
    h.video(1, 0, keyframe=False)
    h.tick_for(1.5)

    assert len(h.plis()) == 2


# -- NACKs from viewers -----------------------------------------------------------


def _video_stream(h: Harness, count: int, first_seq: int = 200) -> list[bytes]:
    sent = []
    for i in range(count):
        sent.append(
            h.video(
                first_seq + i,
                i * VIDEO_FRAME,
                keyframe=i == 0,
                body=bytes([i]) * 50,
                extensions=((PUB_MID_ID, PUB_MID), (PUB_ORIENTATION_ID, b"\x02")),
            )
        )
        h.clock.advance(0.033)
    return sent


def test_nack_is_answered_with_exactly_the_bytes_sent_the_first_time() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(initial_sequence=65530)
    _video_stream(h, 10)
    originals = list(viewer.rtp.sent)
    h.clock.advance(0.1)

    wanted = [originals[3], originals[7]]
    viewer.consumer.receive_nack([parse_rtp(p).sequence_number for p in wanted])

    assert viewer.rtp.sent[10:] == wanted
    assert viewer.consumer.retransmissions_sent == 2
    assert viewer.consumer.retransmission_misses == 0


def test_a_nack_repeated_within_50_ms_resends_once() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    _video_stream(h, 5)
    seq = viewer.packets[2].sequence_number

    viewer.consumer.receive_nack([seq])
    h.clock.advance(0.01)
    viewer.consumer.receive_nack([seq])
    assert viewer.consumer.retransmissions_sent == 1
    h.clock.advance(0.06)
    viewer.consumer.receive_nack([seq])
    assert viewer.consumer.retransmissions_sent == 2


def test_nack_for_a_sequence_never_sent_counts_a_miss() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(initial_sequence=1000)
    _video_stream(h, 5)  # output 1000..1004

    viewer.consumer.receive_nack([2000, 999])

    assert len(viewer.rtp.sent) == 5
    assert viewer.consumer.retransmission_misses == 2
    assert viewer.consumer.retransmissions_sent == 0


def test_nack_for_a_packet_the_publisher_never_delivered_counts_a_miss() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(initial_sequence=1000)
    h.video(1, 0, keyframe=True)
    h.video(3, VIDEO_FRAME)  # 2 lost upstream: output 1001 is a hole

    viewer.consumer.receive_nack([1001])

    assert viewer.consumer.retransmission_misses == 1
    assert len(viewer.rtp.sent) == 2


def test_nack_for_a_packet_older_than_the_history_counts_a_miss() -> None:
    options = MediaOptions(retransmission_max_age=1.0, native_fastpath=False)
    h = Harness(MediaKind.VIDEO, options=options)
    viewer = h.add_viewer()
    _video_stream(h, 3)
    seq = viewer.packets[0].sequence_number
    h.clock.advance(1.5)

    viewer.consumer.receive_nack([seq])

    assert viewer.consumer.retransmission_misses == 1
    assert len(viewer.rtp.sent) == 3


# -- sender reports ---------------------------------------------------------------


def _sender_report(rtp_timestamp: int, ntp: int = 0xE000_0000_8000_0000) -> rtcp.SenderReport:
    return rtcp.SenderReport(
        ssrc=PUB_SSRC,
        ntp_timestamp=ntp,
        rtp_timestamp=rtp_timestamp,
        packet_count=10,
        octet_count=1000,
    )


TICK = 1 / 64  # about the router's 20 ms, but exact in binary: 64 ticks are 1 s exactly


def _reports_after(h: Harness, seconds: float) -> None:
    """The producer's periodic ticks over `seconds`, as the router runs them."""
    for _ in range(round(seconds / TICK)):
        h.clock.advance(TICK)
        h.producer.tick(h.clock.now())


def test_sender_report_is_the_publishers_carried_forward_onto_the_viewers_timeline() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer(ssrc=0xABCD_0001, initial_timestamp=0xFFFF_FF00)
    for i in range(3):
        h.audio(10 + i, 5_000 + i * AUDIO_FRAME)
    first = viewer.packets[0]
    offset = (first.timestamp - 5_000) & 0xFFFF_FFFF
    h.producer.tick(h.clock.now())
    received = h.clock.now()

    h.producer.receive_sender_report(_sender_report(rtp_timestamp=7_000, ntp=0x1234_5678_9ABC))
    assert rtcp_of(viewer.rtcp.sent, rtcp.SenderReport) == []  # not in the SR's own callback
    _reports_after(h, 1.0)

    (report,) = rtcp_of(viewer.rtcp.sent, rtcp.SenderReport)
    elapsed = viewer.rtcp.times[-1] - received
    assert 0 < elapsed <= 1.0
    assert report.ssrc == 0xABCD_0001
    assert report.rtp_timestamp == (7_000 + round(elapsed * 48_000) + offset) & 0xFFFF_FFFF
    assert report.ntp_timestamp == 0x1234_5678_9ABC + round(elapsed * 0x1_0000_0000)
    assert report.packet_count == 3
    assert report.octet_count == 3 * len(b"opus")
    (sdes,) = rtcp_of(viewer.rtcp.sent, rtcp.SourceDescription)
    assert sdes.chunks == ((0xABCD_0001, "stream-1"),)


def test_sender_reports_are_spread_over_the_second_once_per_viewer() -> None:
    h = Harness(MediaKind.AUDIO)
    viewers = [h.add_viewer(ssrc=0x5000_0000 + 7919 * i) for i in range(200)]
    h.audio(10, 5_000)
    h.producer.tick(h.clock.now())
    h.producer.receive_sender_report(_sender_report(rtp_timestamp=7_000))

    per_tick = []
    for _ in range(64):
        before = sum(len(v.rtcp.sent) for v in viewers)
        _reports_after(h, TICK)
        per_tick.append(sum(len(v.rtcp.sent) for v in viewers) - before)

    assert all(len(rtcp_of(v.rtcp.sent, rtcp.SenderReport)) == 1 for v in viewers)
    assert max(per_tick) <= 12  # about 3 per tick; all 200 in one callback before
    _reports_after(h, 1.0)
    assert all(len(rtcp_of(v.rtcp.sent, rtcp.SenderReport)) == 2 for v in viewers)


def test_sender_report_follows_the_offset_of_a_new_source() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer()
    h.audio(10, 5_000)
    viewer.consumer.pause()
    h.clock.advance(1.0)
    viewer.consumer.resume()
    h.audio(39_999, 9_999_000 - AUDIO_FRAME)  # a jump is believed from its second packet
    h.audio(40_000, 9_999_000)
    offset = (viewer.packets[-1].timestamp - 9_999_000) & 0xFFFF_FFFF
    h.producer.tick(h.clock.now())
    received = h.clock.now()

    h.producer.receive_sender_report(_sender_report(rtp_timestamp=9_999_960))
    _reports_after(h, 1.0)

    (report,) = rtcp_of(viewer.rtcp.sent, rtcp.SenderReport)
    elapsed = viewer.rtcp.times[-1] - received
    assert report.rtp_timestamp == (9_999_960 + round(elapsed * 48_000) + offset) & 0xFFFF_FFFF


def test_no_sender_report_reaches_a_viewer_that_has_no_media_yet() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    h.video(1, 0)  # not a key frame: the viewer is still waiting
    h.producer.tick(h.clock.now())

    h.producer.receive_sender_report(_sender_report(rtp_timestamp=0))
    _reports_after(h, 2.0)

    assert viewer.rtcp.sent == []


def _receiver_report(viewer: Viewer, last_sr: int, *, held: float) -> rtcp.ReportBlock:
    """The viewer's report block naming SR `last_sr`, received `held` seconds before."""
    return rtcp.ReportBlock(
        ssrc=viewer.consumer.ssrc,
        fraction_lost=0,
        packets_lost=0,
        highest_sequence=0,
        jitter=0,
        last_sr=last_sr,
        delay_since_last_sr=round(held * 65536),
    )


def test_round_trip_time_is_measured_from_our_own_report_send_time() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer()
    h.audio(10, 5_000)
    h.producer.tick(h.clock.now())
    h.producer.receive_sender_report(_sender_report(rtp_timestamp=7_000))
    _reports_after(h, 1.0)
    (report,) = rtcp_of(viewer.rtcp.sent, rtcp.SenderReport)
    sent_at = viewer.rtcp.times[-1]
    h.clock.advance(0.08)  # the viewer held our SR for 50 ms of this

    viewer.consumer.receive_report(
        _receiver_report(viewer, rtcp.ntp_middle_32(report.ntp_timestamp), held=0.05)
    )

    expected = h.clock.now() - sent_at - 0.05
    assert viewer.consumer.round_trip_time == pytest.approx(expected, abs=1e-4)


def test_a_report_naming_no_sr_of_ours_gives_no_round_trip_time() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer()
    h.audio(10, 5_000)

    viewer.consumer.receive_report(_receiver_report(viewer, 0x1234_5678, held=0.0))

    assert viewer.consumer.round_trip_time is None


# -- RTX from the publisher ---------------------------------------------------------


def test_rtx_packet_is_forwarded_as_the_original_on_the_primary_ssrc() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(ssrc=0xD00D_0001, payload_type=96, initial_sequence=4000)
    h.video(500, 0, keyframe=True)
    h.video(501, VIDEO_FRAME)
    h.video(503, 3 * VIDEO_FRAME)
    lost = make_vp8_payload(False, body=b"the lost one")

    h.receive(
        make_rtx(9, 2 * VIDEO_FRAME, PUB_RTX_SSRC, PUB_RTX_PT, 502, lost, ((PUB_MID_ID, PUB_MID),))
    )

    repaired = viewer.packets[-1]
    assert repaired.sequence_number == 4002
    assert repaired.ssrc == 0xD00D_0001
    assert repaired.payload_type == 96
    assert repaired.payload == lost
    assert repaired.timestamp == viewer.packets[0].timestamp + 2 * VIDEO_FRAME
    assert h.producer.retransmissions_received == 1


def test_a_repaired_packet_can_then_be_resent_to_a_viewer_that_nacks_it() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(initial_sequence=4000)
    h.video(500, 0, keyframe=True)
    h.video(502, 2 * VIDEO_FRAME)
    lost = make_vp8_payload(False, body=b"late")
    h.receive(make_rtx(1, VIDEO_FRAME, PUB_RTX_SSRC, PUB_RTX_PT, 501, lost))
    repaired = viewer.rtp.sent[-1]
    h.clock.advance(0.1)

    viewer.consumer.receive_nack([4001])

    assert viewer.rtp.sent[-1] == repaired
    assert viewer.consumer.retransmissions_sent == 1


def test_padding_only_rtx_probe_is_discarded() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    h.video(500, 0, keyframe=True)
    received = h.producer.packets_received

    h.receive(make_rtp(77, 0, PUB_RTX_SSRC, PUB_RTX_PT, payload=b"", padding=224))

    assert len(viewer.rtp.sent) == 1
    assert h.producer.packets_received == received
    assert h.producer.packets_discarded == 1


# -- feedback toward the publisher ---------------------------------------------------


def test_a_gap_in_the_publishers_sequence_is_nacked_upstream() -> None:
    h = Harness(MediaKind.VIDEO)
    h.add_viewer()
    for seq in (10, 11, 14, 15):
        h.video(seq, seq * VIDEO_FRAME, keyframe=seq == 10)

    h.producer.tick(h.clock.now())

    (nack,) = rtcp_of(h.upstream.sent, rtcp.GenericNack)
    assert nack.media_ssrc == PUB_SSRC
    assert sorted(nack.lost) == [12, 13]
    assert h.producer.nacks_sent == 1


def test_a_packet_repaired_by_rtx_is_not_nacked_again() -> None:
    h = Harness(MediaKind.VIDEO)
    h.add_viewer()
    for seq in (10, 11, 14):
        h.video(seq, seq * VIDEO_FRAME, keyframe=seq == 10)
    h.producer.tick(h.clock.now())
    h.receive(make_rtx(1, 12 * VIDEO_FRAME, PUB_RTX_SSRC, PUB_RTX_PT, 12, b"\x00abc"))
    h.upstream.clear()

    h.clock.advance(0.06)
    h.producer.tick(h.clock.now())

    (nack,) = rtcp_of(h.upstream.sent, rtcp.GenericNack)
    assert nack.lost == (13,)


def test_wraparound_gap_is_nacked_with_the_right_numbers() -> None:
    h = Harness(MediaKind.VIDEO)
    h.add_viewer()
    h.video(65534, 0, keyframe=True)
    h.video(1, VIDEO_FRAME)

    h.producer.tick(h.clock.now())

    (nack,) = rtcp_of(h.upstream.sent, rtcp.GenericNack)
    assert sorted(nack.lost) == [0, 65535]


def test_receiver_report_and_remb_go_upstream_once_a_second() -> None:
    options = MediaOptions(publisher_max_bitrate=2_500_000, native_fastpath=False)
    h = Harness(MediaKind.VIDEO, options=options)
    h.add_viewer()
    for i in range(20):
        h.video(300 + i, i * VIDEO_FRAME, keyframe=i == 0)
    h.upstream.clear()

    h.tick_for(3.5)

    reports = [
        (time, rtcp.parse_compound(data))
        for time, data in zip(h.upstream.times, h.upstream.sent, strict=True)
        if any(isinstance(p, rtcp.ReceiverReport) for p in rtcp.parse_compound(data))
    ]
    assert len(reports) in (3, 4)
    times = [t for t, _ in reports]
    assert all(1.0 <= b - a < 1.0 + 0.021 for a, b in itertools.pairwise(times))
    for _, packets in reports:
        rr = next(p for p in packets if isinstance(p, rtcp.ReceiverReport))
        remb = next(p for p in packets if isinstance(p, rtcp.Remb))
        (block,) = rr.reports
        assert block.ssrc == PUB_SSRC
        assert block.highest_sequence == 319
        assert block.packets_lost == 0
        assert remb.bitrate_bps == 2_500_000
        assert remb.ssrcs == (PUB_SSRC,)


def test_receiver_report_counts_publisher_loss() -> None:
    h = Harness(MediaKind.AUDIO)
    h.add_viewer()
    for seq in (1, 2, 3, 6, 7):
        h.audio(seq, seq * AUDIO_FRAME)

    h.producer.tick(h.clock.now())

    (rr,) = rtcp_of(h.upstream.sent, rtcp.ReceiverReport)
    (block,) = rr.reports
    assert block.packets_lost == 2
    assert block.highest_sequence == 7
    assert rtcp_of(h.upstream.sent, rtcp.Remb) == []  # audio: no bandwidth estimate


def test_no_reports_go_upstream_before_the_first_packet() -> None:
    h = Harness(MediaKind.VIDEO)
    h.tick_for(2.0)

    assert h.upstream.sent == []


# -- a slow viewer is its own problem ------------------------------------------------


@pytest.mark.parametrize("kind", [MediaKind.AUDIO, MediaKind.VIDEO])
def test_a_viewer_that_cannot_take_packets_never_affects_another(kind: MediaKind) -> None:
    h = Harness(kind)
    dead = h.add_viewer(ssrc=0xDEAD_0001, accept=False)
    alive = h.add_viewer(ssrc=0xA11F_0001, initial_sequence=9)
    for i in range(20):
        if kind == MediaKind.AUDIO:
            h.audio(100 + i, i * AUDIO_FRAME, payload=bytes([i]) * 10)
        else:
            h.video(100 + i, i * VIDEO_FRAME, keyframe=i == 0, body=bytes([i]) * 10)
        h.clock.advance(0.02)

    views = alive.packets
    assert len(views) == 20
    assert [v.sequence_number for v in views] == list(range(9, 29))
    assert alive.consumer.packets_sent == 20
    assert alive.consumer.packets_dropped == 0
    assert dead.consumer.packets_dropped == 20
    assert dead.consumer.packets_sent == 0
    assert dead.rtp.refused == 20


def test_a_viewer_that_drops_some_packets_keeps_its_numbering() -> None:
    h = Harness(MediaKind.AUDIO)
    flaky = h.add_viewer(initial_sequence=0)
    steady = h.add_viewer(initial_sequence=0)
    for i in range(10):
        flaky.rtp.accept = i % 2 == 0
        h.audio(i, i * AUDIO_FRAME)

    assert [v.sequence_number for v in flaky.packets] == [0, 2, 4, 6, 8]
    assert flaky.consumer.packets_dropped == 5
    assert [v.sequence_number for v in steady.packets] == list(range(10))


def test_a_paused_producer_forwards_nothing_until_resumed() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer(initial_sequence=0)
    h.audio(1, 960)
    h.producer.pause()
    h.audio(2, 1920)
    h.clock.advance(0.5)
    h.producer.resume()
    h.audio(3, 2880)

    assert [v.sequence_number for v in viewer.packets] == [0, 1]


def test_a_paused_audio_producer_reports_no_levels_so_a_muted_person_never_speaks() -> None:
    h = Harness(MediaKind.AUDIO)
    levels: list[int] = []
    h.producer.level_tap = lambda producer_id, level, now: levels.append(level)
    loud = ((PUB_MID_ID, PUB_MID), (PUB_AUDIO_LEVEL_ID, bytes([0x80 | 10])))

    h.audio(1, 960, extensions=loud)
    h.producer.pause()
    for seq in range(2, 50):
        h.audio(seq, seq * AUDIO_FRAME, extensions=loud)
    assert levels == [10]

    h.producer.resume()
    h.audio(50, 50 * AUDIO_FRAME, extensions=loud)
    assert levels == [10, 10]


def _budget(estimate_bps: int, media_bps: int) -> RepairBudget:
    budget = RepairBudget()
    budget.set_rates(estimate_bps, media_bps)
    return budget


def test_a_nack_flood_on_a_full_link_is_repaired_only_within_the_budget() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    _video_stream(h, 40)
    viewer.consumer.repair_budget = budget = _budget(700_000, 900_000)  # only the floor
    seqs = [p.sequence_number for p in viewer.packets]

    viewer.consumer.receive_nack(seqs)

    consumer = viewer.consumer
    largest = max(len(p) for p in viewer.rtp.sent)
    assert 0 < budget.spent_bytes <= 2400 + largest  # the bucket's two packets' worth
    assert 0 < consumer.retransmissions_sent < 40
    assert consumer.retransmissions_refused == 40 - consumer.retransmissions_sent
    assert len(viewer.rtp.sent) == 40 + consumer.retransmissions_sent


def test_without_a_budget_every_nack_is_answered() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    _video_stream(h, 40)
    viewer.consumer.receive_nack([p.sequence_number for p in viewer.packets])
    assert viewer.consumer.retransmissions_sent == 40
    assert viewer.consumer.retransmissions_refused == 0


def test_a_packet_is_resent_at_most_twice_and_not_once_it_is_too_late() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    _video_stream(h, 5)
    viewer.consumer.repair_budget = _budget(5_000_000, 1_000_000)
    first, second = (p.sequence_number for p in viewer.packets[1:3])

    for _ in range(3):
        viewer.consumer.receive_nack([first])
        h.clock.advance(0.06)
    assert viewer.consumer.retransmissions_sent == 2

    viewer.consumer.receive_nack([second])  # first asked for now
    h.clock.advance(1.0)  # a second later no frame waits for it any more
    viewer.consumer.receive_nack([second])
    assert viewer.consumer.retransmissions_sent == 3
    assert viewer.consumer.retransmissions_refused == 2


def test_a_playing_viewers_own_key_frame_requests_are_limited_to_one_per_5_s() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    _video_stream(h, 3)  # playing: not waiting for a key frame
    h.tick_for(2.0)
    h.upstream.clear()

    for _ in range(10):  # a request every 1.5 s (the stream's throttle lets each by)
        viewer.consumer.receive_key_frame_request()
        h.tick_for(1.5)
        h.video(100 + len(viewer.rtp.sent), 0, keyframe=True)  # each is answered

    # Two at once (its burst), then one per 5 s: four in 15 s, not ten.
    assert len(h.plis()) == 4
    assert viewer.consumer.key_frame_requests_held == 6


def test_a_viewer_waiting_for_a_key_frame_does_not_ask_again_upstream() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    h.tick_for(0.1)
    assert len(h.plis()) == 1  # its own, on becoming ready
    for _ in range(5):
        viewer.consumer.receive_key_frame_request()
        h.tick_for(0.1)
    assert len(h.plis()) == 1  # the retry after 1 s is the throttle's, not these
    assert viewer.consumer.key_frame_requests_held == 5


def test_a_pipes_consumer_relays_every_request_of_the_viewers_behind_it() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    viewer.consumer.relay = True
    _video_stream(h, 3)
    h.tick_for(2.0)
    h.upstream.clear()
    for _ in range(6):
        viewer.consumer.receive_key_frame_request()
        h.tick_for(1.0)
        h.video(100 + len(viewer.rtp.sent), 0, keyframe=True)
    assert len(h.plis()) == 6


@pytest.mark.parametrize("jump", [40_000, 5_000, 65_000 - 200])
def test_a_publisher_restarting_its_numbering_resyncs_its_viewers(jump: int) -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(initial_sequence=1000)
    for i in range(5):
        h.video(100 + i, i * VIDEO_FRAME, keyframe=i == 0)
        h.clock.advance(0.033)
    h.tick_for(1.5)
    h.upstream.clear()
    # The publisher starts over: a jump back (40 000 ahead is 25 536 behind), a jump
    # ahead, a jump back by 200; then its first frame is a key frame, as it is.
    base = (104 + jump) & 0xFFFF
    h.video(base, 5 * VIDEO_FRAME, keyframe=True)  # a stray until the next confirms it
    for i in range(1, 6):
        h.video((base + i) & 0xFFFF, (5 + i) * VIDEO_FRAME, keyframe=i == 1)
        h.clock.advance(0.033)

    views = viewer.packets
    assert [v.sequence_number for v in views] == list(range(1000, 1010))
    assert_continuous(views)
    assert h.producer.numbering_restarts == 1
    assert len(h.plis()) == 1  # the new epoch starts from a key frame, asked for


def test_a_single_stray_packet_does_not_restart_anything() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer(initial_sequence=1000)
    for i in range(3):
        h.audio(100 + i, i * AUDIO_FRAME)
    h.audio(30_000, 3 * AUDIO_FRAME)  # garbage, or a packet from nowhere
    for i in range(3, 6):
        h.audio(100 + i, i * AUDIO_FRAME)
    assert [v.sequence_number for v in viewer.packets] == list(range(1000, 1006))
    assert h.producer.numbering_restarts == 0
    assert h.producer.packets_discarded == 1
