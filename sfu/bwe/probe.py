"""Probing: finding out whether a viewer's downlink carries more than we send it.

The delay-based estimate may only grow to about 1.5 times what the viewer
acknowledges (sfu/bwe/aimd.py): a viewer whose tiles were moved down, or paused,
receives little, so its estimate could never climb back to what its link carries
now. As in Google Congestion Control (libwebrtc's ProbeController and
ProbeBitrateEstimator), the SFU therefore sends a short *cluster* at a higher
rate, filling the gap above the media with padding, and reads the viewer's
feedback for it: the rate the cluster arrived at, when it arrived whole and
without delay, is a measured lower bound of the link, and the estimate jumps
there at once instead of creeping up.

`ProbeController` decides when to probe and how high; `ProbeEvaluator` turns one
cluster's packet results into a rate. Both are deterministic: time is `now`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .results import PacketResult

CLUSTER_SECONDS = 0.1
# Probing asks for at most 1.5 times the estimate at a time (a failed probe is a queue
# the media waits behind); a link found to carry that is probed again from there. Until
# a probe first fails, the steps are 3 times (libwebrtc probes at 3x and 6x at start):
# a viewer starts from a low guess, and a short cluster that fails leaves little queue.
_MAX_STEP = 1.5
_START_STEP = 3.0
_FIRST_INTERVAL = 1.0
_MAX_INTERVAL = 8.0  # a link that keeps refusing is asked again at most this seldom
_MIN_PACKETS = 10
_MAX_LOSS = 0.1
# A cluster that arrived at this share of the rate it was sent at or more found room:
# the result is the lower of the two rates. One that arrived slower found the link full:
# the rate it arrived at is what the link carries, and the result a little under it
# (as libwebrtc's ProbeBitrateEstimator does).
_MIN_DELIVERY = 0.9
_SATURATED_SHARE = 0.95
_FEEDBACK_WAIT = 1.5  # after a cluster ends, seconds its feedback may take


@dataclass(frozen=True, slots=True)
class Cluster:
    """Send at `target_bps` in all (media plus padding) from `start` to `end`."""

    start: float
    end: float
    target_bps: int


class ProbeController:
    """When a viewer wants more than its estimate gives, a cluster now and then.

    `wanted_bps` is what the viewer's tiles would take at the quality they need;
    a probe goes out when the estimate is below it, aims at it (at most 3 times the
    estimate until a probe fails, 1.5 times after), and the next waits 1 s after a
    success, doubling up to 8 s while probes fail (or find the link full)."""

    __slots__ = ("_interval", "_next_at", "_step", "probes", "probes_succeeded")

    def __init__(self) -> None:
        self._step = _START_STEP
        self._interval = _FIRST_INTERVAL
        self._next_at = 0.0
        self.probes = 0
        self.probes_succeeded = 0

    def next_cluster(self, now: float, estimate_bps: int, wanted_bps: int) -> Cluster | None:
        if now < self._next_at or wanted_bps <= estimate_bps:
            return None
        self.probes += 1
        self._next_at = now + CLUSTER_SECONDS + _FEEDBACK_WAIT  # until its verdict
        target = min(wanted_bps, round(estimate_bps * self._step))
        return Cluster(start=now, end=now + CLUSTER_SECONDS, target_bps=target)

    def on_result(self, now: float, succeeded: bool) -> None:
        if succeeded:
            self.probes_succeeded += 1
            self._interval = _FIRST_INTERVAL
        else:
            self._step = _MAX_STEP
            self._interval = min(self._interval * 2, _MAX_INTERVAL)
        self._next_at = now + self._interval


class ProbeEvaluator:
    """The rate one cluster arrived at, from the results of the packets sent in it."""

    __slots__ = ("_cluster", "_results", "_seen_after")

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._results: dict[int, PacketResult] = {}
        self._seen_after = False

    @property
    def cluster(self) -> Cluster:
        return self._cluster

    def add(self, results: Iterable[PacketResult]) -> None:
        cluster = self._cluster
        for result in results:
            if cluster.start <= result.send_time <= cluster.end:
                self._results[result.sequence] = result  # received overrides lost
            elif result.send_time > cluster.end:
                self._seen_after = True

    @property
    def packets(self) -> tuple[int, int]:
        """(reported, received) of the cluster's packets so far."""
        results = self._results.values()
        return len(results), sum(1 for r in results if r.arrival_time is not None)

    def complete(self, now: float) -> bool:
        """Feedback reached past the cluster, or waiting longer is pointless."""
        return self._seen_after or now > self._cluster.end + _FEEDBACK_WAIT

    @property
    def saturated(self) -> bool:
        """The cluster arrived well below the rate it was sent at: it found the link
        full (and left a queue behind)."""
        rates = self._rates()
        return rates is not None and rates[1] < _MIN_DELIVERY * rates[0]

    def queue_seconds(self) -> float:
        """How much longer the cluster took to arrive than to send: the queue it left."""
        rates = self._rates()
        return 0.0 if rates is None else max(rates[3] - rates[2], 0.0)

    def rate_bps(self) -> int | None:
        """What the link carried, or None: too few packets or too much lost."""
        rates = self._rates()
        if rates is None:
            return None
        send_bps, receive_bps = rates[0], rates[1]
        if receive_bps < _MIN_DELIVERY * send_bps:
            return round(_SATURATED_SHARE * receive_bps)
        return round(min(send_bps, receive_bps))

    def _rates(self) -> tuple[float, float, float, float] | None:
        """(send bit/s, receive bit/s, send span, arrival span), or None when too few
        packets arrived or too many were lost."""
        results = sorted(self._results.values(), key=lambda r: r.send_time)
        received = sorted(
            (r.arrival_time, r.size) for r in results if r.arrival_time is not None
        )
        if len(received) < _MIN_PACKETS or 1 - len(received) / len(results) > _MAX_LOSS:
            return None
        send_span = results[-1].send_time - results[0].send_time
        arrival_span = received[-1][0] - received[0][0]
        if send_span <= 0 or arrival_span <= 0:
            return None
        # Each span covers one packet fewer than it holds: leave out the last one sent
        # and the first one received.
        send_bps = sum(r.size for r in results[:-1]) * 8 / send_span
        receive_bps = sum(size for _, size in received[1:]) * 8 / arrival_span
        return send_bps, receive_bps, send_span, arrival_span
