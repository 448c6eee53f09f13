"""A viewer's downlink in virtual time, for bandwidth estimation tests.

The SFU side sends 1200-byte packets at the estimate (plus a little headroom, as
a pacer with padding would), stamped with transport-wide sequence numbers from
65000 on (so they wrap). The path drops a random share of packets, then queues
the rest in a FIFO that drains at the capacity and drops what does not fit its
buffer, then adds a base one-way delay and optional jitter (which can reorder).
The viewer reports every 50 ms as Chromium does: from the lowest packet newly
arrived (reaching back when a late one arrives) to the highest, each received
or lost, with the reference time taken from the first arrival. Feedback travels
as real FCI bytes through `build_feedback`, `parse_feedback` and a
`FeedbackResolver`, and reaches the sender one base delay later.

Everything is deterministic: time is a number, randomness a seeded generator.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sfu.bwe.estimator import BandwidthEstimator
from sfu.bwe.results import FeedbackResolver
from sfu.rtp.twcc import MAX_STATUS_COUNT, build_feedback, parse_feedback

PACKET_BYTES = 1200
_REFERENCE_UNIT = 0.064
_FIRST_SEQUENCE = 65_000


@dataclass(frozen=True, slots=True)
class Sample:
    """The estimator's state right after one feedback."""

    time: float
    estimate_bps: int
    capacity_bps: float
    delay_based_bps: int
    acknowledged_bps: int | None
    usage: str
    loss_fraction: float


@dataclass(kw_only=True, slots=True)
class Path:
    """The bottleneck. `capacity_bps` maps time to capacity (steps, usually)."""

    capacity_bps: Callable[[float], float]
    base_delay: float = 0.025
    buffer_bytes: int = 64_000
    loss: float = 0.0
    jitter: float = 0.0
    _busy_until: float = 0.0

    def carry(self, now: float, size: int, rng: random.Random) -> float | None:
        """When a packet sent at `now` arrives, or None if it is dropped."""
        if self.loss and rng.random() < self.loss:
            return None
        capacity = self.capacity_bps(now)
        backlog = max(self._busy_until - now, 0.0) * capacity / 8
        if backlog + size > self.buffer_bytes:
            return None
        self._busy_until = max(self._busy_until, now) + size * 8 / capacity
        jitter = rng.uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return self._busy_until + self.base_delay + jitter


@dataclass(slots=True)
class _Viewer:
    """Arrivals on the viewer's clock (offset from ours) and its periodic reports."""

    clock_offset: float
    pending: list[tuple[float, int]] = field(default_factory=list)
    arrived: dict[int, float] = field(default_factory=dict)
    next_unreported: int | None = None
    feedback_count: int = 0

    def packet_arrives(self, at: float, sequence: int) -> None:
        heapq.heappush(self.pending, (at, sequence))

    def report(self, now: float) -> bytes | None:
        fresh: list[int] = []
        while self.pending and self.pending[0][0] <= now:
            at, sequence = heapq.heappop(self.pending)
            self.arrived[sequence] = at + self.clock_offset
            fresh.append(sequence)
        if not fresh:
            return None
        start = min(fresh)
        end = max(fresh)
        if self.next_unreported is not None:
            start = min(start, self.next_unreported)
            end = max(end, self.next_unreported - 1)
        start = max(start, end - MAX_STATUS_COUNT + 1)
        self.next_unreported = end + 1
        arrivals = [self.arrived.get(s) for s in range(start, end + 1)]
        first = next(a for a in arrivals if a is not None)
        base = math.floor(first / _REFERENCE_UNIT)
        wrapped = (base + (1 << 23)) % (1 << 24) - (1 << 23)  # the signed 24-bit field
        shift = (base - wrapped) * _REFERENCE_UNIT
        fci = build_feedback(
            start & 0xFFFF,
            wrapped,
            [None if a is None else a - shift for a in arrivals],
            feedback_count=self.feedback_count & 0xFF,
        )
        self.feedback_count += 1
        return fci


def simulate(
    estimator: BandwidthEstimator,
    path: Path,
    *,
    duration: float,
    seed: int = 1,
    headroom: float = 0.05,
    feedback_interval: float = 0.05,
    viewer_clock_offset: float = 5000.0,
) -> list[Sample]:
    """Run the downlink for `duration` seconds; one `Sample` per feedback handled."""
    rng = random.Random(seed)
    sent: dict[int, tuple[float, int]] = {}
    resolver = FeedbackResolver(sent.get)
    viewer = _Viewer(viewer_clock_offset)
    in_flight: deque[tuple[float, bytes]] = deque()
    samples: list[Sample] = []
    sequence = _FIRST_SEQUENCE
    next_send = 0.0
    next_report = feedback_interval
    while True:
        next_delivery = in_flight[0][0] if in_flight else math.inf
        now = min(next_send, next_report, next_delivery)
        if now > duration:
            return samples
        if now == next_delivery:
            _, fci = in_flight.popleft()
            feedback = parse_feedback(fci)
            assert feedback is not None
            results = resolver.resolve(feedback)
            estimator.on_packet_results(results, now)
            sends = [r.send_time for r in results if r.received]
            if sends:
                estimator.on_round_trip_time(now - max(sends))
            samples.append(
                Sample(
                    now,
                    estimator.estimate_bps,
                    path.capacity_bps(now),
                    estimator.delay_based_bps,
                    estimator.acknowledged_bps,
                    estimator.usage.value,
                    estimator.loss_fraction,
                )
            )
        elif now == next_report:
            fci_or_none = viewer.report(now)
            if fci_or_none is not None:
                in_flight.append((now + path.base_delay, fci_or_none))
            next_report += feedback_interval
        else:
            sent[sequence & 0xFFFF] = (now, PACKET_BYTES)
            arrival = path.carry(now, PACKET_BYTES, rng)
            if arrival is not None:
                viewer.packet_arrives(arrival, sequence)
            sequence += 1
            next_send += PACKET_BYTES * 8 / (estimator.estimate_bps * (1 + headroom))


def estimate_at(samples: list[Sample], time: float) -> int:
    """The estimate as it stood at `time` (the last sample at or before it)."""
    before = [s for s in samples if s.time <= time]
    return before[-1].estimate_bps if before else samples[0].estimate_bps
