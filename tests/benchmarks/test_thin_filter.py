"""The thin-viewer socket filter, on two real UDP sockets over loopback.

What offset 0 means to a filter on a UDP socket is a kernel detail the filter relies on,
so it is proven here rather than assumed: it is the UDP header (the payload starts at 8).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
from collections.abc import Iterator

import pytest

from benchmarks import thin

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux socket filters")


@contextlib.contextmanager
def _pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.bind(("127.0.0.1", 0))
        sender.bind(("127.0.0.1", 0))
        yield receiver, sender
    finally:
        receiver.close()
        sender.close()


SENTINEL = b"\x01" * 100  # STUN-like first byte and longer than anything else sent here
LD_LEN = 0x80  # BPF_LD | BPF_W | BPF_LEN: A = datagram length as the filter sees it


def _deliver(receiver: socket.socket, sender: socket.socket, datagrams: list[bytes]) -> list[bytes]:
    """Send each datagram, then the sentinel every filter keeps; return what came before it.

    Loopback delivers in order, so once the sentinel arrived every datagram before it was
    decided: nothing here waits for something that might not come.
    """
    for datagram in [*datagrams, SENTINEL]:
        sender.sendto(datagram, receiver.getsockname())
    receiver.settimeout(30.0)  # only a broken filter (sentinel dropped) waits this long
    arrived = []
    while (data := receiver.recv(2048)) != SENTINEL:
        arrived.append(data)
    return arrived


def _keep_sentinel_or(load: int, offset: int, value: int) -> list[thin.Instruction]:
    """Keep the sentinel (by its length alone) and datagrams whose field at `offset` is
    `value`; drop the rest."""
    return [
        (LD_LEN, 0, 0, 0),
        (thin.JGE_K, 3, 0, len(SENTINEL)),  # -> keep
        (load, 0, 0, offset),
        (thin.JEQ_K, 1, 0, value),  # -> keep
        (thin.RET_K, 0, 0, 0),
        (thin.RET_K, 0, 0, thin.KEEP),
    ]


def _sees_the_first_payload_byte(offset: int) -> bool:
    """Whether a filter loading the byte at `offset` reads the payload's first byte: it
    matches two different markers. One marker alone is matched by a header byte now and
    then (the ephemeral ports' high bytes, the checksum), which made this test flaky."""
    for marker in (0xAB, 0x54):
        marked = bytes((marker,)) + bytes(15)
        with _pair() as (receiver, sender):
            thin.attach(receiver, _keep_sentinel_or(thin.LD_B_ABS, offset, marker))
            if _deliver(receiver, sender, [marked]) != [marked]:
                return False
    return True


def test_offset_zero_is_the_udp_header_and_the_payload_starts_at_eight() -> None:
    for offset in range(16):
        assert _sees_the_first_payload_byte(offset) == (offset == thin.UDP_HEADER), offset
    marked = b"\xab" + bytes(15)
    with _pair() as (receiver, sender):
        # Offsets 0 and 2: the UDP source and destination ports (RFC 768).
        thin.attach(receiver, _keep_sentinel_or(thin.LD_H_ABS, 0, sender.getsockname()[1]))
        assert _deliver(receiver, sender, [marked]) == [marked]
    with _pair() as (receiver, sender):
        thin.attach(receiver, _keep_sentinel_or(thin.LD_H_ABS, 2, receiver.getsockname()[1]))
        assert _deliver(receiver, sender, [marked]) == [marked]


def _rtp(seq: int, *, payload_type: int = 96, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, payload_type | (0x80 if marker else 0), seq, 0, 1) + b"x"


def test_the_thin_filter_keeps_every_nth_rtp_packet_and_all_the_rest() -> None:
    every = 4
    rtp = [_rtp(seq) for seq in (*range(12), 65532, 65533, 65534, 65535)]
    rtp += [_rtp(8, marker=True), _rtp(9, marker=True, payload_type=111)]
    others = [
        b"\x00\x01\x00\x00" + bytes(16),  # STUN binding request (consent)
        b"\x01\x01\x00\x00" + bytes(16),  # STUN success response
        bytes([22, 0xFE, 0xFD]) + bytes(10),  # DTLS handshake
        bytes([23, 0xFE, 0xFD]) + bytes(10),  # DTLS application data
        b"\x81\xc9\x00\x07" + bytes(28),  # RTCP receiver report (PT 201)
        b"\x81\xcd\x00\x02" + bytes(8),  # RTCP transport feedback (PT 205)
        b"\x81\xce\x00\x02" + bytes(8),  # RTCP PLI (PT 206)
        b"\x40\x00\x00\x04abcd",  # TURN ChannelData
        bytes([200, 1, 2, 3]),  # not RTP/RTCP at all
    ]
    with _pair() as (receiver, sender):
        thin.thin(receiver.fileno(), every)  # as the bots do it: on the descriptor
        kept = _deliver(receiver, sender, rtp + others)
    kept_rtp = [k for k in kept if k in rtp]
    assert [struct.unpack("!H", k[2:4])[0] for k in kept_rtp] == [0, 4, 8, 65532, 8]
    assert [k for k in kept if k not in rtp] == others


def test_the_thin_filter_drops_sender_reports_whatever_follows_them() -> None:
    sender_report = b"\x80\xc8\x00\x06" + bytes(24)  # RTCP SR (PT 200), no report blocks
    sdes = b"\x81\xca\x00\x02" + bytes(8)  # SDES (PT 202) after it, as in a compound
    receiver_report = b"\x81\xc9\x00\x07" + bytes(28)
    with _pair() as (receiver, sender):
        thin.thin(receiver, 4)
        kept = _deliver(receiver, sender, [sender_report, sender_report + sdes, receiver_report])
    assert kept == [receiver_report]


@pytest.mark.parametrize("every", [1, 3])
def test_every_rtp_sequence_number_is_decided_by_its_remainder(every: int) -> None:
    seqs = list(range(0, 65536, 997))
    with _pair() as (receiver, sender):
        thin.thin(receiver, every)
        kept = _deliver(receiver, sender, [_rtp(s) for s in seqs])
    assert [struct.unpack("!H", k[2:4])[0] for k in kept] == [s for s in seqs if s % every == 0]


def test_a_zero_divisor_is_refused() -> None:
    with pytest.raises(ValueError):
        thin.program(0)
