"""Control-plane counters in plain numbers, read by `signaling.metrics` at scrape time.

Sessions count what they receive, send and refuse here; the registry owns one
`SignalingStats` for the process. Nothing here depends on Prometheus.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

# Seconds; a join creates a WebRTC transport (UDP sockets, ICE credentials) in the room.
JOIN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Buckets:
    """A histogram with fixed upper bounds, Prometheus style (`le`, cumulative on read)."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)):
            raise ValueError("bounds must be strictly increasing")
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, observations <= le) pairs ending with +Inf, as exposition wants them."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


@dataclass(slots=True)
class SignalingStats:
    messages_received: Counter[str] = field(default_factory=Counter)  # by message type
    messages_sent: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # by wire error code
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)  # (command, reason)
    coalesced: Counter[str] = field(default_factory=Counter)  # by type: replaced before sent
    inbox_shed: Counter[str] = field(default_factory=Counter)  # "command" / "event"
    link_overflows: int = 0  # links to other workers closed because their outbox filled
    joins: dict[str, Buckets] = field(default_factory=dict)  # "join" / "resume" -> seconds

    def joined(self, kind: str, seconds: float) -> None:
        buckets = self.joins.get(kind)
        if buckets is None:
            buckets = self.joins[kind] = Buckets(JOIN_BUCKETS)
        buckets.observe(seconds)
