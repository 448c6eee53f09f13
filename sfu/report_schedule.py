"""Once-per-interval work for many members, spread evenly over the interval.

Sending every viewer its sender report in the same callback stalls the event loop
for hundreds of sends (400 viewers: about 8 ms), and every media packet that arrives
meanwhile waits: a latency tail at the report rate. Instead each member has a fixed
phase in [0, 1) and is due in the tick whose window (previous tick, this tick] holds
that phase of the interval, so a tick handles only its share.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")

_GOLDEN = 0x9E3779B9  # 2^32 / golden ratio: consecutive or random ids land far apart


def phase_of(identifier: int) -> float:
    """A stable phase in [0, 1) for a 32-bit identifier such as an SSRC."""
    return ((identifier * _GOLDEN) & 0xFFFF_FFFF) / 0x1_0000_0000


class ReportSchedule(Generic[T]):
    """Which members are due in this tick; every member once per `interval`.

    `members` is expected to be an immutable sequence replaced when membership changes
    (the producer's consumer tuple): it is re-sorted by phase only then.
    """

    def __init__(self, phase: Callable[[T], float], interval: float = 1.0) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self._phase = phase
        self._interval = interval
        self._members: Sequence[T] | None = None
        self._order: list[T] = []
        self._phases: list[float] = []
        self._last: float | None = None

    def clear(self) -> None:
        """Forget the members (their owner closed: nothing here may keep them alive)."""
        self._members = None
        self._order = []
        self._phases = []

    def due(self, members: Sequence[T], now: float) -> list[T]:
        if members is not self._members:
            self._members = members
            self._order = sorted(members, key=self._phase)
            self._phases = [self._phase(member) for member in self._order]
        last, self._last = self._last, now
        if last is None or now <= last:
            return []  # the first tick starts the clock
        if now - last >= self._interval:
            return list(self._order)
        since = (last / self._interval) % 1.0
        until = (now / self._interval) % 1.0
        start = bisect_right(self._phases, since)
        end = bisect_right(self._phases, until)
        if since <= until:
            return self._order[start:end]
        return self._order[start:] + self._order[:end]  # the window wraps past phase 1
