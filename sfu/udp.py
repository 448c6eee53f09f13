"""UDP sockets in the configured port range."""

from __future__ import annotations

import random
import socket

# Media sockets buffer 2 MiB each way: a burst (a key frame to hundreds of viewers, a
# busy moment of the event loop) waits in the kernel instead of being dropped there.
SOCKET_BUFFER = 1 << 21


def bind_in_range(address: str, port_min: int, port_max: int) -> socket.socket:
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
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
        return sock
    raise OSError(f"no free UDP port on {address} in {port_min}-{port_max}: {last_error}")
