"""The throughput the viewer acknowledges: bytes received per time, by arrival time.

After libwebrtc's BitrateEstimator: bytes are summed over windows of arrival time
(500 ms for the first sample, 150 ms after) and each window's rate updates a
Bayesian estimate whose trust in a sample falls with its distance from the
estimate, while the estimate's own uncertainty grows a little every window.

Why not a plain sliding average: this rate anchors the delay-based control (a
decrease goes to 85 % of it, an increase may not pass 1.5 times it), so it must
not jump with every bursty window (a key frame, a feedback packet late by 20 ms),
yet follow a real change: after a capacity step the first windows are distrusted,
but each one moves the estimate further and raises its uncertainty, so a step to
a third converges within about a second, close to what a 500 ms average would
give, with far less noise in steady state.
"""

from __future__ import annotations

_INITIAL_WINDOW = 0.5
_WINDOW = 0.15
_UNCERTAINTY_SCALE = 10.0
_INITIAL_VARIANCE = 50.0  # kbit/s squared, as the constants below
_VARIANCE_GROWTH = 5.0


class AcknowledgedBitrate:
    """Feed every received packet in arrival order; `bps` is None until the first
    window has closed."""

    __slots__ = ("_estimate_kbps", "_last_arrival", "_variance", "_window_bytes", "_window_elapsed")

    def __init__(self) -> None:
        self._estimate_kbps: float | None = None
        self._variance = _INITIAL_VARIANCE
        self._window_bytes = 0
        self._window_elapsed = 0.0
        self._last_arrival: float | None = None

    @property
    def bps(self) -> float | None:
        estimate = self._estimate_kbps
        return None if estimate is None else estimate * 1000.0

    def update(self, arrival_time: float, size: int) -> None:
        window = _INITIAL_WINDOW if self._estimate_kbps is None else _WINDOW
        sample_kbps = self._close_window(arrival_time, window)
        self._window_bytes += size
        if sample_kbps is not None:
            self._learn(sample_kbps)

    def _close_window(self, arrival_time: float, window: float) -> float | None:
        """The rate of the window `arrival_time` ends, if it ends one (kbit/s)."""
        last = self._last_arrival
        if last is not None and arrival_time < last:  # the viewer's clock went back
            last = None
            self._window_bytes = 0
            self._window_elapsed = 0.0
        if last is not None:
            gap = arrival_time - last
            self._window_elapsed += gap
            if gap > window:  # nothing arrived for a whole window: its bytes are stale
                self._window_bytes = 0
                self._window_elapsed %= window
        self._last_arrival = arrival_time
        if self._window_elapsed < window:
            return None
        sample = 8.0 * self._window_bytes / window / 1000.0
        self._window_elapsed -= window
        self._window_bytes = 0
        return sample

    def _learn(self, sample_kbps: float) -> None:
        estimate = self._estimate_kbps
        if estimate is None:
            self._estimate_kbps = sample_kbps
            return
        uncertainty = _UNCERTAINTY_SCALE * abs(estimate - sample_kbps) / max(estimate, 1.0)
        sample_variance = uncertainty * uncertainty
        predicted_variance = self._variance + _VARIANCE_GROWTH
        total = sample_variance + predicted_variance
        self._estimate_kbps = (
            sample_variance * estimate + predicted_variance * sample_kbps
        ) / total
        self._variance = sample_variance * predicted_variance / total
