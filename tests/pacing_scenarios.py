"""Pacing scenarios for the native egress (sfu/_fastpath_pacer.h), shared by the unit
tests (normal build) and the AddressSanitizer run (tests/contract/test_native_sanitized.py).
Capture-mode egresses with plain RTP and transport-wide numbers, driven with explicit
times: what leaves when, in which order, and what the send log says about it."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from sfu import fastpath
from sfu.padding import PaddingStream
from tests.packets import make_rtp

TRANSPORT_CC_ID = 5
VIDEO_SSRC = 0x1000
AUDIO_SSRC = 0x2000
VIDEO_PT, AUDIO_PT = 96, 111
PAYLOAD = 1000  # bytes per video packet


PLAIN = {"profile": "NONE", "key": b"", "salt": b"", "auth_key": b""}
# SRTP leaves the header (and so the transport-wide number) readable; it keeps a packet
# index per SSRC, which forgetting must not bring back.
SRTP = {"profile": "SRTP_AES128_CM_SHA1_80", "key": bytes(16), "salt": bytes(14),
        "auth_key": bytes(20)}  # fmt: skip


def _egress(keys: dict[str, Any]) -> Any:
    return fastpath.native_egress(
        **keys, fd=-1, address=("", 0), transport_cc_id=TRANSPORT_CC_ID
    )


class _Stage:
    """One egress with a video and an audio slot (the audio one urgent)."""

    def __init__(self, pacing_bps: float, keys: dict[str, Any] = PLAIN) -> None:
        self.egress = _egress(keys)
        self.egress.set_pacing(pacing_bps)
        self.video = fastpath.NativeFanOut(history=64, max_age=5.0)
        self.audio = fastpath.NativeFanOut(history=0, max_age=5.0)
        for fan, ssrc, pt, rate, urgent in (
            (self.video, VIDEO_SSRC, VIDEO_PT, 90000, False),
            (self.audio, AUDIO_SSRC, AUDIO_PT, 48000, True),
        ):
            spec = fastpath.FanOutSlotSpec(
                ssrc=ssrc, payload_type=pt, mid_element=b"", clock_rate=rate,
                initial_sequence=0, initial_timestamp=0, urgent=urgent,
            )  # fmt: skip
            fan.add_slot(spec, self.egress).activate(wait_for_key_frame=False)
        self._video_seq = 0
        self._audio_seq = 0

    def video_burst(self, count: int, now: float) -> None:
        for _ in range(count):
            seq = self._video_seq
            self._video_seq += 1
            packet = make_rtp(seq, 3000, 1, pt=VIDEO_PT, payload=bytes(PAYLOAD))
            self.video.native.forward(packet, 12, b"", False, now)

    def audio_packet(self, now: float) -> None:
        seq = self._audio_seq
        self._audio_seq += 1
        packet = make_rtp(seq, seq * 960, 2, pt=AUDIO_PT, payload=bytes(100))
        self.audio.native.forward(packet, 12, b"", False, now)

    def flush(self, now: float) -> list[bytes]:
        self.egress.flush(now)
        return list(self.egress.take_captured())


@dataclass(frozen=True)
class Departure:
    at: float
    ssrc: int
    sequence: int  # RTP
    transport_sequence: int
    size: int


def _departures(packets: list[bytes], at: float) -> list[Departure]:
    found = []
    for packet in packets:
        (sequence,) = struct.unpack_from("!H", packet, 2)
        (ssrc,) = struct.unpack_from("!I", packet, 8)
        # The header extension's first element is the transport-wide number (no MID here).
        assert packet[16] == TRANSPORT_CC_ID << 4 | 1
        (transport,) = struct.unpack_from("!H", packet, 17)
        found.append(Departure(at, ssrc, sequence, transport, len(packet)))
    return found


def burst_at_a_rate(pacing_bps: float, count: int, *, step: float = 0.001) -> list[Departure]:
    """`count` video packets forwarded at once at t=0, flushed every `step` until sent."""
    stage = _Stage(pacing_bps)
    stage.video_burst(count, 0.0)
    departures: list[Departure] = []
    now = 0.0
    while len(departures) < count and now < 10.0:
        departures += _departures(stage.flush(now), now)
        now = round(now + step, 6)
    return departures


def audio_behind_a_burst() -> tuple[list[Departure], list[tuple[float, int] | None]]:
    """A video burst waits; an audio packet built after it leaves first. Returns every
    departure and the egress's send log for the numbers used."""
    stage = _Stage(800_000)
    stage.video_burst(20, 0.0)
    departures = _departures(stage.flush(0.0), 0.0)
    stage.audio_packet(0.002)
    departures += _departures(stage.flush(0.002), 0.002)
    now = 0.002
    while len(departures) < 21 and now < 5.0:
        now = round(now + 0.005, 6)
        departures += _departures(stage.flush(now), now)
    return departures, stage.egress.sent_packets(0, len(departures))


def padding_behind_a_burst() -> tuple[int, int]:
    """A slow pacer holds a video burst; probe padding goes past it. Returns (padding
    packets sent at once, video packets sent at once)."""
    stage = _Stage(8_000)
    stage.video_burst(10, 0.0)
    stream = PaddingStream(
        ssrc=0x3000, payload_type=97, mid_element=b"", transport_cc_id=TRANSPORT_CC_ID
    )
    for _ in range(5):
        packet, at = stream.packet(0)
        stage.egress.send_stamped(bytes(packet), at, 0.0)
    sent = _departures(stage.flush(0.0), 0.0)
    return sum(d.ssrc == 0x3000 for d in sent), sum(d.ssrc == VIDEO_SSRC for d in sent)


def overdue_after_the_longest_wait() -> tuple[int, int, tuple[int, int, int]]:
    """Ten packets at 8 kbit/s (ten seconds' worth): (sent by 0.9 s, sent by 1.1 s, the
    pacer's (waiting, bytes, overdue) then)."""
    stage = _Stage(8_000)
    stage.video_burst(10, 0.0)
    early = len(stage.flush(0.0)) + len(stage.flush(0.9))
    late = early + len(stage.flush(1.1))
    return early, late, stage.egress.paced()


def pacing_switched_off() -> tuple[int, int]:
    """(sent while paced slowly, sent by the first flush after pacing is switched off)."""
    stage = _Stage(8_000)
    stage.video_burst(10, 0.0)
    paced = len(stage.flush(0.0))
    stage.egress.set_pacing(0)
    return paced, paced + len(stage.flush(0.01))


def closed_while_holding() -> tuple[int, tuple[int, int, int], tuple[int, int, int]]:
    """Close an egress whose pacer holds packets: (sent after the close, stats, paced)."""
    stage = _Stage(8_000)
    stage.video_burst(10, 0.0)
    stage.flush(0.0)
    stage.egress.close()
    stage.video_burst(3, 0.1)
    sent = len(stage.flush(1.2))
    return sent, stage.egress.stats(), stage.egress.paced()


def forgotten_while_waiting() -> tuple[int, int, int]:
    """A paced stream's SSRC is forgotten while its copies wait: (sent after, SSRCs
    tracked after, the pacer's waiting packets after)."""
    stage = _Stage(8_000, SRTP)
    stage.audio_packet(0.0)
    stage.video_burst(10, 0.0)
    stage.flush(0.0)
    stage.egress.forget(VIDEO_SSRC)
    sent = len(stage.flush(1.2))
    return sent, int(stage.egress.tracked()), stage.egress.paced()[0]


def more_than_the_queue_holds(count: int = 1100) -> tuple[int, tuple[int, int, int]]:
    """`count` packets at once into a slow pacer: (sent at once, the pacer then)."""
    stage = _Stage(8_000)
    for _ in range(count // 100):
        stage.video_burst(100, 0.0)
    stage.video_burst(count % 100, 0.0)
    return len(stage.flush(0.0)), stage.egress.paced()


def run_all() -> None:
    """Every scenario, for the sanitized build (asserts what the unit tests assert)."""
    departures = burst_at_a_rate(400_000, 20)
    assert [d.sequence for d in departures] == list(range(20))
    order, log = audio_behind_a_burst()
    assert order[1].ssrc == AUDIO_SSRC or order[0].ssrc == AUDIO_SSRC, order[:3]
    assert all(entry is not None for entry in log)
    assert padding_behind_a_burst() == (5, 0)
    assert overdue_after_the_longest_wait()[1] == 10
    assert pacing_switched_off()[1] == 10
    assert closed_while_holding()[0] == 0
    assert forgotten_while_waiting()[:2] == (0, 1)
    sent, paced = more_than_the_queue_holds()
    assert paced[0] == 1024 and sent >= 1100 - 1024, (sent, paced)
