"""A viewer's VP8 temporal-layer ceiling: the frames above it are left out, and the
viewer still sees one continuous stream.

Chromium sends each simulcast encoding as VP8 L1T3: the descriptor (RFC 7741 §4.2)
of every packet carries the frame's TID, the Y (layer sync) bit and its PictureID.
TID 0 is a quarter of the frame rate, 0-1 half of it. A frame only references
frames of its own TID or lower, so leaving out everything above a ceiling leaves a
decodable stream: going down is safe at the next frame.

Going up is not: libwebrtc's temporal patterns make a TID 1 or 2 frame reference
earlier frames of its layer (the 'golden' buffer), which a viewer held lower never
got. Only a layer sync frame (Y set: it references TID 0 only) or a key frame may
start a higher layer, as in mediasoup's VP8 forwarder. Chromium's default L1T3
pattern (8 frames: TIDs 0 2 1 2 0 2 1 2) sets Y on its first TID 2 and its first
TID 1 frame, so an up-switch waits at most 8 frames; a TID 0 frame does not
qualify (the TID 1 and 2 frames after the pattern's second one reference its
first TID 1).

The decision is per frame, taken at the first packet seen of a new picture at
the head of the stream; the frame's later packets follow it. A late packet of a
picture already decided follows that decision, and one of a picture never seen
(a frame lost upstream and recovered) is forwarded: its PictureID was left free,
and a PictureID gap stalls the viewer's reference finder. Skipped packets and
pictures are closed up in the output (sfu/rtp/skips.py).

sfu/_fastpath_vp8.h (`temporal_t`) implements the same, and the tests require both to
send the same bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .skips import picture_key
from .vp8 import PictureNumbering

if TYPE_CHECKING:
    from .seq import OutputSequencer

ALL_TEMPORAL_LAYERS = 3  # the highest TID the descriptor can carry: a ceiling that drops none
NO_PICTURE = -1
IN_FLIGHT = -2  # a filter set up mid-stream: the picture at the head goes on, whatever it is


class TemporalFilter:
    """One viewer's ceiling, and the picture at the head of its stream."""

    __slots__ = ("ceiling", "head_picture", "head_skipped", "layer")

    def __init__(self) -> None:
        self.ceiling = ALL_TEMPORAL_LAYERS  # asked
        self.layer = ALL_TEMPORAL_LAYERS  # forwarded now: at most the ceiling
        self.head_picture = IN_FLIGHT  # picture_key of the newest packet decided
        self.head_skipped = False

    def set_ceiling(self, temporal_id: int) -> None:
        """Down at once; up at the next layer sync or key frame."""
        self.ceiling = temporal_id
        self.layer = min(self.layer, temporal_id)

    def restart(self) -> None:
        """A new epoch starts: no picture decided yet."""
        self.head_picture = NO_PICTURE
        self.head_skipped = False

    def admit(
        self, numbering: PictureNumbering, keyframe: bool, seq: int, sequencer: OutputSequencer
    ) -> int:
        """Decide one packet with a PictureID: how many pictures before its own were
        skipped, or -1 to skip it too (its seq is then skipped in `sequencer`)."""
        picture = picture_key(numbering.picture_id, numbering.picture_id_wide)
        if sequencer.pending:  # the epoch's first packet: nothing to close up yet
            self.head_picture = picture
            self.head_skipped = not self._forwards(numbering, keyframe)
            return -1 if self.head_skipped else 0
        if not sequencer.is_newest(seq):  # a picture decided, or late
            return sequencer.skipped.pictures_before(sequencer.extended(seq), picture)
        new_picture = picture != self.head_picture
        if new_picture:
            # Until now every frame went out: the one in flight when the filter was set
            # up is finished (and, if it is a new one, that is only one frame late).
            in_flight = self.head_picture == IN_FLIGHT
            self.head_picture = picture
            self.head_skipped = not in_flight and not self._forwards(numbering, keyframe)
        if self.head_skipped:
            sequencer.skip(seq, picture, new_picture=new_picture)
            return -1
        return sequencer.skipped.pictures

    def _forwards(self, numbering: PictureNumbering, keyframe: bool) -> bool:
        """Whether a new picture goes to the viewer (moving the layer up when it may)."""
        temporal_id = numbering.temporal_id
        if temporal_id > self.ceiling:
            return False
        if keyframe:
            self.layer = self.ceiling
        elif temporal_id > self.layer:
            if not numbering.layer_sync:
                return False
            self.layer = temporal_id
        return True
