"""16-bit sequence arithmetic and the per-consumer output sequencer.

Wraparound comparison follows RFC 3550 Appendix A.1 (serial number arithmetic
as in RFC 1982): `a` is newer than `b` when it is less than half the number
space ahead of it.
"""

from __future__ import annotations

from .skips import SkippedNumbers

_SEQ_MASK = 0xFFFF
_SEQ_HALF = 1 << 15
_TS_MASK = 0xFFFFFFFF
_TS_HALF = 1 << 31
# An aligned epoch may start at most this many seconds after the last packet sent;
# anything else means the alignment is stale, and the wall clock is safer.
_ALIGNED_MAX_STEP = 5


def seq_diff(a: int, b: int) -> int:
    """Signed distance a - b modulo 2^16, in [-32768, 32767]."""
    return ((a - b + _SEQ_HALF) & _SEQ_MASK) - _SEQ_HALF


def seq_is_newer(a: int, b: int) -> bool:
    """True when `a` comes after `b` (at most 32767 ahead), accounting for wraparound."""
    return ((a - b + _SEQ_HALF) & _SEQ_MASK) > _SEQ_HALF


class SequenceExtender:
    """Maps 16-bit sequence numbers to a monotonic extended counter (RFC 3550 §A.1 cycles).

    The first packet maps to its own value. Later packets map relative to the
    highest one seen, so reordered packets land just below it and a wrap from
    65535 to 0 continues at 65536. A packet reordered before the very first
    one across a wrap may map below zero.
    """

    __slots__ = ("_highest",)

    def __init__(self) -> None:
        self._highest: int | None = None

    @property
    def highest(self) -> int | None:
        """The highest extended sequence number seen, None before the first packet."""
        return self._highest

    def extend(self, seq: int) -> int:
        highest = self._highest
        if highest is None:
            self._highest = seq & _SEQ_MASK
            return self._highest
        ext = highest + (((seq - highest + _SEQ_HALF) & _SEQ_MASK) - _SEQ_HALF)
        if ext > highest:
            self._highest = ext
        return ext

    def reset(self) -> None:
        self._highest = None


class OutputSequencer:
    """Keeps one consumer's outgoing sequence numbers and timestamps continuous.

    A viewer's decoder and jitter buffer expect one unbroken RTP stream
    (RFC 3550 §5.1: seq +1 per packet, timestamp on the media clock), whatever
    happens upstream: pauses, a producer swap, a publisher restarting with
    random seq/ts. Input is therefore mapped in epochs. `resync()` starts a new
    epoch; its first packet gets the next output seq and a timestamp advanced
    by the wall time elapsed since the last packet sent, so the receiver sees
    a pause rather than a jump. Within an epoch, output = input + offset, so
    upstream gaps stay gaps (the viewer NACKs them) and late retransmissions
    map to the output seq they always had. Packets from before the epoch's
    first packet return None (they belong to an old source or would go back
    in time).

    Packets the viewer is not to get at all (frames above its temporal ceiling)
    are `skip`ped: later output seqs close up over them (sfu/rtp/skips.py), so
    the viewer sees no gap, and NACKs map back through them.

    When the new epoch's source runs on a timeline whose relation to the old
    one is known (simulcast encodings aligned by their sender reports),
    `resync(ts_offset)` proposes the offset that keeps that relation; it is
    taken when it moves time forward by less than `_ALIGNED_MAX_STEP`, nudged one
    tick past the last timestamp when it lands up to 75 ms before it, and else
    the wall clock decides as above.
    """

    __slots__ = (
        "_clock_rate",
        "_epoch_first",
        "_ext_highest",
        "_initial_seq",
        "_initial_timestamp",
        "_new_epoch",
        "_proposed_ts_offset",
        "_seq_offset",
        "_skipped",
        "_started",
        "_ts_offset",
        "last_output_seq",
        "last_output_time",
        "last_output_timestamp",
    )

    def __init__(self, clock_rate: int, initial_seq: int, initial_timestamp: int) -> None:
        if clock_rate <= 0:
            raise ValueError("clock_rate must be positive")
        if not 0 <= initial_seq <= _SEQ_MASK:
            raise ValueError("initial_seq must be in 0..65535")
        if not 0 <= initial_timestamp <= _TS_MASK:
            raise ValueError("initial_timestamp must be in 0..2**32-1")
        self._clock_rate = clock_rate
        self._initial_seq = initial_seq
        self._initial_timestamp = initial_timestamp
        self._started = False
        self._new_epoch = True
        self._proposed_ts_offset: int | None = None
        self._seq_offset = 0
        self._ts_offset = 0
        self._epoch_first = 0
        self._ext_highest = 0
        self._skipped = SkippedNumbers()  # in the current epoch
        self.last_output_seq = initial_seq
        self.last_output_timestamp = initial_timestamp
        self.last_output_time = 0.0

    def resync(self, ts_offset: int | None = None) -> None:
        """The next accepted packet starts a new epoch (it may come from an unrelated
        source); `ts_offset`, when given, is the timestamp offset that would keep it
        aligned with the previous one."""
        self._new_epoch = True
        self._proposed_ts_offset = ts_offset

    @property
    def pending(self) -> bool:
        """A new epoch starts with the next accepted packet."""
        return self._new_epoch

    @property
    def ts_offset(self) -> int:
        """Output minus input timestamp in the current epoch."""
        return self._ts_offset

    def map(self, seq: int, timestamp: int, now: float) -> tuple[int, int] | None:
        """(output seq, output timestamp) for an input packet, or None to drop it."""
        if self._new_epoch:
            return self._start_epoch(seq & _SEQ_MASK, timestamp & _TS_MASK, now)
        highest = self._ext_highest
        ext = highest + (((seq - highest + _SEQ_HALF) & _SEQ_MASK) - _SEQ_HALF)
        if ext < self._epoch_first:
            return None
        skipped = 0
        if self._skipped.total:
            skipped = self._skipped.below(ext)
            if skipped < 0:
                return None
        out_seq = (seq + self._seq_offset - skipped) & _SEQ_MASK
        out_ts = (timestamp + self._ts_offset) & _TS_MASK
        if ext > highest:
            self._ext_highest = ext
            self.last_output_seq = out_seq
        # Only a newer timestamp moves the anchor used to time the next epoch.
        if 0 < ((out_ts - self.last_output_timestamp) & _TS_MASK) < _TS_HALF:
            self.last_output_timestamp = out_ts
            self.last_output_time = now
        return out_seq, out_ts

    @property
    def skipped(self) -> SkippedNumbers:
        """The packets skipped in the current epoch (read only)."""
        return self._skipped

    def extended(self, seq: int) -> int:
        """`seq` unwrapped around the newest input of the epoch."""
        highest = self._ext_highest
        return highest + (((seq - highest + _SEQ_HALF) & _SEQ_MASK) - _SEQ_HALF)

    def is_newest(self, seq: int) -> bool:
        """`seq` is newer than any input seen in the current epoch."""
        return self.extended(seq) > self._ext_highest

    def skip(self, seq: int, picture: int, *, new_picture: bool) -> None:
        """Leave out the packet `seq` (newer than any seen, of `picture`) for good: the
        next output seq follows the last one given. Unless it starts a `new_picture`,
        the newest packet so far was a skipped one of the same frame, and the seqs
        between the two (lost, or still to come late) are that frame's: skipped too."""
        if self._new_epoch:
            return
        ext = self.extended(seq)
        if ext <= self._ext_highest:
            return
        skipped = self._skipped
        with_gap = not new_picture and skipped.newest == self._ext_highest
        skipped.add(self._ext_highest + 1 if with_gap else ext, ext, picture, new_picture)
        self._ext_highest = ext
        self.last_output_seq = (ext + self._seq_offset - skipped.total) & _SEQ_MASK

    def input_sequence(self, out_seq: int) -> int | None:
        """The input seq that maps to `out_seq` in the current epoch, for answering NACKs.

        None before the first packet, while a resync is pending (an old packet
        must not open the new epoch), or when `out_seq` lies outside the part
        of the epoch already sent.
        """
        if self._new_epoch:
            return None
        seq = (out_seq - self._seq_offset) & _SEQ_MASK
        skipped = self._skipped
        highest = self._ext_highest - skipped.total  # in output positions
        ext = highest + (((seq - highest + _SEQ_HALF) & _SEQ_MASK) - _SEQ_HALF)
        if ext < self._epoch_first or ext > highest:
            return None
        if skipped.total:
            ext = skipped.expand(ext)
            if ext < skipped.floor:
                return None
        return ext & _SEQ_MASK

    def output_timestamp(self, timestamp: int) -> int | None:
        """An input RTP timestamp in output terms (for sender reports); None between epochs."""
        if self._new_epoch:
            return None
        return (timestamp + self._ts_offset) & _TS_MASK

    def _start_epoch(self, seq: int, timestamp: int, now: float) -> tuple[int, int]:
        proposed, self._proposed_ts_offset = self._proposed_ts_offset, None
        if self._started:
            out_seq = (self.last_output_seq + 1) & _SEQ_MASK
            out_ts = -1
            if proposed is not None:
                aligned = (timestamp + proposed) & _TS_MASK
                step = (aligned - self.last_output_timestamp) & _TS_MASK
                if 0 < step <= self._clock_rate * _ALIGNED_MAX_STEP:
                    out_ts = aligned
                elif (-step & _TS_MASK) * 40 < self._clock_rate * 3:
                    # The same instant as the last frame sent (another encoding's picture
                    # of it), or up to 75 ms before: one tick later keeps time moving
                    # forward and the alignment within lip-sync tolerance, as mediasoup does.
                    out_ts = (self.last_output_timestamp + 1) & _TS_MASK
            if out_ts < 0:
                ticks = round((now - self.last_output_time) * self._clock_rate)
                out_ts = (self.last_output_timestamp + max(1, ticks)) & _TS_MASK
        else:
            self._started = True
            out_seq = self._initial_seq
            out_ts = self._initial_timestamp
        self._new_epoch = False
        self._seq_offset = (out_seq - seq) & _SEQ_MASK
        self._ts_offset = (out_ts - timestamp) & _TS_MASK
        self._epoch_first = seq
        self._ext_highest = seq
        self._skipped.clear()
        self.last_output_seq = out_seq
        self.last_output_timestamp = out_ts
        self.last_output_time = now
        return out_seq, out_ts


class NumberingRestart:
    """Tells a source that restarted its sequence numbers (a publisher's encoder or
    connection starting over, an SSRC re-learned) from a stray or very late packet,
    as RFC 3550 §A.1 does: a jump of `MAX_DROPOUT` or more ahead, or more than
    `MAX_MISORDER` back, is believed only when the next packet follows it."""

    MAX_DROPOUT = 3000
    MAX_MISORDER = 100
    IN_ORDER, STRAY, RESTARTED = 0, 1, 2

    __slots__ = ("_expected_after_jump", "_last")

    def __init__(self) -> None:
        self._last = -1
        self._expected_after_jump = -1

    def check(self, seq: int) -> int:
        """IN_ORDER (forward it), STRAY (drop it: a jump not yet confirmed) or
        RESTARTED (the numbering starts over at `seq`)."""
        last = self._last
        if last < 0:
            self._last = seq
            return self.IN_ORDER
        ahead = (seq - last) & _SEQ_MASK
        if ahead < self.MAX_DROPOUT:
            if ahead:
                self._last = seq
            self._expected_after_jump = -1
            return self.IN_ORDER
        if ahead > _SEQ_MASK - self.MAX_MISORDER:
            return self.IN_ORDER  # reordered, not far back
        if seq == self._expected_after_jump:
            self._last = seq
            self._expected_after_jump = -1
            return self.RESTARTED
        self._expected_after_jump = (seq + 1) & _SEQ_MASK
        return self.STRAY
