"""The sending side of transport-wide congestion control
(draft-holmer-rmcat-transport-wide-cc-extensions-01): the sequence numbers one
transport stamps on its RTP, and what went out under each.

Every RTP packet a stamping transport sends, whichever stream it belongs to and
whether it is an original or a retransmission, carries the next 16-bit number
in a one-byte header extension element (draft §2). The viewer's feedback
(draft §3) reports, per number, whether and when the packet arrived; the send
time and size kept here for each number are what a bandwidth estimator compares
that with.

`SendLog` is the pure-Python reference (the Python egress carries one);
sfu/_fastpath.c keeps the same counter and ring inside its native egress, and
the tests require identical packets from both.
"""

from __future__ import annotations

HISTORY = 8192  # numbers remembered (sfu/_fastpath.c TCC_HISTORY); a divisor of 65536
SEQUENCE_MASK = 0xFFFF

SentPacket = tuple[float, int]
"""(send time in the clock's seconds, size in bytes on the wire after SRTP)."""


class SendLog:
    """One transport's transport-wide sequence numbers and the last `HISTORY` packets
    sent under them. `extension_id` is the negotiated one-byte extension id (1..14);
    `overhead` is what protection adds to each packet (the SRTP authentication tag),
    so the recorded sizes are those on the wire."""

    __slots__ = ("_overhead", "_sequences", "_sizes", "_times", "extension_id", "next_sequence")

    def __init__(self, extension_id: int, *, overhead: int) -> None:
        if not 1 <= extension_id <= 14:
            raise ValueError(f"extension_id: a one-byte header id is 1..14, got {extension_id}")
        if overhead < 0:
            raise ValueError(f"overhead: must be >= 0, got {overhead}")
        self.extension_id = extension_id
        self.next_sequence = 0  # the number the next packet built for sending takes
        self._overhead = overhead
        self._sequences = [-1] * HISTORY  # -1: nothing sent in this place yet
        self._times = [0.0] * HISTORY
        self._sizes = [0] * HISTORY

    # -- hot path ---------------------------------------------------------------------
    def take(self) -> int:
        """The number of the packet being built now; the counter moves on (mod 2^16)."""
        sequence = self.next_sequence
        self.next_sequence = (sequence + 1) & SEQUENCE_MASK
        return sequence

    def element(self, sequence: int) -> bytes:
        """The one-byte header extension element (RFC 8285 §4.2) carrying `sequence`:
        (id << 4) | length - 1, then the number, big-endian (draft §2)."""
        return bytes((self.extension_id << 4 | 1, sequence >> 8, sequence & 0xFF))

    def record(self, sequence: int, now: float, rtp_size: int) -> None:
        """The packet numbered `sequence`, `rtp_size` bytes before protection, went out
        at `now`; it replaces whatever was sent `HISTORY` numbers before."""
        index = sequence % HISTORY
        self._sequences[index] = sequence
        self._times[index] = now
        self._sizes[index] = rtp_size + self._overhead

    # -- lookups (per feedback, not per packet) ------------------------------------------
    def sent_packet(self, sequence: int) -> SentPacket | None:
        """When and how large the packet numbered `sequence` (mod 2^16) was; None when
        no packet was sent under it or it was overwritten since (`HISTORY` later)."""
        sequence &= SEQUENCE_MASK
        index = sequence % HISTORY
        if self._sequences[index] != sequence:
            return None
        return (self._times[index], self._sizes[index])

    def sent_packets(self, first: int, count: int) -> list[SentPacket | None]:
        """`sent_packet` for `count` numbers from `first` on (wrapping at 2^16), as one
        feedback message lists them (draft §3.1: base sequence number, status count)."""
        _check_count(count)
        return [self.sent_packet(first + offset) for offset in range(count)]


def nothing_sent(count: int) -> list[SentPacket | None]:
    """`sent_packets` where nothing is stamped: `count` Nones."""
    _check_count(count)
    return [None] * count


def _check_count(count: int) -> None:
    if not 0 <= count <= SEQUENCE_MASK + 1:
        raise ValueError(f"count: 0..65536, got {count}")
