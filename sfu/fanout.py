"""The per-packet fan-out: one call per incoming packet does everything for
every consumer of a producer — key-frame gating, sequence/timestamp munging,
header rewrite, the viewer's MID, SRTP, and the send — and keeps the history
that answers NACKs.

A simulcast producer's encodings share one fan-out: each packet comes tagged
with its encoding (`layer`, 0 = lowest), and each slot forwards one layer at a
time. A slot asked for another layer keeps the current one flowing until the
target layer's next key frame, then switches there in a new epoch: sequence
numbers continue, timestamps continue on the encodings' common timeline when
their alignment is known (`set_timestamp_shift`), and VP8 picture numbering
(sfu/rtp/vp8.py) continues too, so the viewer's decoder sees one stream.

A slot may also have a VP8 temporal ceiling (`set_temporal_ceiling`): frames of a
higher TID are left out, and its sequence numbers and PictureIDs close up over them
(sfu/rtp/temporal.py).

This module is the reference implementation and the fallback; sfu/_fastpath.c
implements the same contract natively (`NativeFanOut`), and the tests require
both to produce byte-identical packets. Per-consumer state lives here, not in
Consumer objects, so the native code can own it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Protocol

from .rtp import vp8
from .rtp.send_log import SendLog, SentPacket, nothing_sent
from .rtp.seq import OutputSequencer
from .rtp.skips import picture_key
from .rtp.temporal import ALL_TEMPORAL_LAYERS, TemporalFilter

MAX_LAYERS = 4  # simulcast encodings per producer
_FIXED = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")


class Egress(Protocol):
    """Protects and sends RTP to one peer; False when the packet was dropped.

    `send_log` is the peer's transport-wide sequence numbering (sfu/rtp/send_log.py):
    every copy sent through a logging egress is stamped with the next number and
    recorded; None sends copies unstamped."""

    @property
    def send_log(self) -> SendLog | None: ...

    def send(self, packet: bytes) -> bool: ...

    def sent_packets(self, first: int, count: int) -> list[SentPacket | None]: ...


class CallableEgress:
    """An Egress from a plain callable (tests, and the pure-Python send path); with a
    `send_log`, what it sends is stamped with transport-wide sequence numbers."""

    __slots__ = ("send", "send_log")

    def __init__(self, send: Callable[[bytes], bool], send_log: SendLog | None = None) -> None:
        self.send = send
        self.send_log = send_log

    def sent_packets(self, first: int, count: int) -> list[SentPacket | None]:
        """What went out under `count` transport-wide numbers from `first` on (all None
        when this egress does not stamp)."""
        if self.send_log is None:
            return nothing_sent(count)
        return self.send_log.sent_packets(first, count)


class FanOutSlot:
    """One consumer's outgoing stream inside a fan-out."""

    __slots__ = (
        "active",
        "bytes_sent",
        "egress",
        "key_frame_at",
        "last_picture_id",
        "last_tl0",
        "layer",
        "layers",
        "mid_element",
        "packets_dropped",
        "packets_sent",
        "packets_skipped",
        "payload_bytes_sent",
        "payload_type",
        "picture_id_offset",
        "sequencer",
        "ssrc",
        "target_layer",
        "temporal",
        "tl0_offset",
        "urgent",
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
        layer: int = 0,
        urgent: bool = False,
    ) -> None:
        if not 0 <= layer < MAX_LAYERS:
            raise ValueError("no such layer")
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.mid_element = mid_element  # one-byte extension element carrying the viewer's MID
        self.egress = egress
        self.urgent = urgent  # audio: its copies never wait for the egress's pacer
        self.sequencer = OutputSequencer(clock_rate, initial_sequence, initial_timestamp)
        self.active = False
        self.waiting_key_frame = False
        self.key_frame_at: float | None = None  # when the awaited key frame went out
        self.layer = layer  # the encoding forwarded now
        self.target_layer = layer  # the encoding wanted; switched to at its key frame
        self.layers = MAX_LAYERS  # how many its fan-out has (set when added to one)
        # VP8 numbering shifts for this viewer; the last numbers sent (-1: none yet).
        self.picture_id_offset = 0
        self.tl0_offset = 0
        self.last_picture_id = -1
        self.last_tl0 = -1
        self.packets_sent = 0
        self.bytes_sent = 0
        self.payload_bytes_sent = 0
        self.packets_dropped = 0  # send failures
        self.packets_skipped = 0  # left out for the temporal ceiling
        self.temporal: TemporalFilter | None = None  # until a ceiling is first set

    def activate(self, *, wait_for_key_frame: bool) -> None:
        """Start a new epoch on the target layer: continuous numbering for the viewer,
        whatever the gap."""
        self.sequencer.resync()
        self.layer = self.target_layer
        self.active = True
        self.waiting_key_frame = wait_for_key_frame
        self.key_frame_at = None

    def deactivate(self) -> None:
        self.active = False

    def set_target_layer(self, layer: int) -> None:
        """Forward `layer` from its next key frame on (at once while nothing flows)."""
        if not 0 <= layer < self.layers:
            raise ValueError("no such layer")
        self.target_layer = layer
        if not self.active or self.waiting_key_frame:
            self.layer = layer

    def set_temporal_ceiling(self, temporal_id: int) -> None:
        """Forward VP8 frames up to TID `temporal_id` only (ALL_TEMPORAL_LAYERS: all,
        the default): lower at once, higher from the next layer sync or key frame."""
        if not 0 <= temporal_id <= ALL_TEMPORAL_LAYERS:
            raise ValueError("no such temporal layer")
        if self.temporal is None:
            if temporal_id == ALL_TEMPORAL_LAYERS:
                return
            self.temporal = TemporalFilter()
        self.temporal.set_ceiling(temporal_id)

    @property
    def temporal_ceiling(self) -> int:
        return ALL_TEMPORAL_LAYERS if self.temporal is None else self.temporal.ceiling

    @property
    def temporal_layer(self) -> int:
        """The highest TID forwarded now (below the ceiling until an up-switch point)."""
        return ALL_TEMPORAL_LAYERS if self.temporal is None else self.temporal.layer

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
    """The consumers of one producer. `history` packets per layer are kept for
    NACKs (video only: 0 disables), for at most `max_age` seconds; `vp8` turns on
    picture numbering continuity."""

    native = False

    def __init__(self, *, history: int, max_age: float, layers: int = 1, vp8: bool = False) -> None:
        if not 1 <= layers <= MAX_LAYERS:
            raise ValueError(f"layers: 1..{MAX_LAYERS}")
        self.slots: tuple[FanOutSlot, ...] = ()
        self._histories = [[_HistoryEntry() for _ in range(history)] for _ in range(layers)]
        self._max_age = max_age
        self._vp8 = vp8
        # Per layer: what to add to its timestamps to reach the common timeline.
        self._timestamp_shifts: list[int | None] = [0] + [None] * (layers - 1)

    def set_timestamp_shift(self, layer: int, shift: int | None) -> None:
        """`layer`'s timestamps plus `shift` are on the common timeline (None: unknown)."""
        if not 0 <= layer < len(self._timestamp_shifts):
            raise ValueError("no such layer")
        self._timestamp_shifts[layer] = None if shift is None else shift & 0xFFFFFFFF

    def add(self, slot: FanOutSlot) -> None:
        layers = len(self._histories)
        if slot.layer >= layers or slot.target_layer >= layers:
            raise ValueError("no such layer")
        slot.layers = layers
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
        layer: int = 0,
    ) -> None:
        """Send one incoming packet (already validated) of `layer` to every active
        slot on that layer, switching the slots that wait for this key frame."""
        histories = self._histories
        if not 0 <= layer < len(histories):
            raise ValueError("no such layer")
        seq = (data[2] << 8) | data[3]
        history = histories[layer]
        if history:
            entry = history[seq % len(history)]
            entry.seq = seq
            entry.data = data
            entry.ext_body = ext_body
            entry.payload_start = payload_start
            entry.arrival = now
        timestamp = int.from_bytes(data[4:8], "big")
        numbering = vp8.picture_numbering(data[payload_start:]) if self._vp8 else None
        for slot in self.slots:
            if not slot.active:
                continue
            if slot.layer != layer:
                if slot.target_layer != layer or not keyframe or slot.waiting_key_frame:
                    continue
                self._switch(slot, layer)
            elif slot.waiting_key_frame:
                if not keyframe:
                    continue
                slot.waiting_key_frame = False
                slot.key_frame_at = now
            starting = slot.sequencer.pending
            skipped = 0  # pictures left out before this one
            temporal = slot.temporal
            if temporal is not None:
                if starting:
                    temporal.restart()
                if numbering is not None and numbering.picture_id_at >= 0:
                    skipped = temporal.admit(numbering, keyframe, seq, slot.sequencer)
                    if skipped < 0:
                        slot.packets_skipped += 1
                        continue
                if starting:  # the old epoch's skipped pictures stay closed up
                    _close_up_pictures(slot)
            mapped = slot.sequencer.map(seq, timestamp, now)
            if mapped is None:
                continue
            if numbering is not None:
                _renumber(slot, numbering, starting, skipped)
            _send(
                slot, data, payload_start, ext_body, mapped[0], mapped[1], now, numbering, skipped
            )

    def _switch(self, slot: FanOutSlot, layer: int) -> None:
        """Move `slot` to `layer` at its key frame, in a new epoch (aligned if known)."""
        old, new = self._timestamp_shifts[slot.layer], self._timestamp_shifts[layer]
        aligned = None
        if old is not None and new is not None and not slot.sequencer.pending:
            aligned = (slot.sequencer.ts_offset + new - old) & 0xFFFFFFFF
        slot.sequencer.resync(aligned)
        slot.layer = layer

    def retransmit(self, slot: FanOutSlot, out_seq: int, now: float) -> bool:
        """Resend one packet a viewer NACKed, exactly as first sent; False if gone."""
        history = self._histories[slot.layer]
        if not slot.active or not history:
            return False
        in_seq = slot.sequencer.input_sequence(out_seq)
        if in_seq is None:
            return False
        entry = history[in_seq % len(history)]
        if entry.seq != in_seq or now - entry.arrival > self._max_age:
            return False
        timestamp = int.from_bytes(entry.data[4:8], "big")
        mapped = slot.sequencer.map(in_seq, timestamp, entry.arrival)
        if mapped is None or mapped[0] != out_seq:
            return False
        numbering = (
            vp8.picture_numbering(entry.data[entry.payload_start :]) if self._vp8 else None
        )
        skipped = 0
        if slot.temporal is not None and numbering is not None and numbering.picture_id_at >= 0:
            sequencer = slot.sequencer
            picture = picture_key(numbering.picture_id, numbering.picture_id_wide)
            skipped = sequencer.skipped.pictures_before(sequencer.extended(in_seq), picture)
            if skipped < 0:  # a packet of a picture left out, come late
                return False
        return _send(
            slot, entry.data, entry.payload_start, entry.ext_body, out_seq, mapped[1], now,
            numbering, skipped,
        )  # fmt: skip

    def close(self) -> None:
        for slot in self.slots:
            slot.active = False
        self.slots = ()
        for history in self._histories:
            for entry in history:
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
    transport_cc: bytes = b"",
) -> bytes:
    """One viewer's copy: our header fields, MID + the transport-wide sequence number
    element (`transport_cc`, when the viewer's transport stamps) + the canonical
    extensions, the original payload (and padding). CSRCs are dropped: the SFU is not
    a mixer."""
    body = mid_element + transport_cc + ext_body
    if body:
        pad = -len(body) % 4
        block = _EXT_HEADER.pack(0xBEDE, (len(body) + pad) >> 2) + body + b"\x00" * pad
    else:
        block = b""
    b0 = 0x80 | (data[0] & 0x20) | (0x10 if block else 0)
    b1 = payload_type | (data[1] & 0x80)
    return _FIXED.pack(b0, b1, seq, timestamp, ssrc) + block + data[payload_start:]


def _close_up_pictures(slot: FanOutSlot) -> None:
    """At an epoch's first packet, before its mapping forgets them: the pictures the
    old epoch skipped stay out of the numbering (a first packet with a PictureID
    sets the offset anew anyway)."""
    skipped = slot.sequencer.skipped.pictures
    slot.picture_id_offset = (slot.picture_id_offset - skipped) & vp8.PICTURE_ID_MASK


def _renumber(
    slot: FanOutSlot, numbering: vp8.PictureNumbering, starting: bool, skipped: int
) -> None:
    """At an epoch's first packet, shift the VP8 numbering to continue where the viewer
    left off; then remember the newest numbers sent (`skipped`: pictures left out
    before this one, closed up)."""
    mask = vp8.PICTURE_ID_MASK if numbering.picture_id_wide else vp8.PICTURE_ID_MASK_NARROW
    if starting and slot.last_picture_id >= 0:
        if numbering.picture_id_at >= 0:
            slot.picture_id_offset = (slot.last_picture_id + 1 - numbering.picture_id) & mask
        if numbering.tl0_at >= 0 and slot.last_tl0 >= 0:
            slot.tl0_offset = (slot.last_tl0 + 1 - numbering.tl0) & vp8.TL0_MASK
    if numbering.picture_id_at >= 0:
        picture_id = (numbering.picture_id + slot.picture_id_offset - skipped) & mask
        ahead = (picture_id - slot.last_picture_id) & mask
        if slot.last_picture_id < 0 or 0 < ahead <= mask >> 1:
            slot.last_picture_id = picture_id
    if numbering.tl0_at >= 0:
        tl0 = (numbering.tl0 + slot.tl0_offset) & vp8.TL0_MASK
        if slot.last_tl0 < 0 or 0 < (tl0 - slot.last_tl0) & vp8.TL0_MASK <= vp8.TL0_MASK >> 1:
            slot.last_tl0 = tl0


def _send(
    slot: FanOutSlot,
    data: bytes,
    payload_start: int,
    ext_body: bytes,
    seq: int,
    timestamp: int,
    now: float,
    numbering: vp8.PictureNumbering | None = None,
    skipped: int = 0,
) -> bool:
    """Build, send and count one viewer's copy; a stamping egress numbers it and logs
    it as sent at `now` (the packet leaves in this loop iteration). Its PictureID
    is shifted by the slot's offset less the `skipped` pictures before it."""
    log = slot.egress.send_log
    transport_seq = log.take() if log is not None else -1
    packet = rewrite(
        data, payload_start, ext_body, slot.mid_element, slot.payload_type, seq, timestamp,
        slot.ssrc, log.element(transport_seq) if log is not None else b"",
    )  # fmt: skip
    picture_shift = slot.picture_id_offset - skipped
    if numbering is not None and (picture_shift or slot.tl0_offset):
        shifted = bytearray(packet)
        vp8.write_numbering(
            shifted,
            len(packet) - (len(data) - payload_start),
            numbering,
            numbering.picture_id + picture_shift,
            numbering.tl0 + slot.tl0_offset,
        )
        packet = bytes(shifted)
    if slot.egress.send(packet):
        if log is not None:
            log.record(transport_seq, now, len(packet))
        slot.packets_sent += 1
        slot.bytes_sent += len(packet)
        slot.payload_bytes_sent += len(data) - payload_start
        return True
    slot.packets_dropped += 1
    return False
