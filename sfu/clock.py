"""The only module that reads time. Everything else gets a Clock injected."""

from __future__ import annotations

import fcntl
import struct
import time
from typing import Protocol

_SIOCGSTAMPNS = 0x8907  # linux/sockios.h: kernel receive time of the last datagram read
_TIMESPEC = struct.Struct("@qq")
_EMPTY_TIMESPEC = bytes(_TIMESPEC.size)


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    def wall(self) -> float:
        """Unix epoch seconds, for NTP timestamps in RTCP sender reports."""
        ...


class MonotonicClock:
    __slots__ = ()

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()


SYSTEM_CLOCK = MonotonicClock()


def kernel_queue_delay(fd: int) -> float | None:
    """How long the datagram just read from socket `fd` waited in the kernel: now minus
    its receive timestamp. None when there is none (the first ioctl turns stamping on)."""
    try:
        stamp = fcntl.ioctl(fd, _SIOCGSTAMPNS, _EMPTY_TIMESPEC)
    except OSError:
        return None
    seconds, nanoseconds = _TIMESPEC.unpack(stamp)
    return float(time.time() - seconds - nanoseconds * 1e-9)
