"""The per-packet fan-out: one call per incoming packet does everything for
every consumer of a producer — key-frame gating, sequence/timestamp munging,
header rewrite, the viewer's MID, SRTP, and the send — and keeps the history
that answers NACKs.

This module is the reference implementation and the fallback; sfu/_fastpath.c
implements the same contract natively (`NativeFanOut`), and the tests require
both to produce byte-identical packets. Per-consumer state lives here, not in
Consumer objects, so the native code can own it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Protocol

from .rtp.seq import OutputSequencer

_FIXED = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")


class Egress(Protocol):
    """Protects and sends RTP to one peer; False when the packet was dropped."""

    def send(self, packet: bytes) -> bool: ...


class CallableEgress:
    """An Egress from a plain callable (tests, and the pure-Python send path)."""

    __slots__ = ("send",)

    def __init__(self, send: Callable[[bytes], bool]) -> None:
        self.send = send


class FanOutSlot:
    """One consumer's outgoing stream inside a fan-out."""

    __slots__ = (
        "active",
        "bytes_sent",
        "egress",
        "key_frame_at",
        "mid_element",
        "packets_dropped",
        "packets_sent",
        "payload_bytes_sent",
        "payload_type",
        "sequencer",
        "ssrc",
        "waiting_key_frame",
    )

    def __init__(
        self,
        *,
        ssrc: int,
        payload_type: int,
        mid_element: bytes,
        clock_rate: int,
        egress: Egress,
        initial_sequence: int,
        initial_timestamp: int,
    ) -> None:
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.mid_element = mid_element  # one-byte extension element carrying the viewer's MID
        self.egress = egress
        self.sequencer = OutputSequencer(clock_rate, initial_sequence, initial_timestamp)
        self.active = False
        self.waiting_key_frame = False
        self.key_frame_at: float | None = None  # when the awaited key frame went out
        self.packets_sent = 0
        self.bytes_sent = 0
        self.payload_bytes_sent = 0
        self.packets_dropped = 0

    def activate(self, *, wait_for_key_frame: bool) -> None:
        """Start a new epoch: continuous numbering for the viewer, whatever the gap."""
        self.sequencer.resync()
        self.active = True
        self.waiting_key_frame = wait_for_key_frame
        self.key_frame_at = None

    def deactivate(self) -> None:
        self.active = False

    def output_timestamp(self, timestamp: int) -> int | None:
        return self.sequencer.output_timestamp(timestamp)

    def input_sequence(self, out_seq: int) -> int | None:
        return self.sequencer.input_sequence(out_seq)

    def counters(self) -> tuple[int, int, int, int]:
        """(packets, bytes, payload bytes, dropped) sent so far, in one read."""
        return (self.packets_sent, self.bytes_sent, self.payload_bytes_sent, self.packets_dropped)


class _HistoryEntry:
    __slots__ = ("arrival", "data", "ext_body", "payload_start", "seq")

    def __init__(self) -> None:
        self.seq = -1
        self.data = b""
        self.ext_body = b""
        self.payload_start = 0
        self.arrival = 0.0


class FanOut:
    """The consumers of one producer. `history` packets are kept for NACKs
    (video only: 0 disables), for at most `max_age` seconds."""

    native = False

    def __init__(self, *, history: int, max_age: float) -> None:
        self.slots: tuple[FanOutSlot, ...] = ()
        self._history = [_HistoryEntry() for _ in range(history)]
        self._max_age = max_age

    def add(self, slot: FanOutSlot) -> None:
        self.slots = (*self.slots, slot)

    def remove(self, slot: FanOutSlot) -> None:
        slot.active = False
        self.slots = tuple(s for s in self.slots if s is not slot)

    # -- hot path -------------------------------------------------------------
    def forward(
        self,
        data: bytes,
        payload_start: int,
        ext_body: bytes,
        keyframe: bool,
        now: float,
    ) -> None:
        """Send one incoming packet (already validated) to every active slot."""
        seq = (data[2] << 8) | data[3]
        history = self._history
        if history:
            entry = history[seq % len(history)]
            entry.seq = seq
            entry.data = data
            entry.ext_body = ext_body
            entry.payload_start = payload_start
            entry.arrival = now
        timestamp = int.from_bytes(data[4:8], "big")
        for slot in self.slots:
            if not slot.active:
                continue
            if slot.waiting_key_frame:
                if not keyframe:
                    continue
                slot.waiting_key_frame = False
                slot.key_frame_at = now
            mapped = slot.sequencer.map(seq, timestamp, now)
            if mapped is not None:
                _send(slot, data, payload_start, ext_body, mapped[0], mapped[1])

    def retransmit(self, slot: FanOutSlot, out_seq: int, now: float) -> bool:
        """Resend one packet a viewer NACKed, exactly as first sent; False if gone."""
        if not slot.active or not self._history:
            return False
        in_seq = slot.sequencer.input_sequence(out_seq)
        if in_seq is None:
            return False
        entry = self._history[in_seq % len(self._history)]
        if entry.seq != in_seq or now - entry.arrival > self._max_age:
            return False
        timestamp = int.from_bytes(entry.data[4:8], "big")
        mapped = slot.sequencer.map(in_seq, timestamp, entry.arrival)
        if mapped is None or mapped[0] != out_seq:
            return False
        return _send(slot, entry.data, entry.payload_start, entry.ext_body, out_seq, mapped[1])

    def close(self) -> None:
        for slot in self.slots:
            slot.active = False
        self.slots = ()
        for entry in self._history:
            entry.data = entry.ext_body = b""
            entry.seq = -1


def rewrite(
    data: bytes,
    payload_start: int,
    ext_body: bytes,
    mid_element: bytes,
    payload_type: int,
    seq: int,
    timestamp: int,
    ssrc: int,
) -> bytes:
    """One viewer's copy: our header fields, MID + the canonical extensions, the
    original payload (and padding). CSRCs are dropped: the SFU is not a mixer."""
    body = mid_element + ext_body
    if body:
        pad = -len(body) % 4
        block = _EXT_HEADER.pack(0xBEDE, (len(body) + pad) >> 2) + body + b"\x00" * pad
    else:
        block = b""
    b0 = 0x80 | (data[0] & 0x20) | (0x10 if block else 0)
    b1 = payload_type | (data[1] & 0x80)
    return _FIXED.pack(b0, b1, seq, timestamp, ssrc) + block + data[payload_start:]


def _send(
    slot: FanOutSlot, data: bytes, payload_start: int, ext_body: bytes, seq: int, timestamp: int
) -> bool:
    packet = rewrite(
        data, payload_start, ext_body, slot.mid_element, slot.payload_type, seq, timestamp,
        slot.ssrc,
    )  # fmt: skip
    if slot.egress.send(packet):
        slot.packets_sent += 1
        slot.bytes_sent += len(packet)
        slot.payload_bytes_sent += len(data) - payload_start
        return True
    slot.packets_dropped += 1
    return False
