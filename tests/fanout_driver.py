"""Drives the Python and the native fan-out with the same random stream of
packets and control calls, collecting what each would put on the wire."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from sfu import fastpath
from sfu.fanout import CallableEgress, FanOut, FanOutSlot
from sfu.srtp import SessionKeys, SrtpProfile, SrtpSender


def run_both(
    profile: SrtpProfile | None, seed: int, steps: int = 3000
) -> tuple[list[bytes], list[bytes]]:
    """`profile` None: plain RTP, as on a pipe between workers."""
    rnd = random.Random(seed)
    python_out: list[bytes] = []
    protect: Callable[[bytes], bytes]
    if profile is None:
        protect = bytes
        egress = fastpath.native_egress(
            profile="NONE", key=b"", salt=b"", auth_key=b"", fd=-1, address=("", 0)
        )
    else:
        master = bytes(rnd.getrandbits(8) for _ in range(profile.key_length + profile.salt_length))
        keys = SessionKeys.from_master(profile, master)
        protect = SrtpSender(keys).protect
        egress = fastpath.native_egress(
            profile=str(profile), key=keys.rtp_key, salt=keys.rtp_salt, auth_key=keys.rtp_auth,
            fd=-1, address=("", 0),
        )  # fmt: skip

    def send(packet: bytes) -> bool:
        python_out.append(protect(packet))
        return True

    python = FanOut(history=64, max_age=2.0)
    native = fastpath.NativeFanOut(history=64, max_age=2.0)
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
        slot = FanOutSlot(egress=CallableEgress(send), **params)
        python.add(slot)
        pairs.append((slot, native.add_slot(fastpath.FanOutSlotSpec(**params), egress)))
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
    for slot, twin in pairs:
        assert (slot.active, slot.waiting_key_frame, slot.key_frame_at) == (
            twin.active, twin.waiting_key_frame, twin.key_frame_at,
        )  # fmt: skip
        assert (slot.packets_sent, slot.bytes_sent, slot.payload_bytes_sent) == (
            twin.packets_sent, twin.bytes_sent, twin.payload_bytes_sent,
        )  # fmt: skip
    return python_out, list(egress.take_captured())
