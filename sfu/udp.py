"""UDP sockets in the configured port range."""

from __future__ import annotations

import random
import socket

from .clock import kernel_queue_delay

# Sending, 2 MiB: a key frame to hundreds of viewers waits in the kernel instead of being
# dropped there. Receiving, what a socket may queue while the event loop is busy: enough
# for a burst, but bounded in time, because under overload a deep queue only makes every
# packet late — and ICE consent answers wait behind it until the peer is declared dead.
SOCKET_BUFFER = 1 << 21
RECEIVE_BUFFER = 1 << 19  # about 1.4 s of a 3 Mbit/s publisher


def bind_in_range(
    address: str, port_min: int, port_max: int, *, receive_buffer: int = RECEIVE_BUFFER
) -> socket.socket:
    """A non-blocking UDP socket bound to a free port in the range, starting at a
    random one to spread load.

    The socket is bound before the event loop sees it: uvloop builds its
    transport first and leaks it when `local_addr` turns out to be taken.
    """
    span = port_max - port_min + 1
    start = random.randrange(span)
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    last_error: OSError | None = None
    for i in range(span):
        port = port_min + (start + i) % span
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((address, port))
        except OSError as exc:
            sock.close()
            last_error = exc
            continue
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        # Turn receive timestamps on now (LateFilter reads them): when no socket had them,
        # Linux switches stamping on later, from a work queue, so asking only at the first
        # read left the first datagrams unstamped, and never late. The ioctl, not
        # SO_TIMESTAMPNS: with that option the kernel stops keeping the ioctl's timestamp.
        kernel_queue_delay(sock.fileno())
        return sock
    raise OSError(f"no free UDP port on {address} in {port_min}-{port_max}: {last_error}")


class LateFilter:
    """Sheds RTP that waited too long in a socket's queue, before any work is spent on it.

    When a worker falls behind, its sockets fill up and every packet comes out late;
    forwarding them only keeps it behind, and the ICE consent answers queued behind
    them time out until the peer is declared dead (RFC 7675). Dropping what waited
    more than `max_delay` (measured from the kernel's receive timestamp, so network
    delay does not count) costs a syscall and lets the queue drain. RTCP, STUN and
    DTLS are never dropped here.
    """

    __slots__ = ("dropped", "fd", "max_delay")

    def __init__(self, fd: int, max_delay: float) -> None:
        self.fd = fd
        self.max_delay = max_delay
        self.dropped = 0

    def drop(self, data: bytes) -> bool:
        if len(data) < 2 or 191 < data[1] < 224:  # RFC 5761 §4: RTCP; too short: not ours
            return False
        delay = kernel_queue_delay(self.fd)
        if delay is None or delay <= self.max_delay:
            return False
        self.dropped += 1
        return True
