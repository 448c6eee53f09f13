"""Packets left out of a viewer's stream for good, and the pictures they carried.

When the fan-out leaves a viewer's frames out (above its temporal ceiling), the
viewer must see neither a sequence-number gap (it would NACK packets that never
come) nor a VP8 PictureID gap (libwebrtc's reference finder waits for the missing
picture). So an input seq maps to itself plus an offset minus the seqs skipped
below it, as mediasoup's SeqManager does, and a PictureID is lowered by the
pictures skipped below its packet. Only a seq newer than any seen is skipped:
nothing already sent ever moves, so no output number goes to two inputs, and a
retransmission is renumbered as first sent.

Counting pictures by seq rather than by PictureID needs no unwrapping of 7- or
15-bit PictureIDs, which a late packet or a stray descriptor would get wrong.

Seqs here are extended (unwrapped) by the caller; a picture is a PictureID with
its width (`picture_key`). Skips are kept as runs of seqs, the newest `RANGES` of
them; a seq below a forgotten run is refused, as one before its epoch is.
sfu/_fastpath_vp8.h (`skips_t`) implements the same.
"""

from __future__ import annotations

RANGES = 64  # runs remembered: at 30 frames/s at least two seconds of skipped frames
NO_FLOOR = -(1 << 63)


def picture_key(picture_id: int, wide: bool) -> int:
    """A PictureID as compared here: a 7-bit one never equals a 15-bit one."""
    return picture_id | 0x8000 if wide else picture_id


class SkippedNumbers:
    """The skipped runs of one epoch, oldest first: seqs `first`..`last`, how many
    pictures they started, and the first and last picture in them."""

    __slots__ = (
        "_first_pictures",
        "_firsts",
        "_last_pictures",
        "_lasts",
        "_pictures",
        "floor",
        "pictures",
        "total",
    )

    def __init__(self) -> None:
        self._firsts: list[int] = []
        self._lasts: list[int] = []
        self._pictures: list[int] = []
        self._first_pictures: list[int] = []
        self._last_pictures: list[int] = []
        self.total = 0  # seqs skipped in all, forgotten runs included
        self.pictures = 0  # pictures skipped in all
        self.floor = NO_FLOOR  # seqs below were in a forgotten run or before it

    def clear(self) -> None:
        for runs in (self._firsts, self._lasts, self._pictures):
            runs.clear()
        self._first_pictures.clear()
        self._last_pictures.clear()
        self.total = self.pictures = 0
        self.floor = NO_FLOOR

    @property
    def newest(self) -> int | None:
        """The newest seq skipped, None when none is remembered."""
        return self._lasts[-1] if self._lasts else None

    def add(self, first: int, last: int, picture: int, new_picture: bool) -> None:
        """Skip seqs `first`..`last` (newer than any seen), of `picture`; `new_picture`:
        its first packet skipped, so one more picture to close up."""
        lasts = self._lasts
        if lasts and lasts[-1] + 1 == first:
            lasts[-1] = last
            self._pictures[-1] += new_picture
            self._last_pictures[-1] = picture
        else:
            if len(lasts) == RANGES:
                self.floor = lasts[0] + 1
                for runs in (self._firsts, self._lasts, self._pictures):
                    del runs[0]
                del self._first_pictures[0], self._last_pictures[0]
            self._firsts.append(first)
            lasts.append(last)
            self._pictures.append(int(new_picture))
            self._first_pictures.append(picture)
            self._last_pictures.append(picture)
        self.total += last - first + 1
        self.pictures += new_picture

    def below(self, seq: int) -> int:
        """How many seqs below `seq` were skipped; -1 when it was skipped itself or lies
        below the floor."""
        if seq < self.floor:
            return -1
        count = self.total
        firsts, lasts = self._firsts, self._lasts
        for i in range(len(lasts) - 1, -1, -1):
            if lasts[i] < seq:
                break
            if firsts[i] <= seq:
                return -1
            count -= lasts[i] - firsts[i] + 1
        return count

    def expand(self, position: int) -> int:
        """The unskipped seq whose position in the output (itself minus the skips below
        it) is `position`: the reverse of `below`, for answering NACKs."""
        seq = position + self.total
        firsts, lasts = self._firsts, self._lasts
        for i in range(len(lasts) - 1, -1, -1):
            if lasts[i] < seq:
                break
            seq -= lasts[i] - firsts[i] + 1
        return seq

    def pictures_before(self, seq: int, picture: int) -> int:
        """How many pictures skipped before the packet `seq` of `picture` (already seen
        or late); -1 when its picture was skipped: its seq is in a run, or the run just
        below ends with its picture, or the run just above starts with it (a frame's
        packets have consecutive seqs)."""
        if seq < self.floor:
            return -1
        count = self.pictures
        above = -1
        lasts = self._lasts
        for i in range(len(lasts) - 1, -1, -1):
            if lasts[i] < seq:
                if self._last_pictures[i] == picture:
                    return -1
                break
            if self._firsts[i] <= seq:
                return -1
            count -= self._pictures[i]
            above = self._first_pictures[i]
        return -1 if above == picture else count
