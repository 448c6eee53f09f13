"""Loss detection on a publisher's stream, producing generic NACKs upstream.

RFC 4585 §6.2.1 generic NACK: the SFU, as the publisher's receiver, asks for
each missing sequence number so that every viewer gets the repaired packet,
instead of each viewer NACKing it separately. The serialization into PID/BLP
pairs lives in `sfu.rtp.rtcp.GenericNack`.
"""

from __future__ import annotations

_SEQ_MASK = 0xFFFF
_SEQ_HALF = 1 << 15


class _Missing:
    __slots__ = ("detected_at", "last_nack", "retries")

    def __init__(self, detected_at: float) -> None:
        self.detected_at = detected_at
        self.last_nack: float | None = None
        self.retries = 0


class NackGenerator:
    """Tracks missing sequence numbers of one RTP stream and says when to NACK them.

    `on_packet` is called for every received packet (media or retransmission)
    and `due` on the RTCP timer. A gap before a newer seq marks the skipped
    numbers missing; a late packet filling one counts as `recovered`. Each
    missing seq is NACKed immediately, then at most once per `retry_interval`;
    after `max_retries` NACKs (plus one interval for the answer to arrive) or
    `max_age` seconds it is given up and counted in `lost`. A jump of more
    than `max_missing` either way is a stream restart once the next packet
    continues from it (one stray packet is ignored): the state resets there
    instead of NACKing thousands of packets nobody can resend in time.
    Defaults: 10 tries 50 ms apart within 1 s, at most 500 outstanding.
    """

    __slots__ = (
        "_highest",
        "_max_age",
        "_max_missing",
        "_max_retries",
        "_missing",
        "_restart_candidate",
        "_retry_interval",
        "lost",
        "recovered",
    )

    def __init__(
        self,
        max_retries: int = 10,
        retry_interval: float = 0.05,
        max_age: float = 1.0,
        max_missing: int = 500,
    ) -> None:
        if max_retries < 1:
            raise ValueError("max_retries must be at least 1")
        if retry_interval <= 0:
            raise ValueError("retry_interval must be positive")
        if max_age <= 0:
            raise ValueError("max_age must be positive")
        if not 1 <= max_missing < _SEQ_HALF:
            raise ValueError("max_missing must be in 1..32767")
        self._max_retries = max_retries
        self._retry_interval = retry_interval
        self._max_age = max_age
        self._max_missing = max_missing
        self._highest: int | None = None  # extended, see SequenceExtender
        # Extended seq -> state; insertion order is ascending seq order.
        self._missing: dict[int, _Missing] = {}
        self._restart_candidate: int | None = None
        self.lost = 0
        self.recovered = 0

    @property
    def missing(self) -> list[int]:
        """Sequence numbers currently considered missing, oldest first."""
        return [ext & _SEQ_MASK for ext in self._missing]

    def on_packet(self, seq: int, now: float) -> None:
        highest = self._highest
        if highest is None:
            self._highest = seq & _SEQ_MASK
            return
        diff = ((seq - highest + _SEQ_HALF) & _SEQ_MASK) - _SEQ_HALF
        if abs(diff) > self._max_missing and highest + diff not in self._missing:
            self._far_jump(seq & _SEQ_MASK)
            return
        self._restart_candidate = None
        if diff > 0:
            missing = self._missing
            for ext in range(highest + 1, highest + diff):
                missing[ext] = _Missing(now)
            self._highest = highest + diff
            overflow = len(missing) - self._max_missing
            if overflow > 0:  # oldest first: insertion order is ascending
                for ext in list(missing)[:overflow]:
                    del missing[ext]
                self.lost += overflow
        elif diff < 0 and self._missing.pop(highest + diff, None) is not None:
            self.recovered += 1

    def due(self, now: float) -> list[int]:
        """Missing seqs to put in a NACK now; drops (and counts) the hopeless ones."""
        out: list[int] = []
        expired: list[int] = []
        interval = self._retry_interval
        for ext, entry in self._missing.items():
            last = entry.last_nack
            if now - entry.detected_at > self._max_age:
                expired.append(ext)
            elif last is None:
                entry.last_nack = now
                entry.retries = 1
                out.append(ext & _SEQ_MASK)
            elif now - last >= interval:
                if entry.retries >= self._max_retries:
                    expired.append(ext)
                else:
                    entry.last_nack = now
                    entry.retries += 1
                    out.append(ext & _SEQ_MASK)
        for ext in expired:
            del self._missing[ext]
        self.lost += len(expired)
        return out

    def reset(self) -> None:
        """Forget the stream (counters are kept), e.g. when the producer's source changes."""
        self._highest = None
        self._restart_candidate = None
        self._missing.clear()

    def _far_jump(self, seq: int) -> None:
        candidate = self._restart_candidate
        if candidate is None or (seq - candidate) & _SEQ_MASK != 1:
            self._restart_candidate = seq
            return
        self._restart_candidate = None
        self.lost += len(self._missing)
        self._missing.clear()
        self._highest = seq
