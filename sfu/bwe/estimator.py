"""One viewer's downlink estimate, from its transport-wide feedback.

Each feedback's `PacketResult`s feed the acknowledged throughput, the delay path
(inter-arrival groups -> trendline -> overuse detector -> AIMD) and the loss path;
the estimate is the loss-based rate, which the delay-based rate and the viewer's
own REMB (when it sends one) cap: the lowest of the three, within the bounds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sfu.bwe.acked_bitrate import AcknowledgedBitrate
from sfu.bwe.aimd import AimdRateControl
from sfu.bwe.inter_arrival import InterArrival
from sfu.bwe.loss_based import LossBasedControl
from sfu.bwe.results import PacketResult
from sfu.bwe.trendline import BandwidthUsage, OveruseDetector, TrendlineFilter

# After 2 s without feedback the delay path starts over: neither the groups before
# the silence nor the detector's verdict on them describe the queue now.
_STREAM_TIMEOUT = 2.0


class BandwidthEstimator:
    """Send-side estimate of what one viewer's downlink carries, in bit/s.

    Deterministic: time comes in as `now` (seconds on our clock, when the feedback
    arrived), nothing is random. Starts at `initial_bps` and stays within
    `min_bps`..`max_bps`.
    """

    __slots__ = (
        "_acked",
        "_aimd",
        "_delay_blind_until",
        "_detector",
        "_inter_arrival",
        "_last_feedback",
        "_loss",
        "_max_bps",
        "_min_bps",
        "_remb_bps",
        "_trendline",
    )

    def __init__(
        self,
        *,
        initial_bps: int = 1_000_000,
        min_bps: int = 50_000,
        max_bps: int = 20_000_000,
    ) -> None:
        if not 0 < min_bps <= initial_bps <= max_bps:
            raise ValueError("need 0 < min_bps <= initial_bps <= max_bps")
        self._min_bps = min_bps
        self._max_bps = max_bps
        self._acked = AcknowledgedBitrate()
        self._inter_arrival = InterArrival()
        self._trendline = TrendlineFilter()
        self._detector = OveruseDetector()
        self._aimd = AimdRateControl(initial_bps=initial_bps, min_bps=min_bps, max_bps=max_bps)
        self._loss = LossBasedControl(initial_bps=initial_bps, min_bps=min_bps, max_bps=max_bps)
        self._remb_bps = math.inf
        self._last_feedback: float | None = None
        self._delay_blind_until = -math.inf

    @property
    def estimate_bps(self) -> int:
        """The rate to send at: the loss-based rate under the delay-based one and REMB."""
        return round(max(min(self._loss.bps, self._remb_bps), self._min_bps))

    @property
    def delay_based_bps(self) -> int:
        return round(self._aimd.bps)

    @property
    def acknowledged_bps(self) -> int | None:
        """The throughput the viewer acknowledges, None before the first 500 ms of it."""
        bps = self._acked.bps
        return None if bps is None else round(bps)

    @property
    def usage(self) -> BandwidthUsage:
        return self._detector.usage

    @property
    def loss_fraction(self) -> float:
        """Share of packets reported lost over about the last second."""
        return self._loss.loss_fraction

    def on_round_trip_time(self, rtt: float) -> None:
        """The latest RTT (s): paces further decreases and the additive increase."""
        if not math.isfinite(rtt) or rtt < 0:
            raise ValueError("rtt must be a finite number of seconds >= 0")
        self._aimd.set_round_trip_time(rtt)
        self._loss.set_round_trip_time(rtt)

    def on_remb(self, bps: float) -> None:
        """The viewer's own estimate (REMB): a cap until the next one."""
        if not math.isfinite(bps) or bps < 0:
            raise ValueError("bps must be a finite rate >= 0")
        self._remb_bps = float(bps)

    def on_probe_result(self, bps: int) -> None:
        """A probe cluster arrived at `bps` whole and on time (sfu/bwe/probe.py): the
        link carries at least that, so the estimate moves there at once (REMB still
        caps it)."""
        if bps > self.estimate_bps:
            self._aimd.raise_to(bps)
            self._loss.raise_to(bps)

    def forgive_queue(self, sent_until: float) -> None:
        """Packets sent up to `sent_until` waited in a queue a probe built (the probe
        found the link full, and the queue drains with it): their delays say nothing
        about the media, so the delay path starts over after them."""
        self._delay_blind_until = sent_until
        self._restart_delay_path()

    def _restart_delay_path(self) -> None:
        self._inter_arrival.reset()
        self._trendline = TrendlineFilter()
        self._detector = OveruseDetector()

    def on_packet_results(self, results: Sequence[PacketResult], now: float) -> None:
        """One feedback's results (any order); `now` is when it arrived."""
        if not results:
            return
        last = self._last_feedback
        if last is not None and now - last > _STREAM_TIMEOUT:
            self._restart_delay_path()
        self._last_feedback = now
        self._loss.add(results, now)
        received = sorted(
            (r.arrival_time, r.sequence, r.send_time, r.size)
            for r in results
            if r.arrival_time is not None
        )
        acked = self._acked
        for arrival, _, _, size in received:
            acked.update(arrival, size)
        inter_arrival = self._inter_arrival
        trendline = self._trendline
        detector = self._detector
        blind_until = self._delay_blind_until
        for arrival, _, send_time, _ in received:
            if send_time <= blind_until:
                continue
            delta = inter_arrival.add(send_time, arrival, now)
            if delta is not None:
                trend = trendline.update(delta)
                detector.detect(trend, trendline.samples, delta.send_delta, delta.arrival_time)
        if received:  # all lost: nothing new about the delay
            self._aimd.update(detector.usage, acked.bps, now)
        self._loss.update(now, min(self._aimd.bps, self._remb_bps))
