"""Delay trend and overuse detection: is the queue on the path filling, steady or
draining?

libwebrtc's TrendlineEstimator, the delay-based detector GCC uses in place of the
Kalman filter of draft-ietf-rmcat-gcc-02 §5.3, with the adaptive threshold of
§5.4. Delays are in milliseconds here because the detector's constants are.

The filter accumulates the delay changes between groups, smooths them
exponentially and fits a least-squares line through the last 20 points against
arrival time: the slope approximates (send rate - capacity) / capacity.

The detector compares that slope, scaled by the number of samples (up to 60) and
a gain of 4, with a threshold gamma. It signals overuse only when the excess has
lasted more than 10 ms of send time over at least two groups and is not shrinking;
underuse as soon as the slope is below -gamma. Gamma follows the scaled slope,
quickly down (k_down) and slowly up (k_up), within 6..600: competing traffic and
jitter raise it so they do not read as congestion, and it sinks again when the
path calms down. A spike far above gamma does not move it (a capacity drop must
not teach the detector to ignore itself).
"""

from __future__ import annotations

from collections import deque
from enum import StrEnum

from sfu.bwe.inter_arrival import GroupDelta

_WINDOW = 20
_SMOOTHING = 0.9
_GAIN = 4.0
_MAX_SAMPLES_SCALE = 60
_MAX_SAMPLES = 1000

_INITIAL_THRESHOLD = 12.5
_K_UP = 0.0087  # per ms
_K_DOWN = 0.039  # per ms
_MIN_THRESHOLD, _MAX_THRESHOLD = 6.0, 600.0
_MAX_ADAPT_OFFSET = 15.0
_MAX_ADAPT_STEP_MS = 100.0
_OVERUSE_TIME_MS = 10.0


class BandwidthUsage(StrEnum):
    NORMAL = "normal"
    OVERUSING = "overusing"
    UNDERUSING = "underusing"


class TrendlineFilter:
    """The delay trend over the last groups; 0 until the window has filled."""

    __slots__ = ("_accumulated", "_first_arrival", "_history", "_samples", "_smoothed", "_trend")

    def __init__(self) -> None:
        self._accumulated = 0.0
        self._smoothed = 0.0
        self._first_arrival: float | None = None
        self._history: deque[tuple[float, float]] = deque(maxlen=_WINDOW)
        self._samples = 0
        self._trend = 0.0

    @property
    def trend(self) -> float:
        return self._trend

    @property
    def samples(self) -> int:
        """Group deltas seen (counted up to 1000)."""
        return self._samples

    def update(self, delta: GroupDelta) -> float:
        self._samples = min(self._samples + 1, _MAX_SAMPLES)
        if self._first_arrival is None:
            self._first_arrival = delta.arrival_time
        self._accumulated += (delta.arrival_delta - delta.send_delta) * 1000.0
        self._smoothed = _SMOOTHING * self._smoothed + (1 - _SMOOTHING) * self._accumulated
        history = self._history
        history.append(((delta.arrival_time - self._first_arrival) * 1000.0, self._smoothed))
        if len(history) == _WINDOW:
            slope = _least_squares_slope(history)
            if slope is not None:
                self._trend = slope
        return self._trend


def _least_squares_slope(points: deque[tuple[float, float]]) -> float | None:
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    numerator = denominator = 0.0
    for x, y in points:
        dx = x - mean_x
        numerator += dx * (y - mean_y)
        denominator += dx * dx
    return numerator / denominator if denominator else None


class OveruseDetector:
    """Turns the trend into `BandwidthUsage`, with the adaptive threshold."""

    __slots__ = (
        "_last_adapt",
        "_overuse_count",
        "_overuse_ms",
        "_previous_trend",
        "_threshold",
        "_usage",
    )

    def __init__(self) -> None:
        self._threshold = _INITIAL_THRESHOLD
        self._overuse_ms: float | None = None
        self._overuse_count = 0
        self._previous_trend = 0.0
        self._last_adapt: float | None = None
        self._usage = BandwidthUsage.NORMAL

    @property
    def usage(self) -> BandwidthUsage:
        return self._usage

    @property
    def threshold(self) -> float:
        return self._threshold

    def detect(self, trend: float, samples: int, send_delta: float, now: float) -> BandwidthUsage:
        """`samples` as counted by the filter, `send_delta` of the last group (s),
        `now` its arrival time (s, the viewer's clock: only its steps are used)."""
        if samples < 2:
            self._usage = BandwidthUsage.NORMAL
            return self._usage
        scaled = min(samples, _MAX_SAMPLES_SCALE) * trend * _GAIN
        if scaled > self._threshold:
            step = send_delta * 1000.0
            self._overuse_ms = step / 2 if self._overuse_ms is None else self._overuse_ms + step
            self._overuse_count += 1
            if (
                self._overuse_ms > _OVERUSE_TIME_MS
                and self._overuse_count > 1
                and trend >= self._previous_trend
            ):
                self._overuse_ms = 0.0
                self._overuse_count = 0
                self._usage = BandwidthUsage.OVERUSING
        elif scaled < -self._threshold:
            self._overuse_ms = None
            self._overuse_count = 0
            self._usage = BandwidthUsage.UNDERUSING
        else:
            self._overuse_ms = None
            self._overuse_count = 0
            self._usage = BandwidthUsage.NORMAL
        self._previous_trend = trend
        self._adapt_threshold(scaled, now)
        return self._usage

    def _adapt_threshold(self, scaled: float, now: float) -> None:
        last = self._last_adapt
        self._last_adapt = now
        magnitude = abs(scaled)
        if last is None or magnitude > self._threshold + _MAX_ADAPT_OFFSET:
            return
        k = _K_DOWN if magnitude < self._threshold else _K_UP
        elapsed_ms = min(max(now - last, 0.0) * 1000.0, _MAX_ADAPT_STEP_MS)
        threshold = self._threshold + k * (magnitude - self._threshold) * elapsed_ms
        self._threshold = min(max(threshold, _MIN_THRESHOLD), _MAX_THRESHOLD)
