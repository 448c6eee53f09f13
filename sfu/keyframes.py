"""Throttling of key frame requests toward publishers.

Every viewer that joins, switches layer or loses a key frame asks for one
(RFC 4585 §6.3.1 PLI). Forwarding each request would make the publisher's
encoder emit a burst of large key frames, pushing its bitrate up and
starving everyone, so the SFU sends at most one request per media SSRC per
`min_interval` and folds everything that arrives in between into a single
deferred request. The policy follows mediasoup's KeyFrameRequestManager
("no more than one PLI or FIR per second").

A request can be lost (RTCP is unreliable) or ignored, and a viewer waiting for
a key frame stays black until one comes: a request that no key frame answers
is sent again after 1 s, then 2, 4 and 8 s apart, for up to 30 s (by then the
stream has most likely stopped; the next request starts over).
"""

from __future__ import annotations

from collections.abc import Callable

_RETRY_FIRST = 1.0
_RETRY_MAX = 8.0
_GIVE_UP = 30.0


class KeyFrameRequestThrottle:
    """At most one key frame request per media SSRC per `min_interval` seconds (default 1 s).

    `request` answers whether to send a PLI now; when it says no, the request
    is remembered and `due` releases it once the interval has passed, unless
    `key_frame_received` showed that one already arrived.
    """

    __slots__ = ("_last_sent", "_min_interval", "_pending", "_unanswered")

    def __init__(self, min_interval: float = 1.0) -> None:
        if min_interval < 0:
            raise ValueError("min_interval must not be negative")
        self._min_interval = min_interval
        self._last_sent: dict[int, float] = {}
        # Used as an ordered set: due() reports in request order.
        self._pending: dict[int, None] = {}
        # SSRC -> (retry at, current backoff, first sent) for requests no key frame answered.
        self._unanswered: dict[int, tuple[float, float, float]] = {}

    @property
    def pending(self) -> list[int]:
        """SSRCs with a deferred request, in request order."""
        return list(self._pending)

    def request(self, ssrc: int, now: float) -> bool:
        """True means "send a PLI for `ssrc` now"; otherwise the request is deferred."""
        last = self._last_sent.get(ssrc)
        if last is None or now - last >= self._min_interval:
            self._sent(ssrc, now)
            self._pending.pop(ssrc, None)
            return True
        self._pending[ssrc] = None
        return False

    def due(self, now: float, wanted: Callable[[int], bool] = lambda ssrc: True) -> list[int]:
        """Deferred SSRCs whose interval has passed, and unanswered ones whose retry time
        came if a key frame is still `wanted` for them; they count as sent at `now`."""
        if not self._pending and not self._unanswered:
            return []
        last_sent = self._last_sent
        interval = self._min_interval
        out = [ssrc for ssrc in self._pending if now - last_sent[ssrc] >= interval]
        for ssrc in out:
            del self._pending[ssrc]
        for ssrc, (retry_at, _, first) in list(self._unanswered.items()):
            if now < retry_at or ssrc in out:
                continue
            if now - first > _GIVE_UP or not wanted(ssrc):
                del self._unanswered[ssrc]
            else:
                out.append(ssrc)
        for ssrc in out:
            self._sent(ssrc, now)
        return out

    def _sent(self, ssrc: int, now: float) -> None:
        self._last_sent[ssrc] = now
        previous = self._unanswered.get(ssrc)
        if previous is None:
            self._unanswered[ssrc] = (now + _RETRY_FIRST, _RETRY_FIRST, now)
        else:
            backoff = min(previous[1] * 2, _RETRY_MAX)
            self._unanswered[ssrc] = (now + backoff, backoff, previous[2])

    def key_frame_received(self, ssrc: int) -> None:
        """A key frame arrived for `ssrc`: deferred and unanswered requests are settled."""
        self._pending.pop(ssrc, None)
        self._unanswered.pop(ssrc, None)

    def forget(self, ssrc: int) -> None:
        """Drop all state for `ssrc` (its producer closed)."""
        self._pending.pop(ssrc, None)
        self._last_sent.pop(ssrc, None)
        self._unanswered.pop(ssrc, None)
