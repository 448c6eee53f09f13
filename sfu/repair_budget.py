"""How much loss repair one viewer's downlink can take now.

Retransmitting every packet a viewer NACKs is right on a link that lost a packet
to noise and wrong on one that lost it to a full queue: there the copies join the
queue that dropped the originals, and repair itself keeps the link over its rate
(measured: ~200 retransmissions a second into a 700 kbit/s link, tiles frozen).
So repair gets what the estimate leaves over after the media sent, never more than
a quarter of it, from a token bucket: a short burst is repaired at once, a flood
is not. A small floor keeps single losses on a full link repairable (the
allocator is moving the viewer down meanwhile).

A copy is also refused when it would come too late to help: the viewer asks again
for a packet its first repair did not bring about one round trip later, and after
`_MAX_TRIES` copies or `usefulness()` seconds since its first NACK the frame has
long been given up (its decoder is waiting for a key frame instead).
"""

from __future__ import annotations

_SHARE_MAX = 0.25  # of the estimate, at most, for repair
_SHARE_FLOOR = 0.03  # of the estimate, at least, whatever the media took
_BURST = 0.1  # seconds of allowance the bucket holds
_BURST_MIN_BYTES = 2_400  # two full packets, so a single loss is always repairable
_MAX_TRIES = 2
_USEFUL_BASE = 0.2  # s: a jitter buffer holds frames this long beyond the round trip


def usefulness(round_trip_time: float | None) -> float:
    """Seconds after its first NACK that a retransmission can still be played."""
    rtt = round_trip_time if round_trip_time is not None else 0.1
    return _USEFUL_BASE + 1.5 * rtt


class RepairBudget:
    """Token bucket of bytes for one viewer's retransmissions; its rate follows the
    estimate and the media rate, set by the downlink at each allocation."""

    __slots__ = ("_bytes_per_second", "_capacity", "_last", "_tokens", "refused", "spent_bytes")

    max_tries = _MAX_TRIES

    def __init__(self) -> None:
        self._bytes_per_second = 0.0
        self._capacity = float(_BURST_MIN_BYTES)
        self._tokens = float(_BURST_MIN_BYTES)
        self._last: float | None = None
        self.refused = 0
        self.spent_bytes = 0

    @property
    def rate_bps(self) -> int:
        return round(self._bytes_per_second * 8)

    def set_rates(self, estimate_bps: float, media_bps: float) -> None:
        """The viewer's estimate and what its media took of it lately."""
        spare = min(max(estimate_bps - media_bps, 0.0), estimate_bps * _SHARE_MAX)
        self._bytes_per_second = max(spare, estimate_bps * _SHARE_FLOOR) / 8
        self._capacity = max(self._bytes_per_second * _BURST, _BURST_MIN_BYTES)
        self._tokens = min(self._tokens, self._capacity)

    def admit(self, now: float) -> bool:
        """Whether one more retransmission may go out now (counted as refused if not)."""
        last, self._last = self._last, now
        if last is not None and now > last:
            self._tokens = min(self._capacity, self._tokens + (now - last) * self._bytes_per_second)
        if self._tokens > 0:
            return True
        self.refused += 1
        return False

    def spend(self, size: int) -> None:
        """A retransmission of `size` bytes went out."""
        self._tokens -= size
        self.spent_bytes += size
