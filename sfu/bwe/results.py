"""Transport feedback matched with what was sent: one `PacketResult` per packet.

The feedback names 16-bit sequence numbers and arrival times on the viewer's
clock; the send history knows when we sent each packet and how big it was. The
resolver joins them, unwraps sequence numbers into one monotonic count, unwraps
the viewer's 24-bit reference time, and reports each packet once: Chromium sends
a packet's status again when a reordered arrival moves its report window back,
and a packet reported lost may be reported received later (it was late, not lost).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from sfu.rtp.seq import SequenceExtender
from sfu.rtp.twcc import REFERENCE_TIME_PERIOD, TransportFeedback

SendLookup: TypeAlias = Callable[[int], tuple[float, int] | None]
"""16-bit transport-wide sequence number -> (send time on our clock, bytes on the
wire), or None for a packet never sent or no longer remembered."""

# Packets remembered for duplicate detection, counted back from the highest one
# reported: 8 s at 20 Mbit/s of 1200-byte packets. A report about an older packet
# is ignored; it is too late to say anything about the path now.
_WINDOW = 1 << 14
_UNSEEN, _LOST, _RECEIVED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class PacketResult:
    """What became of one sent packet.

    sequence: transport-wide sequence number, unwrapped (monotonic across wraps).
    send_time: when we sent it, seconds on our clock.
    size: bytes on the wire.
    arrival_time: when it arrived, seconds on the viewer's clock (only differences
    between arrivals mean anything); None when reported lost.
    """

    sequence: int
    send_time: float
    size: int
    arrival_time: float | None

    @property
    def received(self) -> bool:
        return self.arrival_time is not None


class FeedbackResolver:
    """Turns each `TransportFeedback` of one viewer into `PacketResult`s.

    Feedback naming a packet the send history does not know is skipped (never
    sent, or sent too long ago), without moving the unwrapping forward. A packet
    is reported at most twice: once lost, and once received if a later report
    says it arrived after all; never twice the same way.
    """

    __slots__ = ("_arrival_offset", "_last_arrival", "_lookup", "_sequences", "_status")

    def __init__(self, lookup: SendLookup) -> None:
        self._lookup = lookup
        self._sequences = SequenceExtender()
        self._status = bytearray(_WINDOW)
        self._arrival_offset = 0.0
        self._last_arrival: float | None = None

    def resolve(self, feedback: TransportFeedback) -> list[PacketResult]:
        """The packets `feedback` says something new about, in its sequence order."""
        offset = self._unwrap_reference(feedback)
        results: list[PacketResult] = []
        lookup = self._lookup
        sequences = self._sequences
        status = self._status
        for seq, arrival in feedback.packets:
            sent = lookup(seq)
            if sent is None:
                continue
            before = sequences.highest
            ext = sequences.extend(seq)
            if before is not None:
                if ext > before:
                    _forget(status, before, ext)
                elif ext <= before - _WINDOW:
                    continue
            slot = ext % _WINDOW
            seen = status[slot]
            if arrival is None:
                if seen != _UNSEEN:
                    continue
                status[slot] = _LOST
                results.append(PacketResult(ext, sent[0], sent[1], None))
            else:
                if seen == _RECEIVED:
                    continue
                status[slot] = _RECEIVED
                results.append(PacketResult(ext, sent[0], sent[1], arrival + offset))
        return results

    def _unwrap_reference(self, feedback: TransportFeedback) -> float:
        """The offset that keeps the viewer's arrival times continuous when the 24-bit
        reference time wraps (a jump of about 12.4 days between two reports)."""
        first = next((a for _, a in feedback.packets if a is not None), None)
        if first is None:
            return self._arrival_offset
        arrival = first + self._arrival_offset
        last = self._last_arrival
        if last is not None:
            if arrival - last > REFERENCE_TIME_PERIOD / 2:
                self._arrival_offset -= REFERENCE_TIME_PERIOD
            elif last - arrival > REFERENCE_TIME_PERIOD / 2:
                self._arrival_offset += REFERENCE_TIME_PERIOD
        self._last_arrival = first + self._arrival_offset
        return self._arrival_offset


def _forget(status: bytearray, old_highest: int, new_highest: int) -> None:
    """Clear the slots the sequence numbers in (old_highest, new_highest] take over."""
    if new_highest - old_highest >= _WINDOW:
        status[:] = bytes(_WINDOW)
        return
    start, end = (old_highest + 1) % _WINDOW, (new_highest + 1) % _WINDOW
    if start < end:
        status[start:end] = bytes(end - start)
    else:
        status[start:] = bytes(_WINDOW - start)
        status[:end] = bytes(end)
