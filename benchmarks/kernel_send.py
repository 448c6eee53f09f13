"""The machine's bare cost of sending one UDP datagram on loopback.

`python -m benchmarks.kernel_send --size 1100 --count 100000` prints one JSON object:
CPU microseconds of the sending process per `sendto` of `size` bytes on loopback, in a
tight loop (`us_per_packet`). On loopback the receive-side kernel work (up to queueing
on the receiver's socket and waking it) is paid by the sender, as it is for the SFU's
egress to the bots, so the sink is read by a forked child whose CPU is not counted.
`dropped_us_per_packet` is the same loop to a sink that is never read (the kernel drops
at the full socket queue: no wake-ups). Either is a floor for any forwarder that makes
one `sendto` per egress packet, in any language.

`--parallel N` measures instead how the machine's send path scales: packets per second
of wall time from one sending process alone, then from N at once (each to its own sink,
never read, so only the senders run). Their ratio is the ceiling any N-worker forwarder
could reach against one on this machine: shared caches, memory bandwidth or virtual CPUs
that are siblings on the host all show here.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import sys
import time


def _drain(sink: socket.socket, max_seconds: float) -> None:
    """In the forked child: read until the sender stops (1 s of silence) or time is up."""
    sink.settimeout(1.0)
    buffer = bytearray(65536)
    deadline = time.monotonic() + max_seconds
    try:
        while time.monotonic() < deadline:
            sink.recv_into(buffer)
    except OSError:
        pass


def measure(size: int, count: int, max_seconds: float, *, read: bool) -> dict[str, float | int]:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    reader = 0
    try:
        sink.bind(("127.0.0.1", 0))
        if read:
            reader = os.fork()
            if reader == 0:
                _drain(sink, max_seconds + 2)
                os._exit(0)
        address = sink.getsockname()
        payload = os.urandom(size)
        sendto = sender.sendto
        for _ in range(min(count, 2000)):  # warm up caches and fill the sink's queue
            sendto(payload, address)
        deadline = time.monotonic() + max_seconds
        r0, c0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.monotonic()
        sent = 0
        while sent < count and time.monotonic() < deadline:
            for _ in range(1000):
                sendto(payload, address)
            sent += 1000
        r1, c1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.process_time(), time.monotonic()
    finally:
        sink.close()
        sender.close()
        if reader:
            os.waitpid(reader, 0)  # bounded: the child stops after 1 s without packets
    cpu = c1 - c0
    return {
        "size": size,
        "packets": sent,
        "cpu_seconds": round(cpu, 4),
        "user_seconds": round(r1.ru_utime - r0.ru_utime, 4),
        "sys_seconds": round(r1.ru_stime - r0.ru_stime, 4),
        "wall_seconds": round(w1 - w0, 4),
        "us_per_packet": round(cpu / sent * 1e6, 3) if sent else 0.0,
    }


def _send_rate(size: int, seconds: float) -> float:
    """Datagrams per wall second to a sink nobody reads, for `seconds`."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sink.bind(("127.0.0.1", 0))
        address = sink.getsockname()
        payload = os.urandom(size)
        sendto = sender.sendto
        for _ in range(2000):  # fill the sink's queue: from here on every send is dropped there
            sendto(payload, address)
        sent = 0
        start = time.monotonic()
        deadline = start + seconds
        while time.monotonic() < deadline:
            for _ in range(1000):
                sendto(payload, address)
            sent += 1000
        return sent / (time.monotonic() - start)
    finally:
        sink.close()
        sender.close()


def scaling(size: int, processes: int, seconds: float) -> dict[str, float | int]:
    """Send rate of one process alone and of `processes` forked ones at the same time."""
    single = _send_rate(size, seconds)
    children = []
    for _ in range(processes):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            os.write(write_end, json.dumps(_send_rate(size, seconds)).encode())
            os._exit(0)
        os.close(write_end)
        children.append((pid, read_end))
    together = 0.0
    for pid, read_end in children:
        with os.fdopen(read_end, "rb") as pipe:
            together += float(json.loads(pipe.read() or b"0"))
        os.waitpid(pid, 0)  # bounded: each child stops after `seconds`
    return {
        "size": size,
        "processes": processes,
        "seconds": seconds,
        "single_pps": round(single),
        "parallel_pps": round(together),
        "ratio": round(together / single, 3) if single else 0.0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1100)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument("--parallel", type=int, default=0, help="measure scaling to N senders")
    args = parser.parse_args(argv)
    if args.parallel > 0:
        seconds = min(args.max_seconds, 3.0)
        sys.stdout.write(json.dumps(scaling(args.size, args.parallel, seconds)) + "\n")
        return
    result = measure(args.size, args.count, args.max_seconds, read=True)
    dropped = measure(args.size, args.count, args.max_seconds, read=False)
    result["dropped_us_per_packet"] = dropped["us_per_packet"]
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
