"""A real coturn ``turnserver`` on loopback, with TURN REST API credentials (use-auth-secret).

Started by its own path (Debian's ``coturn`` package; ``.ci/run`` and ``scripts/test``
install it), unprivileged: a free listening port for UDP and TCP alike, a small relay
port range below the kernel's ephemeral ports, no TLS/DTLS, no telnet CLI, its database,
pid file and log in a temporary directory. Loopback peers are allowed (coturn refuses them
by default, and the SFU listens on 127.0.0.1 in the tests). A missing ``turnserver`` fails
the test rather than skipping it.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Coturn", "CoturnError", "running_coturn"]

TURNSERVER = "turnserver"
REALM = "stage-sfu.test"
START_TIMEOUT = 10.0
POLL_INTERVAL = 0.05
RELAY_PORTS = 16
# Relay ports are taken from below the ephemeral range (32768+) so that no client socket
# of this machine holds one by chance, and above the well-known ones.
RELAY_BASES = range(20000, 32000, RELAY_PORTS)

# "session 001000000000000001: new, realm=<r>, username=<1796696869:alice>, lifetime=600"
_ALLOCATED = re.compile(r"session \d+: new, realm=<[^>]*>, username=<([^>]*)>")
# "... user <1796696869:alice>: incoming packet message processed, error 401: Unauthorized"
# (the first, credential-less request of every allocation is answered 401 with user <>.)
_REFUSED = re.compile(r"user <([^>]+)>: incoming packet \S+ processed, error 401")


# "IPv4. tcp or tls connected to: 127.0.0.1:39240": a client reaching coturn over TCP.
_TCP_CLIENT = re.compile(r"tcp or tls connected to: ")


class CoturnError(RuntimeError):
    """coturn is missing or did not start; the message says why (with its log)."""


@dataclass(frozen=True)
class Coturn:
    port: int
    secret: str
    log: Path
    pid: int

    def url(self, transport: str = "udp") -> str:
        return f"turn:127.0.0.1:{self.port}?transport={transport}"

    def log_text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def allocations(self) -> list[str]:
        """Usernames of the relay allocations coturn granted so far."""
        return _ALLOCATED.findall(self.log_text())

    def tcp_clients(self) -> int:
        """Connections clients opened to coturn over TCP (UDP clients open none)."""
        return len(_TCP_CLIENT.findall(self.log_text()))

    def refusals(self) -> list[str]:
        """Usernames whose credentials coturn refused (401 to a request that had some)."""
        return _REFUSED.findall(self.log_text())


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (coturn listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise CoturnError("no port free for both UDP and TCP")


def _relay_range() -> tuple[int, int]:
    """A block of RELAY_PORTS UDP ports that are all free now."""
    bases = list(RELAY_BASES)
    random.shuffle(bases)
    for base in bases:
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + RELAY_PORTS):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base, base + RELAY_PORTS - 1
    raise CoturnError("no free block of relay ports")


def _answers_stun(port: int) -> bool:
    """Whether a STUN Binding request (RFC 8489 section 5) to the UDP listener is answered."""
    transaction = os.urandom(12)
    request = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + transaction
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(POLL_INTERVAL)
        try:
            sock.sendto(request, ("127.0.0.1", port))
            reply = sock.recv(2048)
        except OSError:  # timeout, or refused while nothing listens yet
            return False
    return len(reply) >= 20 and reply[:2] == b"\x01\x01" and reply[8:20] == transaction


def _listens_on_tcp(coturn: Coturn) -> bool:
    # From its log, not by connecting: a test may count the TCP clients coturn saw.
    return f"TCP listener opened on : 127.0.0.1:{coturn.port}" in coturn.log_text()


@contextlib.contextmanager
def running_coturn(directory: Path, *, secret: str) -> Iterator[Coturn]:
    """Run ``turnserver`` until the block ends; files go to ``directory``."""
    binary = shutil.which(TURNSERVER) or next(
        (p for p in ("/usr/bin/turnserver", "/usr/sbin/turnserver") if os.access(p, os.X_OK)),
        None,
    )
    if binary is None:
        raise CoturnError(
            "coturn's turnserver is required for the TURN tests but is not installed "
            "(Debian: apt-get install coturn; ./scripts/test installs it)"
        )
    port = _free_port()
    low, high = _relay_range()
    log = directory / "turnserver.log"
    args = [
        binary,
        "-n",  # no configuration file: everything is on this line
        "-v",  # sessions and allocations in the log
        "--listening-ip=127.0.0.1",
        f"--listening-port={port}",
        "--relay-ip=127.0.0.1",
        f"--min-port={low}",
        f"--max-port={high}",
        "--use-auth-secret",
        f"--static-auth-secret={secret}",
        f"--realm={REALM}",
        "--no-tls",
        "--no-dtls",
        "--allow-loopback-peers",
        "--no-cli",
        f"--log-file={log}",
        "--simple-log",
        "--no-stdout-log",
        f"--pidfile={directory / 'turnserver.pid'}",
        f"--db={directory / 'turndb'}",
    ]
    process = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    coturn = Coturn(port=port, secret=secret, log=log, pid=process.pid)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (_answers_stun(port) and _listens_on_tcp(coturn)):
            if process.poll() is not None:
                stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise CoturnError(
                    f"turnserver exited with {process.returncode}:\n{stderr}{coturn.log_text()}"
                )
            if time.monotonic() > deadline:
                raise CoturnError(
                    f"turnserver did not listen on 127.0.0.1:{port} within "
                    f"{START_TIMEOUT:g} s:\n{coturn.log_text()}"
                )
            time.sleep(POLL_INTERVAL)
        yield coturn
    finally:
        process.terminate()  # our own child, by its pid
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
