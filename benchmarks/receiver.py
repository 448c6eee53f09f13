"""What a viewer bot does with received packets: count them from the clear RTP header.

SRTP leaves the 12-byte RTP header in the clear (RFC 3711 §3.1), so sequence number,
SSRC and payload type are read without decrypting. Every `sample_every`-th packet is
decrypted to read the publisher's send time (the last 8 bytes of the payload,
`time.monotonic_ns()`, system-wide on Linux) for two latencies:

* to the kernel's receive timestamp of that datagram (`SIOCGSTAMPNS` on the socket,
  right after the event loop read it): publisher -> SFU -> viewer socket, without the
  time the datagram then waited for a busy bot process;
* to the bot's callback: the same plus that wait.

Loss is counted per SSRC from sequence gaps: expected = highest extended sequence
number - first + 1, received = distinct packets seen. Late (reordered) packets still
count when they arrive, duplicates do not (a one-byte mark per sequence number).

A thin viewer (`sample_every` N > 1, `benchmarks.thin`) has a kernel filter that keeps
only RTP packets whose sequence number is a multiple of N. It counts only those: expected
is the number of such sequence numbers from the first to the highest seen, so loss is
measured on that subsequence. Packets off it that still arrive (queued before the filter
was attached) are not counted as media, only as `off_sample`; after the filter is on
there should be none.
"""

from __future__ import annotations

import contextlib
import fcntl
import struct
import time
from collections.abc import Callable
from typing import Any

STAMP_BYTES = 8
_MAX_PLAUSIBLE_NS = 30_000_000_000  # a stamp further off than 30 s is not ours (relay mode)
_SIOCGSTAMPNS = 0x8907  # linux/sockios.h: receive time of the last datagram read (timespec)
_TIMESPEC = struct.Struct("@qq")
_NO_TIMESPEC = bytes(_TIMESPEC.size)


def sampled_between(first: int, last: int, every: int) -> int:
    """Extended sequence numbers e in [first, last] with (e mod 2^16) % every == 0.

    Per 16-bit lap: when `every` does not divide 65536 the spacing changes at the wrap.
    """
    if last < first:
        return 0
    if every <= 1:
        return last - first + 1
    total = 0
    lap = first & ~0xFFFF
    while lap <= last:
        low = max(first, lap) - lap
        high = min(last, lap + 0xFFFF) - lap
        total += high // every - (low - 1) // every  # multiples of `every` in [low, high]
        lap += 0x10000
    return total


class Stream:
    __slots__ = (
        "base",
        "bytes",
        "duplicates",
        "every",
        "frames",
        "highest",
        "kind",
        "marks",
        "received",
    )

    def __init__(self, kind: str, seq: int, every: int = 1) -> None:
        self.kind = kind
        self.every = every
        self.base = seq
        self.highest = seq
        self.received = 0
        self.duplicates = 0
        self.bytes = 0
        self.frames = 0  # packets with the marker bit: video frames (RFC 7741 §4.1)
        self.marks = bytearray(65536)  # lap number + 1 of the last packet with this seq

    @property
    def expected(self) -> int:
        if self.every > 1:
            return sampled_between(self.base, self.highest, self.every)
        return self.highest - self.base + 1


class Receiver:
    """Counters of one subscribe connection; `on_datagram` is the socket-level hook."""

    def __init__(
        self,
        *,
        sample_every: int,
        samples: list[int],
        app_samples: list[int],
        on_first_media: Callable[[], None],
        every: int = 1,
    ):
        self.streams: dict[int, Stream] = {}
        self.kinds: dict[int, str] = {}  # ssrc -> kind, from the offers
        self.payload_kinds: dict[int, str] = {}  # payload type -> kind, from the offers
        self.rtcp_packets = 0
        self.off_sample = 0  # RTP packets off the thin subsequence (not counted as media)
        self.every = every
        self.first_media_kind = "video"
        self._sample_every = sample_every
        self._countdown = sample_every
        self._samples = samples  # shared per process: to the kernel's receive time, in µs
        self._app_samples = app_samples  # shared per process: to this callback, in µs
        self._fd: int | None = None
        self._on_first_media = on_first_media
        self._first_seen = False
        self.unprotect: Callable[[bytes], bytes] | None = None

    def use_socket(self, fd: int) -> None:
        """Read kernel receive timestamps of `fd` from now on (the first ask enables them)."""
        self._fd = fd
        with contextlib.suppress(OSError):  # ENOENT: nothing stamped yet
            fcntl.ioctl(fd, _SIOCGSTAMPNS, _NO_TIMESPEC)

    # Called by aioice's protocol for every SRTP/SRTCP datagram once connected.
    def on_datagram(self, data: bytes, addr: Any = None) -> None:
        if 191 < data[1] < 224:  # RTCP (RFC 5761 §4)
            self.rtcp_packets += 1
            return
        self._count(data)
        self._countdown -= 1
        if self._countdown <= 0:
            self._countdown = self._sample_every
            unprotect = self.unprotect
            if unprotect is not None:
                kernel_ns = self._kernel_time()
                # A packet libsrtp refuses (e.g. replayed) is skipped; counting goes on.
                with contextlib.suppress(Exception):
                    self._latency(unprotect(data), kernel_ns)

    # Decrypted packets that took aiortc's normal path before the hook was installed.
    def on_rtp(self, data: bytes) -> None:
        self._count(data)
        self._latency(data, None)

    def _kernel_time(self) -> int | None:
        """The kernel's receive time of the datagram being handled, on the monotonic clock."""
        if self._fd is None:
            return None
        try:
            seconds, nanoseconds = _TIMESPEC.unpack(
                fcntl.ioctl(self._fd, _SIOCGSTAMPNS, _NO_TIMESPEC)
            )
        except OSError:
            return None
        realtime_offset = time.time_ns() - time.monotonic_ns()
        return int(seconds) * 1_000_000_000 + int(nanoseconds) - realtime_offset

    def _count(self, data: bytes) -> None:
        ssrc = int.from_bytes(data[8:12], "big")
        seq = (data[2] << 8) | data[3]
        if seq % self.every:
            self._off_sample(ssrc, data[1] & 0x7F)
            return
        stream = self.streams.get(ssrc)
        if stream is None:
            stream = self._new_stream(ssrc, seq, data[1] & 0x7F)
        highest = stream.highest
        delta = (seq - highest) & 0xFFFF
        ext = highest + delta if delta < 0x8000 else highest + delta - 0x10000
        if ext > highest:
            stream.highest = ext
        lap = ((ext >> 16) & 0x7F) + 1
        marks = stream.marks
        if marks[seq] == lap:
            stream.duplicates += 1
            return
        marks[seq] = lap
        stream.received += 1
        stream.bytes += len(data)
        if data[1] & 0x80:
            stream.frames += 1

    def _new_stream(self, ssrc: int, seq: int, payload_type: int) -> Stream:
        kind = self._kind(ssrc, payload_type)
        stream = self.streams[ssrc] = Stream(kind, seq + 0x10000, self.every)  # room to go back
        self._seen(kind)
        return stream

    def _off_sample(self, ssrc: int, payload_type: int) -> None:
        self.off_sample += 1
        # The join still ends at the first packet of any sequence number.
        self._seen(self._kind(ssrc, payload_type))

    def _kind(self, ssrc: int, payload_type: int) -> str:
        return self.kinds.get(ssrc) or self.payload_kinds.get(payload_type, "video")

    def _seen(self, kind: str) -> None:
        if not self._first_seen and kind == self.first_media_kind:
            self._first_seen = True
            self._on_first_media()

    def _latency(self, plain: bytes, kernel_ns: int | None) -> None:
        if len(plain) < 12 + STAMP_BYTES:
            return
        sent = int.from_bytes(plain[-STAMP_BYTES:], "big")
        delay = time.monotonic_ns() - sent
        if not 0 <= delay < _MAX_PLAUSIBLE_NS:
            return
        self._app_samples.append(delay // 1000)
        if kernel_ns is not None and 0 <= kernel_ns - sent <= delay:
            delay = kernel_ns - sent
        self._samples.append(delay // 1000)

    def totals(self) -> tuple[int, int, int, int, int, int]:
        """(received, expected, bytes, duplicates, video frames, video streams) so far."""
        received = expected = size = dupes = frames = videos = 0
        for stream in self.streams.values():
            received += stream.received
            expected += stream.expected
            size += stream.bytes
            dupes += stream.duplicates
            if stream.kind == "video":
                frames += stream.frames
                videos += 1
        return received, expected, size, dupes, frames, videos
