"""Throttling of key frame requests toward publishers.

Every viewer that joins, switches layer or loses a key frame asks for one
(RFC 4585 §6.3.1 PLI). Forwarding each request would make the publisher's
encoder emit a burst of large key frames, pushing its bitrate up and
starving everyone, so the SFU sends at most one request per media SSRC per
`min_interval` and folds everything that arrives in between into a single
deferred request. The policy follows mediasoup's KeyFrameRequestManager
("no more than one PLI or FIR per second").
"""

from __future__ import annotations


class KeyFrameRequestThrottle:
    """At most one key frame request per media SSRC per `min_interval` seconds (default 1 s).

    `request` answers whether to send a PLI now; when it says no, the request
    is remembered and `due` releases it once the interval has passed, unless
    `key_frame_received` showed that one already arrived.
    """

    __slots__ = ("_last_sent", "_min_interval", "_pending")

    def __init__(self, min_interval: float = 1.0) -> None:
        if min_interval < 0:
            raise ValueError("min_interval must not be negative")
        self._min_interval = min_interval
        self._last_sent: dict[int, float] = {}
        # Used as an ordered set: due() reports in request order.
        self._pending: dict[int, None] = {}

    @property
    def pending(self) -> list[int]:
        """SSRCs with a deferred request, in request order."""
        return list(self._pending)

    def request(self, ssrc: int, now: float) -> bool:
        """True means "send a PLI for `ssrc` now"; otherwise the request is deferred."""
        last = self._last_sent.get(ssrc)
        if last is None or now - last >= self._min_interval:
            self._last_sent[ssrc] = now
            self._pending.pop(ssrc, None)
            return True
        self._pending[ssrc] = None
        return False

    def due(self, now: float) -> list[int]:
        """Deferred SSRCs whose interval has passed; they count as sent at `now`."""
        if not self._pending:
            return []
        last_sent = self._last_sent
        interval = self._min_interval
        out = [ssrc for ssrc in self._pending if now - last_sent[ssrc] >= interval]
        for ssrc in out:
            del self._pending[ssrc]
            last_sent[ssrc] = now
        return out

    def key_frame_received(self, ssrc: int) -> None:
        """A key frame arrived for `ssrc`, so a deferred request is no longer needed."""
        self._pending.pop(ssrc, None)

    def forget(self, ssrc: int) -> None:
        """Drop all state for `ssrc` (its producer closed)."""
        self._pending.pop(ssrc, None)
        self._last_sent.pop(ssrc, None)
