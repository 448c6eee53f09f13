"""Lifecycle scenarios for the native fan-out, shared by the unit tests (normal build)
and the AddressSanitizer run (tests/contract/test_native_sanitized.py): slots removed
and added again, more slots than the first allocation, egresses closed with packets
queued, and sockets closed under a live egress."""

from __future__ import annotations

import socket
from typing import Any

from sfu import fastpath
from tests.packets import make_rtp

PLAIN = {"profile": "NONE", "key": b"", "salt": b"", "auth_key": b""}
SRTP = {"profile": "SRTP_AES128_CM_SHA1_80", "key": bytes(16), "salt": bytes(14),
        "auth_key": bytes(20)}  # fmt: skip
AUDIO_PT = 111


def plain_egress(fd: int, address: tuple[str, int]) -> Any:
    return fastpath.native_egress(**PLAIN, fd=fd, address=address)  # type: ignore[arg-type]


def _spec(ssrc: int) -> fastpath.FanOutSlotSpec:
    return fastpath.FanOutSlotSpec(ssrc=ssrc, payload_type=AUDIO_PT, mid_element=b"",
                             clock_rate=48000, initial_sequence=0, initial_timestamp=0)  # fmt: skip


def _forward(fan: fastpath.NativeFanOut, seqs: range) -> None:
    for seq in seqs:
        fan.native.forward(make_rtp(seq, seq * 960, 1, pt=AUDIO_PT), 12, b"", False, 1.0)


def _flush() -> int:
    return int(fastpath._native.flush_all())  # type: ignore[union-attr]


def close_with_packets_queued() -> tuple[tuple[int, int, int], int]:
    """Queue 5, close, forward 7 more to the closed egress, flush every way. Returns the
    egress's (sent, bytes, dropped) and the slot's dropped copies."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        egress = plain_egress(sender.fileno(), ("127.0.0.1", 9))
        fan = fastpath.NativeFanOut(history=8, max_age=2.0)
        slot = fan.add_slot(_spec(7), egress)
        slot.activate(wait_for_key_frame=False)
        _forward(fan, range(5))
        egress.close()
        _forward(fan, range(5, 12))  # the slot still names the closed egress
        egress.flush()
        _flush()
        egress.close()  # idempotent
        egress.flush()
        sent, sent_bytes, dropped = egress.stats()
        return (sent, sent_bytes, dropped), slot.counters()[3]


def many_slots_removed_and_added_again(count: int = 20) -> list[int]:
    """`count` slots (more than the first allocation of 8) on capture egresses, with
    temporal ceilings; every other one removed, then as many added again (with none);
    packets each live slot captured."""
    fan = fastpath.NativeFanOut(history=64, max_age=2.0)
    egresses = [plain_egress(-1, ("", 0)) for _ in range(count)]
    slots = [fan.add_slot(_spec(100 + n), egress) for n, egress in enumerate(egresses)]
    for n, slot in enumerate(slots):
        slot.set_temporal_ceiling(n % 3)  # audio: nothing to filter, but the state exists
        slot.activate(wait_for_key_frame=False)
    _forward(fan, range(3))
    for slot in slots[::2]:
        fan.remove(slot)
    _forward(fan, range(3, 6))  # queued for the survivors, removed ones are gone
    added = [plain_egress(-1, ("", 0)) for _ in range(count // 2)]
    for n, egress in enumerate(added):
        slot = fan.add_slot(_spec(500 + n), egress)
        assert slot.temporal_ceiling == 3  # a reused slot starts without one
        slot.activate(wait_for_key_frame=False)
    _forward(fan, range(6, 9))
    _flush()
    live = egresses[1::2] + added
    return [len(egress.take_captured()) for egress in live]


def socket_closed_under_a_live_egress() -> tuple[set[int], int]:
    """The transport's socket closes (its number may go to a new socket) while the
    egress still has packets to send. Returns the source ports the receiver saw and
    the port of the socket that took over the number."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2)
    original = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    original.bind(("127.0.0.1", 0))
    fd = original.fileno()
    egress = plain_egress(fd, receiver.getsockname())
    fan = fastpath.NativeFanOut(history=8, max_age=2.0)
    fan.add_slot(_spec(9), egress).activate(wait_for_key_frame=False)
    _forward(fan, range(3))
    original.close()
    newcomer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    newcomer.bind(("127.0.0.1", 0))
    try:
        _forward(fan, range(3, 6))
        _flush()
        sources = {receiver.recvfrom(2048)[1][1] for _ in range(6)}
        egress.close()
        return sources, newcomer.getsockname()[1]
    finally:
        newcomer.close()
        receiver.close()


def ssrcs_forgotten_while_sending(count: int = 20) -> tuple[int, int]:
    """Sinks for `count` SSRCs (past the table's first allocation) on one capture
    egress; half are removed and their SSRCs forgotten, then all forward again.
    Returns the SSRCs tracked after the forgetting and after more packets."""
    egress = fastpath.native_egress(**SRTP, fd=-1, address=("", 0))  # type: ignore[arg-type]
    fan = fastpath.NativeFanOut(history=8, max_age=2.0)
    slots = [fan.add_slot(_spec(300 + n), egress) for n in range(count)]
    for slot in slots:
        slot.activate(wait_for_key_frame=False)
    _forward(fan, range(3))
    for n, slot in enumerate(slots[::2]):
        fan.remove(slot)
        egress.forget(300 + 2 * n)
    egress.forget(300)  # twice: nothing left to drop
    after_forgetting = int(egress.tracked())
    _forward(fan, range(3, 6))
    egress.take_captured()
    return after_forgetting, int(egress.tracked())


def run_all() -> None:
    """Every scenario, for the sanitized build (asserts what the unit tests assert)."""
    (sent, _, dropped), refused = close_with_packets_queued()
    assert (sent, dropped, refused) == (0, 5, 7), (sent, dropped, refused)
    assert many_slots_removed_and_added_again() == [9] * 10 + [3] * 10
    sources, newcomer = socket_closed_under_a_live_egress()
    assert newcomer not in sources and len(sources) == 1, (sources, newcomer)
    assert ssrcs_forgotten_while_sending() == (10, 10)
