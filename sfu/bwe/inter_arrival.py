"""Packets grouped into send bursts, and how the delay changed from group to group.

draft-ietf-rmcat-gcc-02 §5.2 (pre-filtering), as libwebrtc's InterArrivalDelta
does it. A frame leaves as a burst and a congested link spreads it out, so
comparing single packets measures mostly the pacing; comparing groups (packets
sent within 5 ms of the group's first) measures the queue. For two consecutive
groups, the arrival delta minus the send delta is the change in one-way delay.
"""

from __future__ import annotations

from dataclasses import dataclass

_GROUP_LENGTH = 0.005
# A packet arriving within 5 ms of its group's last one, sooner than it was sent
# after it, was held in a queue with it: it joins the group whatever its send time,
# unless the group already spans 100 ms of arrivals.
_BURST_ARRIVAL_GAP = 0.005
_MAX_BURST_DURATION = 0.1
# Arrivals that moved 3 s more than our own clock did between two groups mean the
# viewer's clock jumped, not the queue.
_CLOCK_JUMP = 3.0


@dataclass(frozen=True, slots=True)
class GroupDelta:
    """One group compared with the one before it, in seconds.

    send_delta: between the groups' latest send times (our clock).
    arrival_delta: between their latest arrivals (the viewer's clock).
    arrival_time: the later group's latest arrival.
    """

    send_delta: float
    arrival_delta: float
    arrival_time: float


class _Group:
    __slots__ = ("first_arrival", "first_send", "last_arrival", "last_send", "seen_at")

    def __init__(self, send_time: float, arrival_time: float, now: float) -> None:
        self.first_send = self.last_send = send_time
        self.first_arrival = self.last_arrival = arrival_time
        self.seen_at = now


class InterArrival:
    """Feed received packets in arrival order; every completed group after the first
    yields a `GroupDelta`. `now` is when the feedback reached us (our clock)."""

    __slots__ = ("_current", "_previous")

    def __init__(self) -> None:
        self._current: _Group | None = None
        self._previous: _Group | None = None

    def reset(self) -> None:
        self._current = None
        self._previous = None

    def add(self, send_time: float, arrival_time: float, now: float) -> GroupDelta | None:
        current = self._current
        if current is None:
            self._current = _Group(send_time, arrival_time, now)
            return None
        if send_time < current.first_send:
            return None  # sent before the group in progress: too late to place
        if not self._starts_group(current, send_time, arrival_time):
            current.last_send = max(current.last_send, send_time)
            current.last_arrival = max(current.last_arrival, arrival_time)
            current.seen_at = now
            return None
        delta: GroupDelta | None = None
        previous = self._previous
        if previous is not None:
            arrival_delta = current.last_arrival - previous.last_arrival
            if arrival_delta - (current.seen_at - previous.seen_at) >= _CLOCK_JUMP:
                self.reset()
                self._current = _Group(send_time, arrival_time, now)
                return None
            if arrival_delta >= 0:  # else it completed first: reordered, no measure
                delta = GroupDelta(
                    current.last_send - previous.last_send, arrival_delta, current.last_arrival
                )
        self._previous = current
        self._current = _Group(send_time, arrival_time, now)
        return delta

    @staticmethod
    def _starts_group(current: _Group, send_time: float, arrival_time: float) -> bool:
        send_gap = send_time - current.last_send
        if send_gap == 0:
            return False
        arrival_gap = arrival_time - current.last_arrival
        in_burst = (
            arrival_gap - send_gap < 0
            and arrival_gap <= _BURST_ARRIVAL_GAP
            and arrival_time - current.first_arrival < _MAX_BURST_DURATION
        )
        return not in_burst and send_time - current.first_send > _GROUP_LENGTH
