"""A viewer's VP8 temporal ceiling in the fan-out, for both the Python reference and
the native fan-out: frames above it are left out, and what the viewer gets is one
continuous stream (sequence numbers, PictureIDs and TL0PICIDX without gaps), with
late packets and NACKs mapped through the frames left out."""

from __future__ import annotations

import itertools
import random

import pytest

from sfu import fastpath
from sfu.rtp import vp8
from sfu.rtp.header import RtpPacketView
from sfu.rtp.skips import RANGES, SkippedNumbers
from sfu.rtp.temporal import ALL_TEMPORAL_LAYERS
from tests.packets import make_rtp
from tests.unit.test_fanout_layers import INITIAL_SEQ, Viewer

FRAME = 3000  # timestamp ticks between frames (30 frames/s)
PATTERN = (0, 2, 1, 2, 0, 2, 1, 2)  # Chromium's L1T3 pattern
SYNC = (1, 2)  # its frames with the Y bit: the first TID 2 and TID 1


class L1T3:
    """One encoding as Chromium sends it: 15-bit PictureIDs, TL0PICIDX, TID and Y in
    every packet's descriptor, `packets` packets per frame. Its numbers start just
    before they wrap."""

    def __init__(self, *, layer: int = 0, packets: int = 2, seq: int = 65530) -> None:
        self.layer = layer
        self.packets = packets
        self.seq = seq
        self.picture_id = 0x7FFD
        self.tl0 = 254
        self.timestamp = 0xFFFFF000 + layer
        self.index = -1  # position in the pattern
        self.frames = 0

    def frame(self, *, keyframe: bool = False) -> list[bytes]:
        """The next frame's packets, in order; the first starts a key frame if asked."""
        self.index = 0 if keyframe else (self.index + 1) % len(PATTERN)
        temporal = PATTERN[self.index]
        self.frames += 1
        self.picture_id = (self.picture_id + 1) & 0x7FFF
        self.timestamp = (self.timestamp + FRAME) & 0xFFFFFFFF
        if temporal == 0:
            self.tl0 = (self.tl0 + 1) & 0xFF
        sync = 0x20 if self.index in SYNC else 0
        packets = []
        for k in range(self.packets):
            descriptor = bytes([
                0x90 if k == 0 else 0x80, 0xE0, 0x80 | self.picture_id >> 8,
                self.picture_id & 0xFF, self.tl0, temporal << 6 | sync,
            ])  # fmt: skip
            body = b"L%d F%d P%d" % (self.layer, self.frames, k)
            packets.append(make_rtp(self.seq, self.timestamp, 0xABC, payload=descriptor + body))
            self.seq = (self.seq + 1) & 0xFFFF
        return packets


class Feed:
    """A fan-out of VP8 encodings and the clock that feeds it."""

    def __init__(self, native: bool, layers: int = 1) -> None:
        self.fan = fastpath.create_fanout(
            native=native, history=256, max_age=5.0, layers=layers, vp8=True
        )
        self.now = 10.0

    def viewer(self, ceiling: int = ALL_TEMPORAL_LAYERS, layer: int = 0) -> Viewer:
        viewer = Viewer(self.fan, layer)
        viewer.slot.set_temporal_ceiling(ceiling)
        viewer.slot.activate(wait_for_key_frame=False)
        return viewer

    def send(self, packets: list[bytes], *, keyframe: bool = False, layer: int = 0) -> None:
        self.now += 1 / 30
        for k, data in enumerate(packets):
            self.fan.forward(data, 12, b"", keyframe and k == 0, self.now, layer)

    def nack(self, viewer: Viewer, seq: int) -> bool:
        return self.fan.retransmit(viewer.slot, seq, self.now)  # type: ignore[arg-type]


def frames_of(packets: list[RtpPacketView]) -> list[str]:
    """Which input frame and packet each output packet carries ("F3 P1")."""
    return [bytes(p.payload[6:]).decode().split(" ", 1)[1] for p in packets]


def temporal_ids(packets: list[RtpPacketView]) -> list[int]:
    return [vp8.picture_numbering(p.payload).temporal_id for p in packets]


def assert_continuous(packets: list[RtpPacketView], *, first_seq: int = INITIAL_SEQ) -> None:
    """Seqs +1 per packet; PictureID +1 per frame, TL0PICIDX +1 per TID 0 frame."""
    assert [p.sequence_number for p in packets] == [
        (first_seq + k) & 0xFFFF for k in range(len(packets))
    ]
    numbering = [vp8.picture_numbering(p.payload) for p in packets]
    for before, after in itertools.pairwise(numbering):
        same_frame = not (after.picture_id - before.picture_id) & 0x7FFF
        assert same_frame or (after.picture_id - before.picture_id) & 0x7FFF == 1
        tl0_step = (after.tl0 - before.tl0) & 0xFF
        assert tl0_step == (1 if after.temporal_id == 0 and not same_frame else 0)


@pytest.fixture(params=["python", "native"])
def native(request: pytest.FixtureRequest) -> bool:
    return bool(request.param == "native")


def test_by_default_every_frame_goes_out(native: bool) -> None:
    feed, encoding = Feed(native), L1T3()
    viewer = feed.viewer()
    for _ in range(8):
        feed.send(encoding.frame())
    sent = viewer.take()
    assert temporal_ids(sent) == [t for t in PATTERN for _ in range(2)]
    assert (viewer.slot.temporal_ceiling, viewer.slot.temporal_layer) == (3, 3)
    assert viewer.slot.packets_skipped == 0


@pytest.mark.parametrize("ceiling", [0, 1])
def test_a_ceiling_leaves_out_the_higher_frames_and_no_gap(native: bool, ceiling: int) -> None:
    feed, encoding = Feed(native), L1T3()
    viewer = feed.viewer(ceiling)
    feed.send(encoding.frame(keyframe=True), keyframe=True)
    for _ in range(16):
        feed.send(encoding.frame())
    sent = viewer.take()
    kept = [i for i in range(17) if PATTERN[i % 8] <= ceiling]
    assert frames_of(sent) == [f"F{i + 1} P{k}" for i in kept for k in range(2)]
    assert set(temporal_ids(sent)) == set(range(ceiling + 1))
    assert_continuous(sent)  # across the seq, PictureID and TL0PICIDX wraps
    assert viewer.slot.packets_skipped == 2 * (17 - len(kept))
    assert viewer.slot.packets_dropped == 0  # that counts failed sends only


def test_timestamps_are_the_inputs_a_left_out_frame_is_a_longer_interval(native: bool) -> None:
    feed, encoding = Feed(native), L1T3(packets=1)
    viewer = feed.viewer(0)
    for _ in range(9):
        feed.send(encoding.frame())
    stamps = [p.timestamp for p in viewer.take()]
    assert [(b - a) & 0xFFFFFFFF for a, b in itertools.pairwise(stamps)] == [
        4 * FRAME, 4 * FRAME,
    ]  # fmt: skip


def test_going_down_takes_effect_at_the_next_frame(native: bool) -> None:
    feed, encoding = Feed(native), L1T3()
    viewer = feed.viewer()
    feed.send(encoding.frame())  # TID 0
    first, second = encoding.frame()  # TID 2
    feed.send([first])
    viewer.slot.set_temporal_ceiling(0)  # mid-frame: the frame started goes out whole
    assert viewer.slot.temporal_layer == 0
    feed.send([second])
    feed.send(encoding.frame())  # TID 1: left out
    feed.send(encoding.frame())  # TID 2: left out
    feed.send(encoding.frame())  # TID 0
    sent = viewer.take()
    assert frames_of(sent) == ["F1 P0", "F1 P1", "F2 P0", "F2 P1", "F5 P0", "F5 P1"]
    assert_continuous(sent)


def test_going_up_waits_for_a_layer_sync_frame_not_a_tid_0_one(native: bool) -> None:
    feed, encoding = Feed(native), L1T3(packets=1)
    viewer = feed.viewer(0)
    for _ in range(3):  # the pattern's TID 0 and its two sync frames, left out
        feed.send(encoding.frame())
    viewer.slot.set_temporal_ceiling(2)
    assert (viewer.slot.temporal_ceiling, viewer.slot.temporal_layer) == (2, 0)
    for _ in range(9):  # TIDs 2 0 2 1 2 | 0 2(Y) 1(Y) 2
        feed.send(encoding.frame())
    sent = viewer.take()
    # The TID 0 frame at F5 does not open the layers above: F6-F8 reference the
    # pattern's TID 1 at F3, which the viewer never got. F10, a sync frame, does.
    assert frames_of(sent) == [f"F{i} P0" for i in (1, 5, 9, 10, 11, 12)]
    assert viewer.slot.temporal_layer == 2
    assert_continuous(sent)


def test_going_up_one_layer_at_its_sync_frame(native: bool) -> None:
    feed, encoding = Feed(native), L1T3(packets=1)
    viewer = feed.viewer(0)
    for _ in range(4):
        feed.send(encoding.frame())
    viewer.slot.set_temporal_ceiling(1)
    for _ in range(8):
        feed.send(encoding.frame())
    sent = viewer.take()
    assert frames_of(sent) == [f"F{i} P0" for i in (1, 5, 9, 11)]  # F11: TID 1 with Y
    assert viewer.slot.temporal_layer == 1


def test_a_key_frame_opens_every_layer_up_to_the_ceiling(native: bool) -> None:
    feed, encoding = Feed(native), L1T3(packets=1)
    viewer = feed.viewer(0)
    for _ in range(4):
        feed.send(encoding.frame())
    viewer.slot.set_temporal_ceiling(2)
    feed.send(encoding.frame(keyframe=True), keyframe=True)
    assert viewer.slot.temporal_layer == 2
    for _ in range(3):
        feed.send(encoding.frame())
    assert frames_of(viewer.take()) == [f"F{i} P0" for i in (1, 5, 6, 7, 8)]


def test_a_late_packet_of_a_sent_frame_gets_the_seq_kept_for_it(native: bool) -> None:
    feed, encoding = Feed(native), L1T3(packets=3)
    viewer = feed.viewer(1)
    feed.send(encoding.frame())  # TID 0
    frame = encoding.frame()  # TID 2: left out
    feed.send(frame)
    tid1 = encoding.frame()
    feed.send([tid1[0], tid1[2]])  # its middle packet is late
    feed.send(encoding.frame())  # TID 2: left out
    feed.send(encoding.frame())  # TID 0
    feed.send([tid1[1]])  # an upstream retransmission, two frames later
    sent = viewer.take()
    assert frames_of(sent) == ["F1 P0", "F1 P1", "F1 P2", "F3 P0", "F3 P2", "F5 P0", "F5 P1",
                               "F5 P2", "F3 P1"]  # fmt: skip
    by_frame = dict(zip(frames_of(sent), sent, strict=True))
    assert by_frame["F3 P1"].sequence_number == INITIAL_SEQ + 4
    assert_continuous(sorted(sent, key=lambda p: (p.sequence_number - INITIAL_SEQ) & 0xFFFF))


def test_a_late_packet_of_a_left_out_frame_is_left_out(native: bool) -> None:
    feed, encoding = Feed(native), L1T3(packets=3)
    viewer = feed.viewer(0)
    feed.send(encoding.frame())  # TID 0
    left_out = encoding.frame()  # TID 2
    feed.send([left_out[0], left_out[2]])  # its middle packet is late
    feed.send(encoding.frame())  # TID 1
    feed.send(encoding.frame())  # TID 2
    feed.send(encoding.frame())  # TID 0
    feed.send([left_out[1]])
    feed.send([left_out[0]])  # and a duplicate of one already left out
    sent = viewer.take()
    assert frames_of(sent) == ["F1 P0", "F1 P1", "F1 P2", "F5 P0", "F5 P1", "F5 P2"]
    assert_continuous(sent)
    assert viewer.slot.packets_skipped == 2 + 3 + 3 + 1 + 1


def test_a_packet_lost_inside_a_left_out_frame_leaves_no_gap(native: bool) -> None:
    feed, encoding = Feed(native), L1T3(packets=4)
    viewer = feed.viewer(0)
    feed.send(encoding.frame())  # TID 0
    left_out = encoding.frame()
    feed.send([left_out[0], left_out[3]])  # the two in between are lost...
    feed.send(encoding.frame())
    feed.send(encoding.frame())
    feed.send(encoding.frame())  # TID 0
    sent = viewer.take()
    assert_continuous(sent)  # ...and belong to the frame left out: no seq waits for them
    feed.send(left_out[1:3])  # recovered upstream, late: still left out
    assert viewer.take() == []


def test_a_frame_lost_upstream_and_recovered_late_fills_its_place(native: bool) -> None:
    feed, encoding = Feed(native), L1T3(packets=2)
    viewer = feed.viewer(1)
    feed.send(encoding.frame())  # TID 0
    lost = encoding.frame()  # TID 2, its PictureID left free until known
    feed.send(encoding.frame())  # TID 1
    feed.send(lost)  # never decided: forwarded into the seqs and PictureID kept for it
    sent = viewer.take()
    assert frames_of(sent) == ["F1 P0", "F1 P1", "F3 P0", "F3 P1", "F2 P0", "F2 P1"]
    assert_continuous(sorted(sent, key=lambda p: p.sequence_number - INITIAL_SEQ))


def test_a_nack_after_left_out_frames_resends_the_packet_as_first_sent(native: bool) -> None:
    feed, encoding = Feed(native), L1T3(packets=2)
    viewer = feed.viewer(0)
    for _ in range(12):
        feed.send(encoding.frame())
    sent = viewer.take()
    assert len(sent) == 6
    for packet in reversed(sent):
        assert feed.nack(viewer, packet.sequence_number)
        (again,) = viewer.take()
        assert again.data == packet.data
    assert not feed.nack(viewer, sent[-1].sequence_number + 1)  # never given
    assert not feed.nack(viewer, sent[0].sequence_number - 1)  # before the epoch


def test_a_nack_for_a_seq_left_free_by_a_late_left_out_packet_is_refused(native: bool) -> None:
    feed, encoding = Feed(native), L1T3(packets=2)
    viewer = feed.viewer(0)
    feed.send(encoding.frame())  # TID 0
    left_out = encoding.frame()  # TID 2
    feed.send(left_out[1:])  # decided on its second packet: the first one's seq stays free
    feed.send(encoding.frame())
    feed.send(left_out[:1])  # in the history now, but not the viewer's
    feed.send(encoding.frame())
    feed.send(encoding.frame())  # TID 0
    sent = viewer.take()
    assert frames_of(sent) == ["F1 P0", "F1 P1", "F5 P0", "F5 P1"]
    free = INITIAL_SEQ + 2  # F2 P0's output seq: a gap the viewer may NACK
    assert [p.sequence_number for p in sent] == [INITIAL_SEQ, INITIAL_SEQ + 1, free + 1, free + 2]
    assert not feed.nack(viewer, free)


def test_the_ceiling_holds_across_an_encoding_switch(native: bool) -> None:
    feed = Feed(native, layers=2)
    low, high = L1T3(layer=0), L1T3(layer=1, seq=100)
    viewer = feed.viewer(1)
    for _ in range(4):
        feed.send(low.frame(), layer=0)
        feed.send(high.frame(), layer=1)
    viewer.slot.set_target_layer(1)
    feed.send(low.frame(), layer=0)
    feed.send(high.frame(keyframe=True), keyframe=True, layer=1)
    for _ in range(4):
        feed.send(low.frame(), layer=0)
        feed.send(high.frame(), layer=1)
    sent = viewer.take()
    assert [bytes(p.payload[6:8]) for p in sent] == [b"L0"] * 6 + [b"L1"] * 6
    assert temporal_ids(sent) == [0, 0, 1, 1, 0, 0] * 2
    assert_continuous(sent)


def test_pause_and_resume_with_a_ceiling_continues_the_numbering(native: bool) -> None:
    feed, encoding = Feed(native), L1T3()
    viewer = feed.viewer(0)
    for _ in range(6):
        feed.send(encoding.frame())
    viewer.slot.deactivate()
    for _ in range(4):
        feed.send(encoding.frame())
    viewer.slot.activate(wait_for_key_frame=True)
    feed.send(encoding.frame())
    feed.send(encoding.frame(keyframe=True), keyframe=True)
    for _ in range(4):
        feed.send(encoding.frame())
    sent = viewer.take()
    assert frames_of(sent) == [f"F{i} P{k}" for i in (1, 5, 12, 16) for k in range(2)]
    assert_continuous(sent)


def test_packets_without_a_temporal_id_are_never_left_out(native: bool) -> None:
    feed = Feed(native)
    viewer = feed.viewer(0)
    for seq in range(4):  # PictureID but no T: nothing says which layer
        descriptor = bytes([0x90, 0x80, 0x80, seq])
        feed.fan.forward(make_rtp(seq, seq * FRAME, 1, payload=descriptor + b"x"), 12, b"",
                         False, feed.now, 0)  # fmt: skip
    for seq in range(4, 8):  # no descriptor extensions at all
        feed.fan.forward(make_rtp(seq, seq * FRAME, 1, payload=b"\x10x"), 12, b"", False,
                         feed.now, 0)  # fmt: skip
    assert len(viewer.take()) == 8


def test_a_fan_out_without_vp8_numbering_ignores_the_ceiling(native: bool) -> None:
    fan = fastpath.create_fanout(native=native, history=16, max_age=5.0)
    viewer = Viewer(fan, 0)
    viewer.slot.set_temporal_ceiling(0)
    viewer.slot.activate(wait_for_key_frame=False)
    encoding = L1T3()
    for packet in encoding.frame() + encoding.frame():
        fan.forward(packet, 12, b"", False, 1.0, 0)
    assert len(viewer.take()) == 4


def test_temporal_ceilings_out_of_range_are_refused(native: bool) -> None:
    viewer = Feed(native).viewer()
    for ceiling in (-1, 4):
        with pytest.raises(ValueError):
            viewer.slot.set_temporal_ceiling(ceiling)
    assert viewer.slot.temporal_ceiling == ALL_TEMPORAL_LAYERS


def test_late_packets_older_than_the_runs_remembered_are_refused(native: bool) -> None:
    feed, encoding = Feed(native), L1T3(packets=2)
    viewer = feed.viewer(1)
    first = encoding.frame()
    feed.send(first[:1])  # TID 0, its second packet late
    for _ in range(2 * RANGES + 2):  # one run of TID 2 left out every other frame
        feed.send(encoding.frame())
    sent = viewer.take()
    feed.send(first[1:])  # the seqs skipped below it are forgotten: refused
    assert viewer.take() == []
    assert not feed.nack(viewer, sent[0].sequence_number)
    assert feed.nack(viewer, sent[-1].sequence_number)


def test_skipped_numbers_map_both_ways_like_counting_them() -> None:
    for trial in range(300):
        rnd = random.Random(trial)
        runs, skipped, number = SkippedNumbers(), set[int](), rnd.randrange(-5, 5)
        start = number
        for _ in range(rnd.randrange(1, 300)):
            if rnd.random() < 0.4:
                count = rnd.randrange(1, 4)
                runs.add(number, number + count - 1, number, True)
                skipped |= set(range(number, number + count))
                number += count
            number += 1
        for seq in range(start, number):
            below = runs.below(seq)
            if seq in skipped or seq < runs.floor:
                assert below == -1
            else:
                assert below == sum(1 for s in skipped if s < seq)
                assert runs.expand(seq - below) == seq
