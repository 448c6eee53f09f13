"""The lossy viewer: the kernel loss filter on real sockets, and the NACK tracker."""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
from collections.abc import Iterator

import pytest

from benchmarks import loss, thin

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="Linux socket filters")

SENTINEL = b"\x01" * 100  # STUN's first byte: every loss filter keeps it


@contextlib.contextmanager
def _pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
        receiver.bind(("127.0.0.1", 0))
        sender.bind(("127.0.0.1", 0))
        yield receiver, sender
    finally:
        receiver.close()
        sender.close()


def _rtp(seq: int, payload_type: int = 96) -> bytes:
    return struct.pack("!BBHII", 0x80, payload_type, seq, 0, 1234) + bytes(20)


def _deliver(rate: float, datagrams: list[bytes]) -> list[bytes]:
    """Send through a loss filter, then the sentinel; return what arrived before it (in
    order on loopback, so nothing waits for a packet that might not come)."""
    with _pair() as (receiver, sender):
        thin.attach(receiver, loss.program(rate))
        arrived = []
        for start in range(0, len(datagrams), 200):  # in chunks: no buffer overflows
            for datagram in [*datagrams[start : start + 200], SENTINEL]:
                sender.sendto(datagram, receiver.getsockname())
            receiver.settimeout(30.0)
            while (data := receiver.recv(2048)) != SENTINEL:
                arrived.append(data)
        return arrived


OTHERS = [
    b"\x00\x01" + bytes(18),  # STUN binding request
    b"\x16\xfe\xfd" + bytes(20),  # DTLS handshake
    bytes([0x80, 201]) + bytes(30),  # RTCP receiver report
    bytes([0x81, 205]) + bytes(14),  # RTCP NACK
    bytes([0x81, 206]) + bytes(10),  # RTCP PLI
    bytes([0x80, 200]) + bytes(30),  # RTCP sender report
]


@linux_only
def test_no_loss_keeps_everything() -> None:
    sent = [_rtp(i) for i in range(300)] + OTHERS
    assert _deliver(0.0, sent) == sent


@linux_only
def test_total_loss_drops_all_rtp_and_keeps_stun_dtls_and_rtcp() -> None:
    sent = [_rtp(i) for i in range(50)] + [_rtp(i, payload_type=0x80 | 111) for i in range(50)]
    assert _deliver(1.0, sent + OTHERS) == OTHERS


@linux_only
def test_thirty_percent_loss_drops_about_thirty_percent_of_rtp() -> None:
    sent = [_rtp(i) for i in range(4000)]
    kept = len(_deliver(0.3, sent)) / len(sent)
    # Binomial: one standard deviation is 0.7 %, so these bounds are ~7 of them away.
    assert 0.65 <= kept <= 0.75


def test_a_rate_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        loss.program(1.5)


def test_a_gap_is_nacked_as_soon_as_a_later_packet_arrives() -> None:
    tracker = loss.NackTracker()
    assert tracker.on_packet(10, 0.0) == []
    assert tracker.on_packet(11, 0.0) == []
    assert tracker.on_packet(14, 0.01) == [12, 13]
    assert tracker.nacked == 2
    assert tracker.on_packet(12, 0.02) == []  # a retransmission fills the hole
    assert tracker.recovered == 1
    assert sorted(s & 0xFFFF for s in tracker.missing) == [13]


def test_a_missing_packet_is_nacked_again_every_interval_then_given_up() -> None:
    tracker = loss.NackTracker(retry_interval=0.03, max_retries=3, max_age=10.0)
    tracker.on_packet(1, 0.0)
    assert tracker.on_packet(3, 0.0) == [2]
    assert tracker.due(0.01) == []  # not yet
    assert tracker.due(0.03) == [2]
    assert tracker.due(0.06) == [2]
    assert tracker.due(0.09) == []  # third NACK sent: given up
    assert tracker.given_up == 1
    assert tracker.nacked == 3
    assert not tracker.missing


def test_a_missing_packet_is_given_up_when_too_old() -> None:
    tracker = loss.NackTracker(retry_interval=0.5, max_retries=10, max_age=1.0)
    tracker.on_packet(1, 0.0)
    tracker.on_packet(3, 0.0)
    assert tracker.due(1.0) == []
    assert tracker.given_up == 1


def test_sequence_numbers_wrap() -> None:
    tracker = loss.NackTracker()
    tracker.on_packet(65534, 0.0)
    assert tracker.on_packet(1, 0.0) == [65535, 0]
    assert tracker.on_packet(0, 0.0) == []
    assert tracker.recovered == 1
    assert tracker.on_packet(65530, 0.0) == []  # old, never missing: ignored


def test_a_gap_too_wide_to_repair_is_given_up_at_once() -> None:
    tracker = loss.NackTracker(max_missing=100)
    tracker.on_packet(0, 0.0)
    assert tracker.on_packet(500, 0.0) == []
    assert tracker.given_up == 499
    assert not tracker.missing
