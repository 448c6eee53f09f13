"""Drives the Python and the native fan-out with the same random stream of
packets and control calls, collecting what each would put on the wire.

With `layers` > 1 or `vp8`, the stream is a simulcast publisher's: each layer
has its own sequence numbers, timestamps and VP8 picture numbering, and the
viewers switch layers, get timestamp shifts (right, wrong and unknown) and
NACK across switches.

With `temporal`, the viewers also get VP8 temporal ceilings, lowered and raised at
random, on an L1T3 stream as Chromium sends it (TIDs 0 2 1 2, Y on the first TID 2
and TID 1 frame of each 8), with packets held back, reordered and repeated late (an
upstream retransmission), and NACKs across the frames left out.

With `stamp`, the viewers' transport stamps transport-wide sequence numbers (one
counter across the three slots, originals and retransmissions alike), and the two
send logs must agree too."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from sfu import fastpath
from sfu.fanout import CallableEgress, FanOut, FanOutSlot
from sfu.rtp.send_log import SendLog
from sfu.srtp import SessionKeys, SrtpProfile, SrtpSender
from tests.packets import parse_rtp

TRANSPORT_CC_ID = 3


def run_both(
    profile: SrtpProfile | None,
    seed: int,
    steps: int = 3000,
    *,
    layers: int = 1,
    vp8: bool = False,
    stamp: bool = False,
    temporal: bool = False,
) -> tuple[list[bytes], list[bytes]]:
    """`profile` None: plain RTP, as on a pipe between workers."""
    rnd = random.Random(seed)
    python_out: list[bytes] = []
    python_plain: list[bytes] = []
    protect: Callable[[bytes], bytes]
    stamp_id = TRANSPORT_CC_ID if stamp else 0
    if profile is None:
        protect = bytes
        egress = fastpath.native_egress(
            profile="NONE", key=b"", salt=b"", auth_key=b"", fd=-1, address=("", 0),
            transport_cc_id=stamp_id,
        )  # fmt: skip
    else:
        master = bytes(rnd.getrandbits(8) for _ in range(profile.key_length + profile.salt_length))
        keys = SessionKeys.from_master(profile, master)
        protect = SrtpSender(keys).protect
        egress = fastpath.native_egress(
            profile=str(profile), key=keys.rtp_key, salt=keys.rtp_salt, auth_key=keys.rtp_auth,
            fd=-1, address=("", 0), transport_cc_id=stamp_id,
        )  # fmt: skip
    overhead = profile.rtp_overhead if profile is not None else 0
    log = SendLog(TRANSPORT_CC_ID, overhead=overhead) if stamp else None

    def send(packet: bytes) -> bool:
        python_plain.append(packet)
        python_out.append(protect(packet))
        return True

    python_egress = CallableEgress(send, log)  # one transport: its slots share the numbering

    def same_logs() -> None:
        egress.flush()  # the native egress numbers and logs a copy as it leaves
        logged = egress.sent_packets(0, 0x10000)
        assert logged == python_egress.sent_packets(0, 0x10000)
        assert any(logged) == stamp

    python = FanOut(history=64, max_age=2.0, layers=layers, vp8=vp8)
    native = fastpath.NativeFanOut(history=64, max_age=2.0, layers=layers, vp8=vp8)
    simulcast = layers > 1 or vp8
    pairs: list[tuple[FanOutSlot, Any]] = []
    for i in range(3):
        params: dict[str, Any] = {
            "ssrc": 1000 + i,
            "payload_type": 96 + i,
            "mid_element": bytes([4 << 4 | 0]) + str(i).encode(),
            "clock_rate": 90000,
            "initial_sequence": rnd.randrange(65536),
            "initial_timestamp": rnd.getrandbits(32),
        }
        if simulcast:
            params["layer"] = rnd.randrange(layers)
        slot = FanOutSlot(egress=python_egress, **params)
        python.add(slot)
        pairs.append((slot, native.add_slot(fastpath.FanOutSlotSpec(**params), egress)))
    if simulcast:
        _drive_layers(rnd, python, native, pairs, layers, steps, temporal)
        _assert_same_state(pairs)
        if temporal:
            _assert_one_packet_per_output_seq(python_plain)
        same_logs()
        return python_out, list(egress.take_captured())
    seq, timestamp, now = rnd.randrange(65536), rnd.getrandbits(32), 1000.0
    for _ in range(steps):
        roll = rnd.random()
        slot, twin = rnd.choice(pairs)
        if roll < 0.03:
            wait = rnd.random() < 0.5
            slot.activate(wait_for_key_frame=wait)
            twin.activate(wait_for_key_frame=wait)
        elif roll < 0.05:
            slot.deactivate()
            twin.deactivate()
        elif roll < 0.10:
            out_seq = (slot.sequencer.last_output_seq - rnd.randrange(20)) & 0xFFFF
            if rnd.random() < 0.3:
                out_seq = rnd.randrange(65536)
            assert python.retransmit(slot, out_seq, now) == native.retransmit(twin, out_seq, now)
        else:
            if rnd.random() < 0.01:  # the publisher restarts with new numbering
                seq, timestamp = rnd.randrange(65536), rnd.getrandbits(32)
            sent_seq = (seq + rnd.randrange(-3, 2)) & 0xFFFF if rnd.random() < 0.1 else seq
            seq, timestamp = (seq + 1) & 0xFFFF, (timestamp + 3000) & 0xFFFFFFFF
            now += rnd.random() * 0.05
            marker = 0x80 if rnd.random() < 0.1 else 0
            padding = rnd.random() < 0.05
            payload = rnd.randbytes(rnd.randrange(1, 1200))
            if padding:
                payload += b"\x00\x00\x03"
            data = bytes([0xA0 if padding else 0x80, 96 | marker]) + sent_seq.to_bytes(2, "big")
            data += timestamp.to_bytes(4, "big") + (0xABC).to_bytes(4, "big") + payload
            ext = bytes([2 << 4 | 2]) + rnd.randbytes(3) if rnd.random() < 0.8 else b""
            keyframe = rnd.random() < 0.05
            python.forward(data, 12, ext, keyframe, now)
            native.native.forward(data, 12, ext, keyframe, now)
    _assert_same_state(pairs)
    same_logs()
    return python_out, list(egress.take_captured())


def _assert_same_state(pairs: list[tuple[FanOutSlot, Any]]) -> None:
    for slot, twin in pairs:
        assert (slot.active, slot.waiting_key_frame, slot.key_frame_at) == (
            twin.active, twin.waiting_key_frame, twin.key_frame_at,
        )  # fmt: skip
        assert (slot.layer, slot.target_layer) == (twin.layer, twin.target_layer)
        assert (slot.temporal_ceiling, slot.temporal_layer) == (
            twin.temporal_ceiling, twin.temporal_layer,
        )  # fmt: skip
        assert (slot.packets_sent, slot.bytes_sent, slot.payload_bytes_sent) == (
            twin.packets_sent, twin.bytes_sent, twin.payload_bytes_sent,
        )  # fmt: skip
        assert slot.packets_skipped == twin.packets_skipped


def _assert_one_packet_per_output_seq(sent: list[bytes]) -> None:
    """Left-out frames, reordering and late packets never give one output seq of a viewer
    to two different packets (a retransmission repeats the payload as first sent)."""
    payloads: dict[tuple[int, int], bytes] = {}
    for data in sent:
        packet = parse_rtp(data)
        key = (packet.ssrc, packet.sequence_number)
        assert payloads.setdefault(key, packet.payload) == packet.payload, key


class _Encoding:
    """One simulcast layer as its publisher sends it: its own sequence numbers, its
    own timestamp origin, its own VP8 PictureID (15 or 7 bits) and TL0PICIDX. With
    `disorder`, some packets arrive late: held back a few packets, or sent again."""

    def __init__(self, rnd: random.Random, disorder: bool = False) -> None:
        self.rnd = rnd
        self.wide = rnd.random() < 0.7
        self.disorder = disorder
        self.held: list[tuple[int, bytes, bool]] = []  # (packets to wait, packet, key frame)
        self.recent: list[tuple[bytes, bool]] = []
        self.restart()

    def restart(self) -> None:
        rnd = self.rnd
        self.seq = rnd.randrange(65536)
        self.origin = rnd.getrandbits(32)  # its timestamp at now == 0
        self.picture_id = rnd.randrange(1 << 15)
        self.tl0 = rnd.randrange(256)
        self.pictures = 0
        self.timestamp = 0

    def arriving(self, now: float) -> tuple[bytes, bool]:
        """The next packet to arrive and whether it starts a key frame."""
        if not self.disorder:
            return self.packet(now)
        rnd = self.rnd
        for index, (wait, data, keyframe) in enumerate(self.held):
            if wait <= 0:
                del self.held[index]
                return data, keyframe
            self.held[index] = (wait - 1, data, keyframe)
        if self.recent and rnd.random() < 0.04:  # an upstream retransmission, or a duplicate
            return rnd.choice(self.recent)
        data, keyframe = self.packet(now)
        self.recent = [*self.recent[-40:], (data, keyframe)]
        if rnd.random() < 0.06:  # overtaken by the next few
            self.held.append((rnd.randrange(1, 6), data, keyframe))
            data, keyframe = self.packet(now)
            self.recent.append((data, keyframe))
        return data, keyframe

    def packet(self, now: float) -> tuple[bytes, bool]:
        """The next packet (RTP header, a VP8 descriptor: usually X=1 with I, L, T, then
        payload) and whether it starts a key frame. Without `disorder`, some come with a
        wrong seq and the encoder restarts now and then; with it, seqs are the
        publisher's, so each output seq must carry one packet."""
        rnd = self.rnd
        if not self.disorder and rnd.random() < 0.002:  # the encoder restarts with new numbering
            self.restart()
        start = rnd.random() < 0.35 or not self.pictures
        keyframe = start and rnd.random() < 0.15
        if start:  # a new picture: temporal pattern 0 2 1 2, key frames start it over
            self.pictures = self.pictures + 8 - self.pictures % 8 if keyframe else self.pictures + 1
            self.picture_id = (self.picture_id + 1) & 0x7FFF
            temporal = (0, 2, 1, 2)[self.pictures % 4]
            if temporal == 0:
                self.tl0 = (self.tl0 + 1) & 0xFF
            self.timestamp = (self.origin + int(now * 90000)) & 0xFFFFFFFF
        temporal = (0, 2, 1, 2)[self.pictures % 4]
        sync = self.pictures % 8 in (1, 2)  # libwebrtc's layer sync frames (Y)
        roll = rnd.random()
        descriptor = bytearray([0x80 | (0x10 if start else 0), 0xE0])
        if self.wide:
            descriptor += bytes([0x80 | self.picture_id >> 8, self.picture_id & 0xFF])
        else:
            descriptor.append(self.picture_id & 0x7F)
        descriptor += bytes([self.tl0, temporal << 6 | 0x20 * sync])
        if roll < 0.03:  # no extensions
            descriptor = bytearray([0x10])
        elif roll < 0.06:  # PictureID only
            descriptor[1] = 0x80
            del descriptor[-2:]
        elif roll < 0.08:  # truncated: no numbering at all
            descriptor = descriptor[: rnd.randrange(1, len(descriptor))]
        payload = bytes(descriptor) + rnd.randbytes(rnd.randrange(0 if roll < 0.08 else 1, 900))
        sent_seq = self.seq
        if not self.disorder and rnd.random() < 0.1:
            sent_seq = (self.seq + rnd.randrange(-3, 2)) & 0xFFFF
        self.seq = (self.seq + 1) & 0xFFFF
        marker = 0x80 if rnd.random() < 0.1 else 0
        padding = rnd.random() < 0.05
        if padding:
            payload += b"\x00\x00\x03"
        data = bytes([0xA0 if padding else 0x80, 96 | marker]) + sent_seq.to_bytes(2, "big")
        data += self.timestamp.to_bytes(4, "big") + (0xABC).to_bytes(4, "big") + payload
        return data, keyframe


def _drive_layers(
    rnd: random.Random,
    python: FanOut,
    native: fastpath.NativeFanOut,
    pairs: list[tuple[FanOutSlot, Any]],
    layers: int,
    steps: int,
    temporal: bool = False,
) -> None:
    encodings = [_Encoding(rnd, disorder=temporal) for _ in range(layers)]
    now = 1000.0
    switches = renumbered = raised = 0
    for _ in range(steps):
        roll = rnd.random()
        slot, twin = rnd.choice(pairs)
        if roll < 0.12:
            if roll < 0.02:
                wait = rnd.random() < 0.7
                slot.activate(wait_for_key_frame=wait)
                twin.activate(wait_for_key_frame=wait)
            elif roll < 0.03:
                slot.deactivate()
                twin.deactivate()
            elif temporal and roll < 0.045:
                ceiling = rnd.choice((0, 0, 1, 1, 2, 3))
                slot.set_temporal_ceiling(ceiling)
                twin.set_temporal_ceiling(ceiling)
            elif roll < 0.06:
                layer = rnd.randrange(layers)
                slot.set_target_layer(layer)
                twin.set_target_layer(layer)
            elif roll < 0.075:
                layer = rnd.randrange(layers)
                kind = rnd.random()
                shift: int | None = encodings[0].origin - encodings[layer].origin  # the truth
                if kind < 0.15:
                    shift = None
                elif kind < 0.3:
                    shift = rnd.getrandbits(33) - (1 << 32)  # stale or wrong, any sign
                python.set_timestamp_shift(layer, shift)
                native.set_timestamp_shift(layer, shift)
            else:
                out_seq = (slot.sequencer.last_output_seq - rnd.randrange(20)) & 0xFFFF
                if rnd.random() < 0.2:
                    out_seq = rnd.randrange(65536)
                sent = python.retransmit(slot, out_seq, now)
                assert sent == native.retransmit(twin, out_seq, now)
            _assert_same_state(pairs)
            continue
        layer = rnd.randrange(layers)
        now += rnd.random() * 0.02
        data, keyframe = encodings[layer].arriving(now)
        ext = bytes([2 << 4 | 2]) + rnd.randbytes(3) if rnd.random() < 0.8 else b""
        before = [(s.layer, s.temporal_layer) for s, _ in pairs]
        python.forward(data, 12, ext, keyframe, now, layer)
        native.native.forward(data, 12, ext, keyframe, now, layer)
        switches += sum(s.layer != was for (s, _), (was, _) in zip(pairs, before, strict=True))
        raised += sum(
            s.temporal_layer > was for (s, _), (_, was) in zip(pairs, before, strict=True)
        )
        renumbered += any(s.picture_id_offset or s.tl0_offset for s, _ in pairs)
    # The stream must reach what it is meant to test.
    assert renumbered or not python._vp8
    assert switches or layers == 1
    if temporal:
        assert raised and all(s.packets_skipped for s, _ in pairs)
