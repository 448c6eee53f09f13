"""Per-consumer cache of sent packets, answering the viewer's NACKs.

RFC 4585 §6.2.1 lets a receiver NACK any recent sequence number; RFC 4588
§3 leaves it to the sender to decide which requests are still worth a
retransmission. The discipline here follows LiveKit's sequencer: a packet
is resent at most `max_retransmits` times, never twice within
`min_interval` (a burst of duplicate NACKs costs one resend), and never
once it is older than `max_age` (the viewer's jitter buffer has given up).
"""

from __future__ import annotations

_SEQ_MASK = 0xFFFF


class RetransmissionBuffer:
    """Ring of sent packets keyed by OUTGOING sequence number.

    Slot `seq % capacity` holds the packet together with its seq, so a slot
    reused by a newer packet (or by the same seq one wrap later) is told
    apart. Parallel lists keep `store` to a few index writes per packet.
    Defaults: 1024 packets (about 1 s of 8 Mbit/s video), 2 s, 3 resends,
    50 ms between resends of one packet.
    """

    __slots__ = (
        "_capacity",
        "_counts",
        "_last_sent",
        "_max_age",
        "_max_retransmits",
        "_min_interval",
        "_packets",
        "_seqs",
        "_stored_at",
    )

    def __init__(
        self,
        capacity: int = 1024,
        max_age: float = 2.0,
        max_retransmits: int = 3,
        min_interval: float = 0.05,
    ) -> None:
        if not 1 <= capacity <= 1 << 16:
            raise ValueError("capacity must be in 1..65536")
        if max_age <= 0:
            raise ValueError("max_age must be positive")
        if max_retransmits < 1:
            raise ValueError("max_retransmits must be at least 1")
        if min_interval < 0:
            raise ValueError("min_interval must not be negative")
        self._capacity = capacity
        self._max_age = max_age
        self._max_retransmits = max_retransmits
        self._min_interval = min_interval
        self._seqs = [-1] * capacity
        self._packets: list[bytes | None] = [None] * capacity
        self._stored_at = [0.0] * capacity
        self._counts = [0] * capacity
        self._last_sent = [0.0] * capacity

    @property
    def capacity(self) -> int:
        return self._capacity

    def store(self, seq: int, packet: bytes, now: float) -> None:
        """Remember a packet just sent with outgoing `seq`, replacing whatever held its slot."""
        seq &= _SEQ_MASK
        i = seq % self._capacity
        self._seqs[i] = seq
        self._packets[i] = packet
        self._stored_at[i] = now
        self._counts[i] = 0

    def get(self, seq: int, now: float) -> bytes | None:
        """The packet to resend for a NACKed `seq`, counting the resend; else None.

        None when it was never stored, has been overwritten, is older than
        max_age, was already resent max_retransmits times, or was resent less
        than min_interval ago.
        """
        seq &= _SEQ_MASK
        i = seq % self._capacity
        packet = self._packets[i]
        if packet is None or self._seqs[i] != seq:
            return None
        if now - self._stored_at[i] > self._max_age:
            return None
        count = self._counts[i]
        if count >= self._max_retransmits:
            return None
        if count and now - self._last_sent[i] < self._min_interval:
            return None
        self._counts[i] = count + 1
        self._last_sent[i] = now
        return packet

    def clear(self) -> None:
        """Forget every packet, e.g. when the consumer's output stream restarts."""
        capacity = self._capacity
        self._seqs = [-1] * capacity
        self._packets = [None] * capacity
        self._counts = [0] * capacity
