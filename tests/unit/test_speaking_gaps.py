"""Speaking detection across gaps: lost packets, bursts dropped as late, a starved worker.

A fake clock and a packet factory: `Talk` feeds one Opus packet every 20 ms to a
detector (or an observer) and runs its update on a 100 ms timer, as the router does.
Missing time must read as unknown, not as silence, so gaps never flip the state by
themselves; a real pause still ends speaking within window + hold of heard audio.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import pytest

from sfu.events import ActiveSpeakerChanged, SpeakingChanged
from sfu.observers.audio_level import AudioLevelObserver
from sfu.observers.speaking import SpeakingDetector, SpeakingOptions
from sfu.producer import Producer
from sfu.types import MediaKind, ObserverId, ProducerId

PACKET = 0.02  # Opus 20 ms frames, as Chromium sends
TICK = 0.1  # the router's audio-level interval
SPEECH = 20  # -20 dBov
QUIET = 127
OPTIONS = SpeakingOptions()
END_BOUND = OPTIONS.window + OPTIONS.hold  # heard audio from the last loud packet to "off"


class Talk:
    """A packet factory on a fake clock. `observe(level, now)` takes each packet that
    reaches the detector; `update(now)` runs every TICK and returns a change or None."""

    def __init__(
        self, observe: Callable[[int, float], None], update: Callable[[float], bool | None]
    ) -> None:
        self._observe = observe
        self._update = update
        self.now = 0.0  # in whole packets (20 ms), kept exact by counting packets
        self._packets = 0
        self._next_tick = TICK
        self.changes: list[tuple[float, bool]] = []
        self.last_loud: float | None = None

    @classmethod
    def on(cls, detector: SpeakingDetector) -> Talk:
        return cls(detector.observe, detector.update)

    def _advance(self, packets: int, *, ticks: bool = True) -> None:
        self._packets += packets
        self.now = round(self._packets * PACKET, 6)
        while self._next_tick <= self.now + 1e-9:
            if ticks:
                self._tick(self._next_tick)
            self._next_tick = round(self._next_tick + TICK, 6)

    def _tick(self, at: float) -> None:
        changed = self._update(at)
        if changed is not None:
            self.changes.append((round(at, 3), changed))

    def play(self, level: int, seconds: float) -> None:
        """Packets that arrive on time."""
        for _ in range(round(seconds / PACKET)):
            self._observe(level, self.now)
            if level == SPEECH:
                self.last_loud = self.now
            self._advance(1)

    def lose(self, seconds: float) -> None:
        """Packets lost on the way: time passes, the timer runs, nothing arrives."""
        self._advance(round(seconds / PACKET))

    def stall(self, level: int, seconds: float, *, kept: float) -> None:
        """The worker does not run for `seconds`: no timer, no reads. Then the packets of
        the last `kept` seconds of the stall are read at once (those that waited no longer
        than max_ingress_delay; kept = seconds: forwarding late), the rest were dropped."""
        packets = round(seconds / PACKET)
        delivered = min(packets, round(kept / PACKET))
        self._advance(packets, ticks=False)
        for _ in range(delivered):
            self._observe(level, self.now)  # all read at the same instant
        if delivered and level == SPEECH:
            self.last_loud = self.now
        self._tick(self.now)  # the overdue timer fires after the reads

    def states(self) -> list[bool]:
        return [state for _, state in self.changes]


def test_speech_with_a_hole_of_lost_packets_is_one_on_and_one_off() -> None:
    # A pause between phrases, then the first 0.3 s of the next phrase lost: as many
    # seconds without a loud packet as an end of speech, but part of them unknown.
    talk = Talk.on(SpeakingDetector())
    talk.play(SPEECH, 1.0)
    talk.play(QUIET, 0.5)
    talk.lose(0.3)
    talk.play(SPEECH, 1.0)
    talk.play(QUIET, 2.0)
    assert talk.states() == [True, False]


def test_a_hole_longer_than_the_hold_inside_speech_is_bridged() -> None:
    talk = Talk.on(SpeakingDetector())
    talk.play(SPEECH, 1.0)
    talk.lose(0.8)
    talk.play(SPEECH, 1.0)
    talk.play(QUIET, 2.0)
    assert talk.states() == [True, False]


def test_repeated_drop_bursts_during_speech_do_not_flap() -> None:
    talk = Talk.on(SpeakingDetector())
    for _ in range(20):  # 26 s of phrases and pauses, 0.3 s lost after every pause
        talk.play(SPEECH, 0.5)
        talk.play(QUIET, 0.5)
        talk.lose(0.3)
    talk.play(QUIET, 2.0)
    assert talk.states() == [True, False]


@pytest.mark.parametrize(
    ("stall", "kept"),
    [
        (0.4, 0.25),  # max_ingress_delay 0.25: the first 0.15 s of the stall dropped
        (0.4, 0.1),
        (0.4, 0.4),  # max_ingress_delay 0: everything read late, in one burst
        (0.9, 0.25),
        (0.7, 0.0),  # everything dropped
    ],
)
def test_a_starved_worker_does_not_make_speaking_flap(stall: float, kept: float) -> None:
    talk = Talk.on(SpeakingDetector())
    for _ in range(15):
        talk.play(SPEECH, 0.4)
        talk.play(QUIET, 0.5)  # a pause between phrases, then the worker stalls
        talk.stall(QUIET, stall, kept=kept)
        talk.stall(SPEECH, 0.2, kept=0.2)  # speech resumed while the worker caught up
    talk.play(QUIET, 2.0)
    assert talk.states() == [True, False]


def test_a_pause_in_speech_ends_speaking_within_window_plus_hold() -> None:
    talk = Talk.on(SpeakingDetector())
    talk.play(SPEECH, 2.0)
    talk.play(QUIET, 2.0)
    assert talk.states() == [True, False]
    assert talk.last_loud is not None
    off_at = talk.changes[-1][0]
    assert off_at - talk.last_loud <= END_BOUND + PACKET + TICK


def test_a_pause_after_lost_packets_ends_speaking_within_the_gap_plus_window_plus_hold() -> None:
    talk = Talk.on(SpeakingDetector())
    talk.play(SPEECH, 2.0)
    talk.lose(0.3)
    talk.play(QUIET, 2.0)
    assert talk.states() == [True, False]
    assert talk.last_loud is not None
    off_at = talk.changes[-1][0]
    assert off_at - talk.last_loud <= 0.3 + END_BOUND + PACKET + TICK


def test_a_stopped_stream_ends_speaking_after_max_gap() -> None:
    talk = Talk.on(SpeakingDetector())
    talk.play(SPEECH, 2.0)
    talk.lose(3.0)
    assert talk.states() == [True, False]
    assert talk.last_loud is not None
    assert talk.changes[-1][0] - talk.last_loud <= OPTIONS.max_gap + TICK


def test_a_burst_of_loud_packets_read_at_once_is_no_attack() -> None:
    # A click delivered as one burst after a stall is still a click.
    talk = Talk.on(SpeakingDetector())
    talk.play(QUIET, 1.0)
    talk.stall(SPEECH, 0.4, kept=0.25)
    talk.play(QUIET, 2.0)
    assert talk.states() == []


# --- the observer: events posted to the room ---------------------------------------


@dataclass
class FakeProducer:
    """What the observer reads of a producer (sfu.producer.Producer)."""

    id: ProducerId
    kind: MediaKind = MediaKind.AUDIO
    audio_level_id: int | None = 1
    paused: bool = False
    level_tap: Callable[[ProducerId, int, float], None] | None = None


@dataclass
class Recorder:
    events: list[object] = field(default_factory=list)

    def __call__(self, event: object) -> None:
        self.events.append(event)

    def speaking(self) -> list[bool]:
        return [e.speaking for e in self.events if isinstance(e, SpeakingChanged)]


def _observed(producer_id: str = "mic") -> tuple[AudioLevelObserver, FakeProducer, Recorder]:
    recorder = Recorder()
    observer = AudioLevelObserver(
        observer_id=ObserverId("o"), options=OPTIONS, interval=TICK, on_event=recorder
    )
    producer = FakeProducer(id=ProducerId(producer_id))
    assert observer.add_producer(cast(Producer, producer))
    return observer, producer, recorder


def _talk_to(observer: AudioLevelObserver, producer: FakeProducer) -> Talk:
    tap = producer.level_tap
    assert tap is not None

    def update(now: float) -> bool | None:
        observer.tick(now)
        return None

    return Talk(lambda level, now: tap(producer.id, level, now), update)


def test_the_observer_posts_two_speaking_events_for_speech_through_stalls() -> None:
    observer, producer, recorder = _observed()
    talk = _talk_to(observer, producer)
    for _ in range(30):
        talk.play(SPEECH, 0.5)
        talk.stall(SPEECH, 0.5, kept=0.25)
    talk.play(QUIET, 2.0)
    assert recorder.speaking() == [True, False]
    assert observer.speaking_changes == 2
    assert [e for e in recorder.events if isinstance(e, ActiveSpeakerChanged)] == [
        ActiveSpeakerChanged(producer_id=producer.id)
    ]


def test_a_paused_producer_stops_speaking_at_the_next_tick() -> None:
    observer, producer, recorder = _observed()
    talk = _talk_to(observer, producer)
    talk.play(SPEECH, 1.0)
    assert recorder.speaking() == [True]
    producer.paused = True  # muted: the producer passes no more levels
    talk.lose(TICK)  # one tick, far less than max_gap
    assert recorder.speaking() == [True, False]
    assert observer.speaking(producer.id) is False
    producer.paused = False
    talk.play(SPEECH, 1.0)
    assert recorder.speaking() == [True, False, True]
