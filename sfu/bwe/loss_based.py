"""The loss-based rate: what the loss the viewer reports allows.

draft-ietf-rmcat-gcc-02 §6 and libwebrtc's SendSideBandwidthEstimation. Loss is
measured per report window: about a second of feedback, stretched until it holds
at least 20 packets (a fraction of a handful of packets is noise). A packet
reported lost and later reported received within the window (it came late)
counts as received. On the last window's fraction:

- under 2 %: the rate may grow 8 % per second (from the lowest rate of the last
  second, so a report after a quiet spell does not jump);
- 2 to 10 %: it holds;
- over 10 %: it is cut to rate * (1 - loss / 2), once per window and at most once
  per 300 ms + RTT.

It never exceeds its cap, the delay-based rate, so the result is the lower of the
two controls: this one only holds or cuts what the delay-based control allows.
Before the first window closes nothing speaks against growing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from sfu.bwe.results import PacketResult

_WINDOW = 1.0  # s: the report window, and the increase's look-back
_MIN_PACKETS = 20
_LOW_LOSS = 0.02
_HIGH_LOSS = 0.10
_INCREASE_PER_SECOND = 1.08
_INCREASE_SLACK = 1000.0  # bit/s, so a rate near zero still moves
_DECREASE_INTERVAL = 0.3
_DEFAULT_RTT = 0.2


class LossBasedControl:
    """Fed each feedback's results with `add`, then asked for the rate with `update`."""

    __slots__ = (
        "_acted",
        "_bps",
        "_fraction",
        "_history",
        "_last_decrease",
        "_lost",
        "_max_bps",
        "_min_bps",
        "_reported",
        "_rtt",
        "_window_start",
    )

    def __init__(self, *, initial_bps: float, min_bps: float, max_bps: float) -> None:
        self._bps = initial_bps
        self._min_bps = min_bps
        self._max_bps = max_bps
        self._rtt = _DEFAULT_RTT
        # The open window: when it started, packets reported, which of them lost.
        self._window_start: float | None = None
        self._reported = 0
        self._lost: set[int] = set()
        # The last closed window's loss, and whether a cut has answered it.
        self._fraction = 0.0
        self._acted = False
        # The rate at each update of the last second, as a monotonic minimum queue.
        self._history: deque[tuple[float, float]] = deque()
        self._last_decrease: float | None = None

    @property
    def bps(self) -> float:
        return self._bps

    @property
    def loss_fraction(self) -> float:
        """Lost / reported in the last closed window (0.0 before the first)."""
        return self._fraction

    def set_round_trip_time(self, rtt: float) -> None:
        self._rtt = rtt

    def raise_to(self, bps: float) -> None:
        """A probe measured the link carrying `bps`: increases continue from there."""
        if bps > self._bps:
            self._bps = min(bps, self._max_bps)
            self._history.clear()

    def add(self, results: Iterable[PacketResult], now: float) -> None:
        if self._window_start is None:
            self._window_start = now
        lost = self._lost
        for result in results:
            if result.arrival_time is None:
                lost.add(result.sequence)
                self._reported += 1
            elif result.sequence in lost:
                lost.discard(result.sequence)
            else:
                self._reported += 1
        if now - self._window_start >= _WINDOW and self._reported >= _MIN_PACKETS:
            self._fraction = len(lost) / self._reported
            self._acted = False
            self._window_start = now
            self._reported = 0
            lost.clear()

    def update(self, now: float, cap_bps: float) -> float:
        """The rate after this feedback, at most `cap_bps`."""
        self._remember_rate(now)
        loss = self._fraction
        if loss < _LOW_LOSS:
            lowest_recent = self._history[0][1]
            self._bps = lowest_recent * _INCREASE_PER_SECOND + _INCREASE_SLACK
        elif loss > _HIGH_LOSS and not self._acted and self._may_decrease(now):
            self._bps *= 1 - loss / 2
            self._acted = True
            self._last_decrease = now
        self._bps = min(max(min(self._bps, cap_bps), self._min_bps), self._max_bps)
        return self._bps

    def _may_decrease(self, now: float) -> bool:
        last = self._last_decrease
        return last is None or now - last >= _DECREASE_INTERVAL + self._rtt

    def _remember_rate(self, now: float) -> None:
        history = self._history
        while history and now - history[0][0] >= _WINDOW:
            history.popleft()
        while history and history[-1][1] >= self._bps:
            history.pop()
        history.append((now, self._bps))
