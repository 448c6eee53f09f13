"""The delay-based rate: additive increase, multiplicative decrease (AIMD).

draft-ietf-rmcat-gcc-02 §5.5, as libwebrtc's AimdRateControl does it. The
detector's signal drives a three-state machine: overuse -> decrease, then hold;
underuse -> hold (let the queue drain at the current rate); normal -> increase.

Increase is multiplicative, 8 % per second, while the link capacity is unknown,
and additive, about one packet per response time (RTT + 100 ms), once a decrease
has measured it: near the capacity, probing gently keeps the queue short. The
capacity estimate is an average of the acknowledged rates seen at overuse; it is
dropped when the throughput leaves it by 3 deviations, so a link that got faster
is found again at the multiplicative pace.

A decrease goes to 85 % of the acknowledged throughput (what the path carried, a
little below so the queue drains), never up. While increasing, the rate stays at
most 1.5 times the acknowledged throughput + 10 kbit/s: a sender that does not use
its estimate learns nothing about the path and must not keep raising it.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import assert_never

from sfu.bwe.trendline import BandwidthUsage

_BETA = 0.85
_INCREASE_PER_SECOND = 1.08
_MIN_MULTIPLICATIVE_STEP = 1000.0
_INCREASE_LIMIT_FACTOR = 1.5
_INCREASE_LIMIT_SLACK = 10_000.0
_DEFAULT_RTT = 0.2
# Additive increase: one packet per frame interval's worth at 30 fps, per response
# time; the detector needs about 100 ms on top of the RTT to see the effect.
_FRAME_INTERVAL = 1 / 30
_PACKET_BYTES = 1200
_DETECTOR_DELAY = 0.1
_MIN_ADDITIVE_PER_SECOND = 4000.0
# After a decrease, a further one waits for the RTT (10..200 ms) to show its effect,
# unless the throughput fell below half the rate.
_MIN_REDUCE_INTERVAL, _MAX_REDUCE_INTERVAL = 0.01, 0.2
# Before any throughput is known, overuse halves the rate every 200 ms.
_BLIND_REDUCE_INTERVAL = 0.2


class RateControlState(StrEnum):
    HOLD = "hold"
    INCREASE = "increase"
    DECREASE = "decrease"


class _LinkCapacity:
    """Running average of the throughput at overuse (kbit/s) and its normalized
    variance, as libwebrtc's LinkCapacityEstimator."""

    __slots__ = ("deviation", "estimate_kbps")

    def __init__(self) -> None:
        self.estimate_kbps: float | None = None
        self.deviation = 0.4

    def _spread_kbps(self, estimate: float) -> float:
        return 3.0 * math.sqrt(self.deviation * estimate)

    def upper_bps(self) -> float:
        estimate = self.estimate_kbps
        return math.inf if estimate is None else (estimate + self._spread_kbps(estimate)) * 1000

    def lower_bps(self) -> float:
        estimate = self.estimate_kbps
        if estimate is None:
            return 0.0
        return max(0.0, estimate - self._spread_kbps(estimate)) * 1000

    def on_overuse(self, throughput_bps: float) -> None:
        sample = throughput_bps / 1000
        alpha = 0.05
        estimate = (
            sample
            if self.estimate_kbps is None
            else ((1 - alpha) * self.estimate_kbps + alpha * sample)
        )
        self.estimate_kbps = estimate
        error = estimate - sample
        deviation = (1 - alpha) * self.deviation + alpha * error * error / max(estimate, 1.0)
        # 0.4 is about 14 kbit/s of spread at 500 kbit/s, 2.5 about 35 kbit/s.
        self.deviation = min(max(deviation, 0.4), 2.5)


class AimdRateControl:
    """The delay-based rate, in bits per second, updated once per feedback."""

    __slots__ = (
        "_bps",
        "_capacity",
        "_last_blind_decrease",
        "_last_change",
        "_last_throughput",
        "_max_bps",
        "_min_bps",
        "_rtt",
        "_state",
    )

    def __init__(self, *, initial_bps: float, min_bps: float, max_bps: float) -> None:
        self._bps = initial_bps
        self._min_bps = min_bps
        self._max_bps = max_bps
        self._state = RateControlState.HOLD
        self._capacity = _LinkCapacity()
        self._last_change: float | None = None
        self._last_blind_decrease: float | None = None
        self._last_throughput = initial_bps
        self._rtt = _DEFAULT_RTT

    @property
    def bps(self) -> float:
        return self._bps

    @property
    def state(self) -> RateControlState:
        return self._state

    @property
    def link_capacity_bps(self) -> float | None:
        """The capacity estimate from past decreases, None while unknown."""
        estimate = self._capacity.estimate_kbps
        return None if estimate is None else estimate * 1000

    def set_round_trip_time(self, rtt: float) -> None:
        self._rtt = rtt

    def raise_to(self, bps: float) -> None:
        """A probe measured the link carrying `bps`: start from there."""
        if bps > self._bps:
            self._set(bps)
            if bps > self._capacity.upper_bps():
                self._capacity.estimate_kbps = None  # the link is not what it was

    def update(self, usage: BandwidthUsage, acknowledged_bps: float | None, now: float) -> float:
        """Apply one feedback's detector state; returns the new rate."""
        if usage is BandwidthUsage.OVERUSING and not self._may_reduce(acknowledged_bps, now):
            return self._bps
        if usage is BandwidthUsage.OVERUSING and acknowledged_bps is None:
            self._set(self._bps / 2)
            self._last_change = self._last_blind_decrease = now
            return self._bps
        throughput = self._last_throughput if acknowledged_bps is None else acknowledged_bps
        self._last_throughput = throughput
        self._change_state(usage, now)
        match self._state:
            case RateControlState.HOLD:
                pass
            case RateControlState.INCREASE:
                self._increase(throughput, now)
            case RateControlState.DECREASE:
                self._decrease(throughput, now)
            case _:
                assert_never(self._state)
        return self._bps

    def _may_reduce(self, acknowledged_bps: float | None, now: float) -> bool:
        if acknowledged_bps is None:
            last_blind = self._last_blind_decrease
            return last_blind is None or now - last_blind >= _BLIND_REDUCE_INTERVAL
        last = self._last_change
        interval = min(max(self._rtt, _MIN_REDUCE_INTERVAL), _MAX_REDUCE_INTERVAL)
        if last is None or now - last >= interval:
            return True
        return acknowledged_bps < 0.5 * self._bps

    def _change_state(self, usage: BandwidthUsage, now: float) -> None:
        match usage:
            case BandwidthUsage.NORMAL:
                if self._state is RateControlState.HOLD:
                    self._state = RateControlState.INCREASE
                    self._last_change = now
            case BandwidthUsage.OVERUSING:
                self._state = RateControlState.DECREASE
            case BandwidthUsage.UNDERUSING:
                self._state = RateControlState.HOLD
            case _:
                assert_never(usage)

    def _increase(self, throughput: float, now: float) -> None:
        capacity = self._capacity
        if throughput > capacity.upper_bps():
            capacity.estimate_kbps = None
        limit = _INCREASE_LIMIT_FACTOR * throughput + _INCREASE_LIMIT_SLACK
        elapsed = 0.0 if self._last_change is None else max(now - self._last_change, 0.0)
        if self._bps < limit:
            if capacity.estimate_kbps is None:
                step = max(
                    self._bps * (_INCREASE_PER_SECOND ** min(elapsed, 1.0) - 1),
                    _MIN_MULTIPLICATIVE_STEP,
                )
            else:
                step = self._additive_per_second() * elapsed
            self._set(min(self._bps + step, limit))
        self._last_change = now

    def _additive_per_second(self) -> float:
        """About one packet per response time, at the packet size a 30 fps stream at
        this rate would use."""
        frame_bytes = self._bps * _FRAME_INTERVAL / 8
        packets_per_frame = max(math.ceil(frame_bytes / _PACKET_BYTES), 1)
        packet_bits = 8 * frame_bytes / packets_per_frame
        return max(packet_bits / (self._rtt + _DETECTOR_DELAY), _MIN_ADDITIVE_PER_SECOND)

    def _decrease(self, throughput: float, now: float) -> None:
        capacity = self._capacity
        target = _BETA * throughput
        if target > self._bps and capacity.estimate_kbps is not None:
            target = _BETA * capacity.estimate_kbps * 1000
        if target < self._bps:
            self._set(target)
        if throughput < capacity.lower_bps():
            capacity.estimate_kbps = None  # far below what it was: measure it afresh
        capacity.on_overuse(throughput)
        self._state = RateControlState.HOLD  # until the queue has drained
        self._last_change = now

    def _set(self, bps: float) -> None:
        self._bps = min(max(bps, self._min_bps), self._max_bps)
