"""Audio-level observer: RFC 6464 levels -> per-producer speaking state and
the active speaker, posted upward as typed events. Nothing is decoded.

Levels arrive on the hot path (`observe`, a dict lookup and a few
arithmetic steps); changes are reported on the router's tick (`tick`), every
`interval` seconds. A gap in a producer's packets is not silence (see
SpeakingDetector); a paused producer is, and stops speaking at the next tick.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from ..events import ActiveSpeakerChanged, EventSink, SpeakingChanged
from ..types import MediaKind, ObserverId, ProducerId
from .opus_levels import OpusLevelMeter
from .speaking import ActiveSpeakerSelector, SpeakingDetector, SpeakingOptions

if TYPE_CHECKING:
    from ..producer import Producer


class AudioLevelObserver:
    def __init__(
        self,
        *,
        observer_id: ObserverId,
        options: SpeakingOptions,
        interval: float,
        on_event: EventSink,
        fallback_executor: Executor | None = None,
        on_close: Callable[[AudioLevelObserver], None] | None = None,
    ) -> None:
        self.id = observer_id
        self.closed = False
        self.paused = False
        self._options = options
        self._interval = interval
        self._on_event = on_event
        self._on_close = on_close
        self._fallback_executor = fallback_executor
        self._meters: dict[ProducerId, OpusLevelMeter] = {}
        self._detectors: dict[ProducerId, SpeakingDetector] = {}
        self._speaking: dict[ProducerId, bool] = {}
        self._paused: dict[ProducerId, Callable[[], bool]] = {}
        self._selector: ActiveSpeakerSelector[ProducerId] = ActiveSpeakerSelector()
        self._active: ProducerId | None = None
        self._next_tick = 0.0
        self.speaking_changes = 0

    @property
    def producer_ids(self) -> list[ProducerId]:
        return list(self._detectors)

    def speaking(self, producer_id: ProducerId) -> bool:
        return self._speaking.get(producer_id, False)

    def add_producer(self, producer: Producer) -> bool:
        """Watch an audio producer; False when it has no levels to watch.

        Levels come from the RFC 6464 extension when the publisher sends it;
        otherwise, only if the decode fallback is enabled, from decoding.
        """
        if producer.kind != MediaKind.AUDIO:
            raise ValueError(f"producer {producer.id} is not audio")
        producer_id = producer.id
        if producer.audio_level_id is not None:
            producer.level_tap = self.observe
        elif self._fallback_executor is not None:
            meter = OpusLevelMeter(
                producer_id=producer_id,
                executor=self._fallback_executor,
                on_level=self.observe,
                interval=self._interval,
            )
            self._meters[producer_id] = meter
            producer.payload_tap = meter.feed
        else:
            return False
        self._detectors[producer_id] = SpeakingDetector(self._options)
        self._speaking[producer_id] = False
        self._paused[producer_id] = lambda: producer.paused
        return True

    def remove_producer(self, producer_id: ProducerId) -> None:
        self._detectors.pop(producer_id, None)
        self._paused.pop(producer_id, None)
        meter = self._meters.pop(producer_id, None)
        if meter is not None:
            meter.close()
        if self._speaking.pop(producer_id, False):
            self._on_event(
                SpeakingChanged(producer_id=producer_id, speaking=False, loudness_dbov=-127.0)
            )
        if self._active == producer_id:
            self._active = None
            self._on_event(ActiveSpeakerChanged(producer_id=None))

    def observe(self, producer_id: ProducerId, level: int, now: float) -> None:
        """One RFC 6464 level (0 loudest .. 127 silence); the hot-path entry."""
        detector = self._detectors.get(producer_id)
        if detector is not None and not self.paused:
            detector.observe(level, now)

    def tick(self, now: float) -> None:
        if self.closed or self.paused:
            return
        for meter in self._meters.values():
            meter.tick(now)
        if now < self._next_tick:
            return
        self._next_tick = now + self._interval
        loudness: dict[ProducerId, float] = {}
        for producer_id, detector in self._detectors.items():
            if self._paused[producer_id]():
                detector.silence()  # muted: known silence, not a gap
            changed = detector.update(now)
            level = detector.loudness(now)
            if changed is not None and changed != self._speaking[producer_id]:
                self._speaking[producer_id] = changed
                self.speaking_changes += 1
                self._on_event(
                    SpeakingChanged(producer_id=producer_id, speaking=changed, loudness_dbov=level)
                )
            if self._speaking[producer_id]:
                loudness[producer_id] = level
        dominant = self._selector.update(loudness, now)
        if dominant is not None and dominant != self._active:
            self._active = dominant
            self._on_event(ActiveSpeakerChanged(producer_id=dominant))

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._detectors.clear()
        self._paused.clear()
        for meter in self._meters.values():
            meter.close()
        self._meters.clear()
        if self._on_close is not None:
            self._on_close(self)
