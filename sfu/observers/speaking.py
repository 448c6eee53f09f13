"""Speaking detection and dominant-speaker choice from RFC 6464 audio levels.

RFC 6464 §3: each audio packet carries its level as 0..127, meaning 0 to
-127 dBov (127 is also digital silence). The V (voice activity) bit is
ignored: Chromium sets it on every packet, silence included. Nothing here
decodes audio, reads a clock or does I/O; `now` is passed in.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

SILENCE_DBOV = -127.0
# Opus packets last at most 120 ms (RFC 6716 §3.2.5); a longer gap is not
# sound the next packet describes.
_MAX_PACKET_DURATION = 0.12
_ENERGY = tuple(10.0 ** (-level / 10.0) for level in range(128))
_SILENCE_ENERGY = _ENERGY[127]

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeakingOptions:
    """Tuning of SpeakingDetector; all durations in seconds.

    threshold_dbov: loudness at or above which a participant counts as
        speaking (-50 dBov: quiet speech near a laptop microphone is -40..-30).
    hold: how much audio below the threshold must be heard before speaking
        stops; it bridges pauses between words. Together with the window it
        bridges quiet stretches shorter than hold + window (0.8 s by default),
        which is also how late a real end of speech is reported.
    attack: how much sound at or above the threshold the window must hold
        before speaking starts, so clicks and taps shorter than this never
        switch the indicator on. At most `window`.
    window: span of heard audio behind `loudness`.
    max_gap: longest stretch without any packet that is held as "unknown"
        (loss, a burst dropped as late, a starved worker) rather than read as
        silence; a stream quiet for longer has stopped (muted, DTX, gone), and
        speaking stops then (1 s: longer than the stalls a worker survives
        with `media.max_ingress_delay`, shorter than anyone would watch a
        frozen "speaking" ring).
    """

    threshold_dbov: float = -50.0
    hold: float = 0.5
    attack: float = 0.15
    window: float = 0.3
    max_gap: float = 1.0

    def __post_init__(self) -> None:
        if not SILENCE_DBOV <= self.threshold_dbov <= 0.0:
            raise ValueError("threshold_dbov must be within -127..0 dBov")
        if self.hold < 0.0:
            raise ValueError("hold must not be negative")
        if self.window <= 0.0:
            raise ValueError("window must be positive")
        if not 0.0 <= self.attack <= self.window:
            raise ValueError("attack must be within 0..window")
        if self.max_gap <= 0.0:
            raise ValueError("max_gap must be positive")


_DEFAULT_OPTIONS = SpeakingOptions()
_EPSILON = 1e-9


class SpeakingDetector:
    """Speaking or not, with hysteresis, for one audio stream.

    Evidence is audio that was heard, never time that passed: every packet
    counts for the time since the previous one, capped at 120 ms (a burst
    delivered at once after a stall counts for nothing extra, a hole counts
    for one packet). Missing time is unknown, so a gap in the stream, from
    lost packets, a burst dropped as late or a worker that did not run,
    neither starts nor ends speaking by itself: the state is held across it,
    and speaking resumes without a new attack when sound does. Only a stream
    silent for longer than `max_gap` (muted, DTX, gone) ends speaking.

    Loudness is the mean of the last `window` seconds of heard levels taken
    in the energy domain (10^(dBov/10)), then converted back to dBov. Energy
    rather than a mean of dB values because speech is bursty: a -127 dBov
    frame between syllables would drag a dB mean far below how loud the
    speaker is, while in energy it simply adds nothing.

    The same property stretches a click to a whole window, so the start
    condition also asks for `attack` seconds of packets at or above the
    threshold inside the window. Speaking stops once `hold` seconds of audio
    were heard with the loudness below the threshold: `window + hold` (0.8 s)
    after the last loud packet for a stream that keeps sending, like
    mediasoup's and LiveKit's observers, which also decide on a few hundred
    ms of levels. Chromium's fake microphone (a beep of about 0.3 s once a
    second) therefore reads as one continuous speaker.

    `observe` runs per packet; `update` runs on a timer and reports changes.
    """

    __slots__ = (
        "_attack",
        "_below_heard",
        "_energy_sum",
        "_heard",
        "_hold",
        "_last_sample",
        "_loud",
        "_loud_sum",
        "_max_gap",
        "_reported",
        "_samples",
        "_speaking",
        "_threshold_energy",
        "_window",
        "last_spoke_at",
    )

    def __init__(self, options: SpeakingOptions = _DEFAULT_OPTIONS) -> None:
        self._hold = options.hold
        self._attack = options.attack
        self._window = options.window
        self._max_gap = options.max_gap
        # A small tolerance so a steady level exactly at the threshold counts
        # as above it despite rounding in the running sum.
        self._threshold_energy = 10.0 ** (options.threshold_dbov / 10.0) * (1.0 - 1e-9)
        self._loud = tuple(-level >= options.threshold_dbov for level in range(128))
        # (energy, loud seconds, heard seconds) per packet, oldest first.
        self._samples: deque[tuple[float, float, float]] = deque()
        self._energy_sum = 0.0
        self._loud_sum = 0.0
        self._heard = 0.0  # heard seconds of every sample but the oldest
        self._last_sample: float | None = None
        self._speaking = False
        self._reported = False
        self._below_heard: float | None = None  # quiet audio heard since loudness fell
        self.last_spoke_at: float | None = None

    @property
    def speaking(self) -> bool:
        return self._speaking

    def observe(self, level: int, now: float) -> None:
        """One packet's RFC 6464 level (0 loudest .. 127 silence); out-of-range is clamped."""
        if level < 0:
            level = 0
        elif level > 127:
            level = 127
        last = self._last_sample
        if last is None or now - last >= self._max_gap:
            self._stop()  # the stream had stopped: what came before is no evidence
            duration = 0.0
        else:
            duration = min(max(now - last, 0.0), _MAX_PACKET_DURATION)
        self._last_sample = now
        loud = duration if self._loud[level] else 0.0
        energy = _ENERGY[level]
        samples = self._samples
        if samples:
            self._heard += duration
        samples.append((energy, loud, duration))
        self._energy_sum += energy
        self._loud_sum += loud
        # Keep the newest `window` seconds of heard audio.
        while self._heard >= self._window - _EPSILON and len(samples) > 1:
            old_energy, old_loud, _ = samples.popleft()
            self._energy_sum -= old_energy
            self._loud_sum -= old_loud
            self._heard -= samples[0][2]
        above = self._energy_sum >= self._threshold_energy * len(samples)
        if not self._speaking:
            if above and self._loud_sum >= self._attack - _EPSILON:
                self._speaking = True
                self._below_heard = None
                self.last_spoke_at = now
        elif above:
            self._below_heard = None
        elif self._below_heard is None:
            self._below_heard = 0.0
        else:
            self._below_heard += duration
            if self._below_heard >= self._hold - _EPSILON:
                self._speaking = False
        if self._speaking and loud:
            self.last_spoke_at = now

    def update(self, now: float) -> bool | None:
        """The new speaking state if it changed since the previous call, else None."""
        last = self._last_sample
        if last is not None and now - last >= self._max_gap:
            self._stop()
        if self._speaking == self._reported:
            return None
        self._reported = self._speaking
        return self._speaking

    def loudness(self, now: float) -> float:
        """Mean loudness of the window in dBov; SILENCE_DBOV (-127) when nothing was heard
        or the stream stopped (no packet for `max_gap`). Held across shorter gaps."""
        last = self._last_sample
        if last is None or now - last >= self._max_gap or not self._samples:
            return SILENCE_DBOV
        mean = self._energy_sum / len(self._samples)
        if mean <= _SILENCE_ENERGY:
            return SILENCE_DBOV
        return max(SILENCE_DBOV, min(0.0, 10.0 * math.log10(mean)))

    def silence(self) -> None:
        """The stream is known to be silent now (its producer was paused): stop at once."""
        self._stop()

    def _stop(self) -> None:
        self._speaking = False
        self._below_heard = None
        self._samples.clear()
        self._energy_sum = 0.0
        self._loud_sum = 0.0
        self._heard = 0.0
        self._last_sample = None


class ActiveSpeakerSelector(Generic[K]):
    """Picks the dominant speaker among keyed loudness values (dBov), without flapping.

    The loudest key wins at once when there is no dominant speaker. After
    that, another key takes over only when it is at least `switch_margin_db`
    louder than the current one and the current one has held the role for
    `min_dwell` seconds. Keys at SILENCE_DBOV never win; if everyone is
    silent the last speaker stays dominant (the tile keeps its highlight).
    A dominant key missing from the mapping is dropped (it left); read
    `dominant` to see that.
    """

    __slots__ = ("_dominant", "_margin", "_min_dwell", "_since")

    def __init__(self, switch_margin_db: float = 6.0, min_dwell: float = 1.0) -> None:
        if switch_margin_db < 0.0:
            raise ValueError("switch_margin_db must not be negative")
        if min_dwell < 0.0:
            raise ValueError("min_dwell must not be negative")
        self._margin = switch_margin_db
        self._min_dwell = min_dwell
        self._dominant: K | None = None
        self._since = 0.0

    @property
    def dominant(self) -> K | None:
        return self._dominant

    def update(self, loudness_by_key: Mapping[K, float], now: float) -> K | None:
        """The new dominant key when it changes, else None."""
        best: K | None = None
        best_level = SILENCE_DBOV
        for key, level in loudness_by_key.items():
            if level > best_level:
                best, best_level = key, level
        current = self._dominant
        if current is not None and current not in loudness_by_key:
            current = self._dominant = None
        if best is None or best == current:
            return None
        if current is not None:
            if now - self._since < self._min_dwell:
                return None
            if best_level < loudness_by_key[current] + self._margin:
                return None
        self._dominant = best
        self._since = now
        return best
