"""Simulcast layers and VP8 picture numbering in the fan-out, for both the Python
reference and the native fan-out: a viewer moves to its target layer at that layer's
key frame and keeps seeing one stream (sequence numbers, timestamps, PictureID and
TL0PICIDX continue)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pytest

from sfu import fanout, fastpath
from sfu.native_types import NativeEgress
from sfu.rtp import vp8
from sfu.rtp.header import RtpPacketView
from tests.packets import make_rtp, parse_rtp

CLOCK = 90000
FPS = 30
FRAME = CLOCK // FPS  # timestamp ticks between pictures
INITIAL_SEQ = 1000
INITIAL_TS = 50000


def vp8_packet(
    seq: int, ts: int, picture_id: int, tl0: int | None, *, wide: bool, body: bytes
) -> bytes:
    """RTP carrying a VP8 descriptor (RFC 7741 §4.2): X and S set; I with a 15-bit
    (M set) or 7-bit PictureID; L and T with TL0PICIDX and TID 0 when `tl0` is given."""
    descriptor = bytearray([0x90, 0xE0 if tl0 is not None else 0x80])
    if wide:
        descriptor += bytes([0x80 | picture_id >> 8, picture_id & 0xFF])
    else:
        descriptor.append(picture_id & 0x7F)
    if tl0 is not None:
        descriptor += bytes([tl0, 0x00])
    return make_rtp(seq, ts, 0xABC, payload=bytes(descriptor) + body)


@dataclass
class Encoding:
    """One simulcast layer as its publisher numbers it: one packet per picture."""

    index: int
    seq: int
    origin: int  # its RTP timestamp at capture time 0
    picture_id: int
    tl0: int = 0
    wide: bool = True

    def packet(self, capture: float) -> bytes:
        ts = (self.origin + round(capture * CLOCK)) & 0xFFFFFFFF
        data = vp8_packet(
            self.seq, ts, self.picture_id, self.tl0, wide=self.wide, body=b"L%d" % self.index
        )
        self.seq = (self.seq + 1) & 0xFFFF
        self.picture_id = (self.picture_id + 1) & (0x7FFF if self.wide else 0x7F)
        self.tl0 = (self.tl0 + 1) & 0xFF
        return data


class Viewer:
    """One slot of the fan-out and the packets it was sent."""

    def __init__(self, fan: fastpath.AnyFanOut, layer: int) -> None:
        spec = fastpath.FanOutSlotSpec(
            ssrc=0x5EE, payload_type=100, mid_element=b"", clock_rate=CLOCK,
            initial_sequence=INITIAL_SEQ, initial_timestamp=INITIAL_TS, layer=layer,
        )  # fmt: skip
        self._sent: list[bytes] = []
        self._native: NativeEgress | None = None
        if isinstance(fan, fastpath.NativeFanOut):
            self._native = fastpath.native_egress(
                profile="NONE", key=b"", salt=b"", auth_key=b"", fd=-1, address=("", 0)
            )
            self.slot: fastpath.AnyFanOutSlot = fan.add_slot(spec, self._native)
        else:
            self.slot = fan.add_slot(spec, fanout.CallableEgress(self._capture))

    def _capture(self, packet: bytes) -> bool:
        self._sent.append(packet)
        return True

    def take(self) -> list[RtpPacketView]:
        if self._native is not None:
            self._sent += self._native.take_captured()
        sent, self._sent = self._sent, []
        return [parse_rtp(p) for p in sent]


class Stream:
    """A simulcast publisher and one fan-out: each tick is one picture on every layer
    (lowest first unless `order` says), captured 1/FPS s after the last one and
    arriving `delay` s after its capture."""

    def __init__(self, native: bool, encodings: list[Encoding]) -> None:
        self.fan = fastpath.create_fanout(
            native=native, history=64, max_age=5.0, layers=len(encodings), vp8=True
        )
        assert self.fan.native_path == native
        self.encodings = encodings
        self.capture = 10.0
        self.inputs: list[bytes] = []

    def viewer(self, layer: int = 0, *, active: bool = True) -> Viewer:
        viewer = Viewer(self.fan, layer)
        if active:
            viewer.slot.activate(wait_for_key_frame=False)
        return viewer

    def tick(
        self, keyframes: Iterable[int] = (), order: Iterable[int] | None = None, delay: float = 0.0
    ) -> None:
        self.capture += 1 / FPS
        key = set(keyframes)
        for index in range(len(self.encodings)) if order is None else order:
            data = self.encodings[index].packet(self.capture)
            self.inputs.append(data)
            self.fan.forward(data, 12, b"", index in key, self.capture + delay, index)


def simulcast(
    native: bool, *, wide: bool = True, picture_ids: tuple[int, ...] = (100, 1, 20000)
) -> Stream:
    """Three encodings with unrelated sequence numbers, timestamp origins and numbering."""
    encodings = [
        Encoding(0, seq=3000, origin=1000, picture_id=picture_ids[0], tl0=5, wide=wide),
        Encoding(1, seq=40000, origin=0xFFFF0000, picture_id=picture_ids[1], tl0=77, wide=wide),
        Encoding(2, seq=65530, origin=777777, picture_id=picture_ids[2], tl0=200, wide=wide),
    ]
    return Stream(native, encodings)


def layers_of(packets: list[RtpPacketView]) -> list[int]:
    return [int(p.payload[-1:]) for p in packets]


def numbering(packet: RtpPacketView) -> tuple[int, int]:
    found = vp8.picture_numbering(packet.payload)
    assert found.picture_id_at >= 0 and found.tl0_at >= 0
    return found.picture_id, found.tl0


@pytest.fixture(params=["python", "native"])
def native(request: pytest.FixtureRequest) -> bool:
    return bool(request.param == "native")


def test_a_slot_keeps_its_layer_until_the_target_layers_key_frame_then_only_that_layer(
    native: bool,
) -> None:
    stream = simulcast(native)
    viewer = stream.viewer(layer=0)
    stream.tick()
    viewer.slot.set_target_layer(2)
    stream.tick(keyframes={0, 1})  # other layers' key frames do not move it
    stream.tick()
    assert layers_of(viewer.take()) == [0, 0, 0]
    assert (viewer.slot.layer, viewer.slot.target_layer) == (0, 2)
    stream.tick(keyframes={2})  # layer 0's picture comes first, then the switch
    stream.tick(keyframes={0, 1})
    stream.tick()
    assert layers_of(viewer.take()) == [0, 2, 2, 2]
    assert (viewer.slot.layer, viewer.slot.target_layer) == (2, 2)


def test_packets_of_a_layer_the_slot_is_not_on_are_never_sent(native: bool) -> None:
    stream = simulcast(native)
    on_one = stream.viewer(layer=1)
    moving = stream.viewer(layer=0)
    moving.slot.set_target_layer(2)
    for _ in range(3):
        stream.tick(keyframes={0, 1})
    stream.tick(keyframes={0, 1, 2})
    stream.tick(keyframes={0, 1})
    assert layers_of(on_one.take()) == [1] * 5
    assert layers_of(moving.take()) == [0, 0, 0, 0, 2, 2]


def test_output_sequence_numbers_continue_across_a_switch(native: bool) -> None:
    stream = simulcast(native)
    viewer = stream.viewer(layer=0)
    stream.tick()
    stream.tick()
    viewer.slot.set_target_layer(2)
    stream.tick(keyframes={2})  # layer 2's sequence numbers wrap here
    stream.tick()
    stream.tick()
    sent = viewer.take()
    assert layers_of(sent) == [0, 0, 0, 2, 2, 2]
    assert [p.sequence_number for p in sent] == list(range(INITIAL_SEQ, INITIAL_SEQ + 6))


def test_timestamps_continue_on_the_common_timeline_when_the_layers_shifts_are_known(
    native: bool,
) -> None:
    stream = simulcast(native)
    stream.fan.set_timestamp_shift(2, stream.encodings[0].origin - stream.encodings[2].origin)
    viewer = stream.viewer(layer=0)
    stream.tick()
    stream.tick()
    viewer.slot.set_target_layer(2)
    # The key frame arrives late: the wall clock would put it 0.25 s later.
    stream.tick(keyframes={2}, order=[2, 0], delay=0.25)
    stream.tick(order=[2, 0])
    sent = viewer.take()
    assert layers_of(sent) == [0, 0, 2, 2]
    assert [p.timestamp for p in sent] == [INITIAL_TS + FRAME * k for k in range(4)]


@pytest.mark.parametrize("late", [0.0, 0.25], ids=["at-once", "a-quarter-second-late"])
def test_a_key_frame_for_a_capture_time_already_sent_moves_time_one_tick_on(
    native: bool, late: float
) -> None:
    stream = simulcast(native)
    stream.fan.set_timestamp_shift(2, stream.encodings[0].origin - stream.encodings[2].origin)
    viewer = stream.viewer(layer=0)
    stream.tick()
    viewer.slot.set_target_layer(2)
    # Layer 0's picture of this instant goes out first; layer 2's key frame of the same
    # instant follows, at once or late (key frames are big): one tick on, whatever the
    # wall clock says.
    stream.tick(order=[0])
    key = stream.encodings[2].packet(stream.capture)
    stream.fan.forward(key, 12, b"", True, stream.capture + late, 2)
    stream.tick(order=[2])
    assert [p.timestamp for p in viewer.take()] == [
        INITIAL_TS, INITIAL_TS + FRAME, INITIAL_TS + FRAME + 1, INITIAL_TS + 2 * FRAME + 1,
    ]  # fmt: skip


@pytest.mark.parametrize("shift", ["never set", "forgotten", "ten seconds off"])
def test_timestamps_continue_by_the_wall_clock_when_the_alignment_is_unknown_or_stale(
    native: bool, shift: str
) -> None:
    stream = simulcast(native)
    true_shift = stream.encodings[0].origin - stream.encodings[2].origin
    if shift == "forgotten":
        stream.fan.set_timestamp_shift(2, true_shift)
        stream.fan.set_timestamp_shift(2, None)
    elif shift == "ten seconds off":
        stream.fan.set_timestamp_shift(2, true_shift + 10 * CLOCK)
    viewer = stream.viewer(layer=0)
    stream.tick()
    stream.tick()
    viewer.slot.set_target_layer(2)
    stream.tick(keyframes={2}, order=[2, 0], delay=0.25)
    stream.tick(order=[2, 0], delay=0.25)
    sent = viewer.take()
    assert layers_of(sent) == [0, 0, 2, 2]
    after_switch = INITIAL_TS + FRAME + round((1 / FPS + 0.25) * CLOCK)
    assert [p.timestamp for p in sent] == [
        INITIAL_TS, INITIAL_TS + FRAME, after_switch, after_switch + FRAME,
    ]  # fmt: skip


def test_vp8_picture_id_and_tl0picidx_continue_across_a_switch(native: bool) -> None:
    stream = simulcast(native)
    viewer = stream.viewer(layer=0)
    for _ in range(3):
        stream.tick()
    viewer.slot.set_target_layer(2)
    stream.tick(keyframes={2}, order=[2, 0])
    stream.tick()
    sent = viewer.take()
    assert layers_of(sent) == [0, 0, 0, 2, 2]
    assert [numbering(p) for p in sent] == [(100 + k, 5 + k) for k in range(5)]


def test_vp8_numbering_continues_across_deactivate_and_activate(native: bool) -> None:
    stream = Stream(native, [Encoding(0, seq=10, origin=0, picture_id=500, tl0=250)])
    viewer = stream.viewer()
    stream.tick()
    stream.tick()
    viewer.slot.deactivate()
    for _ in range(5):  # pictures 502..506 are not forwarded
        stream.tick()
    viewer.slot.activate(wait_for_key_frame=True)
    stream.tick()
    stream.tick(keyframes={0})
    stream.tick()
    sent = viewer.take()
    assert [numbering(p) for p in sent] == [(500, 250), (501, 251), (502, 252), (503, 253)]
    assert [p.sequence_number for p in sent] == list(range(INITIAL_SEQ, INITIAL_SEQ + 4))


def test_the_first_epochs_packets_carry_the_input_payload_unchanged(native: bool) -> None:
    stream = simulcast(native)
    low, high = stream.viewer(layer=0), stream.viewer(layer=2)
    for _ in range(4):
        stream.tick(keyframes={0, 2})
    inputs = [parse_rtp(data).payload for data in stream.inputs]
    assert [p.payload for p in low.take()] == inputs[0::3]
    assert [p.payload for p in high.take()] == inputs[2::3]


def test_a_switch_rewrites_only_the_numbering_in_the_payload(native: bool) -> None:
    stream = simulcast(native)
    viewer = stream.viewer(layer=0)
    stream.tick()
    viewer.slot.set_target_layer(2)
    stream.tick(keyframes={2}, order=[2])
    switched, original = viewer.take()[-1].payload, parse_rtp(stream.inputs[-1]).payload
    assert len(switched) == len(original)
    # X S | I L T | M + PictureID (2) | TL0PICIDX | TID: only bytes 2..4 change.
    assert switched[:2] + switched[5:] == original[:2] + original[5:]
    assert numbering(parse_rtp(b"\x80" * 12 + switched)) == (101, 6)


@pytest.mark.parametrize("wraps", ["before the switch", "after the switch"])
@pytest.mark.parametrize(("wide", "last"), [(False, 0x7F), (True, 0x7FFF)], ids=["7-bit", "15-bit"])
def test_a_picture_id_wraps_at_its_width_and_the_renumbering_follows(
    native: bool, wide: bool, last: int, wraps: str
) -> None:
    first = last - 1 if wraps == "before the switch" else last - 3
    stream = simulcast(native, wide=wide, picture_ids=(first, 9, 40))
    viewer = stream.viewer(layer=0)
    for _ in range(3):
        stream.tick()
    viewer.slot.set_target_layer(2)
    stream.tick(keyframes={2}, order=[2])
    stream.tick(order=[2])
    sent = viewer.take()
    assert layers_of(sent) == [0, 0, 0, 2, 2]
    expected = [(first + k) & last for k in range(5)]
    assert [vp8.picture_numbering(p.payload).picture_id for p in sent] == expected
    # The field keeps its width: M stays as the input had it.
    assert {bool(p.payload[2] & 0x80) for p in sent} == {wide}


def test_a_retransmission_after_a_switch_answers_only_the_current_epoch(native: bool) -> None:
    stream = simulcast(native)
    viewer = stream.viewer(layer=0)
    stream.tick()
    stream.tick()
    viewer.slot.set_target_layer(2)
    stream.tick(keyframes={2}, order=[2])
    stream.tick(order=[2])
    sent = viewer.take()
    assert layers_of(sent) == [0, 0, 2, 2]
    old, new = sent[1], sent[3]
    fan = stream.fan
    assert not fan.retransmit(viewer.slot, old.sequence_number, stream.capture)  # type: ignore[arg-type]
    assert fan.retransmit(viewer.slot, new.sequence_number, stream.capture)  # type: ignore[arg-type]
    (again,) = viewer.take()
    assert again.data == new.data  # renumbered as first sent
    assert numbering(again) != numbering(parse_rtp(stream.inputs[-1]))


def test_a_slot_that_is_not_flowing_moves_to_its_target_at_once(native: bool) -> None:
    stream = simulcast(native)
    idle = stream.viewer(layer=0, active=False)
    idle.slot.set_target_layer(1)
    assert (idle.slot.layer, idle.slot.target_layer) == (1, 1)
    waiting = stream.viewer(layer=0, active=False)
    waiting.slot.activate(wait_for_key_frame=True)
    waiting.slot.set_target_layer(2)
    assert waiting.slot.layer == 2
    idle.slot.activate(wait_for_key_frame=True)
    stream.tick(keyframes={0})
    stream.tick(keyframes={1, 2})
    stream.tick()
    assert layers_of(idle.take()) == [1, 1]
    assert layers_of(waiting.take()) == [2, 2]


def test_activating_starts_a_slot_on_its_target_layer(native: bool) -> None:
    stream = simulcast(native)
    viewer = stream.viewer(layer=0)
    stream.tick()
    viewer.slot.set_target_layer(2)  # flowing: waits for layer 2's key frame
    viewer.slot.deactivate()
    assert (viewer.slot.layer, viewer.slot.target_layer) == (0, 2)
    viewer.slot.activate(wait_for_key_frame=True)
    assert viewer.slot.layer == 2
    stream.tick(keyframes={0, 1})
    stream.tick(keyframes={2})
    stream.tick()
    sent = viewer.take()
    assert layers_of(sent) == [0, 2, 2]
    assert [numbering(p) for p in sent] == [(100, 5), (101, 6), (102, 7)]


def test_layers_out_of_range_are_refused(native: bool) -> None:
    stream = simulcast(native)
    viewer = stream.viewer(layer=2)
    data = stream.encodings[0].packet(stream.capture)
    for layer in (3, -1):
        with pytest.raises(ValueError):
            stream.fan.forward(data, 12, b"", True, stream.capture, layer)
        with pytest.raises(ValueError):
            viewer.slot.set_target_layer(layer)
        with pytest.raises(ValueError):
            stream.fan.set_timestamp_shift(layer, 0)
    with pytest.raises(ValueError):
        Viewer(stream.fan, layer=3)
    for layers in (0, fanout.MAX_LAYERS + 1):
        with pytest.raises(ValueError):
            fastpath.create_fanout(native=native, history=0, max_age=1.0, layers=layers)
    assert viewer.take() == []
    assert (viewer.slot.layer, viewer.slot.target_layer) == (2, 2)
