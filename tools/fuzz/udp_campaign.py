"""The UDP half of a run: datagrams to the media ports of a live session, in batches,
each followed by a signaling round trip; a session that ends is a finding, and a new one
is opened so the run goes on. A plain socket counts what the server answers it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import pylibsrtp

from .budget import Budget
from .findings import Findings, ProblemKind
from .media_session import MediaSession
from .server_log import ServerLog
from .udp_mutations import Datagram, Protect, UdpMutator

ROOM = "fuzz-media"
BATCH = 100
SYNC_TIMEOUT = 15.0
SESSION_ATTEMPTS = 3  # a session that cannot be opened three times in a row ends the half
_KEEP_FOR_REPRODUCING = 64  # the last datagrams of a batch shown when a session ends


class _Replies(asyncio.DatagramProtocol):
    """Counts what the server sends to the stranger's socket, by STUN type or first byte."""

    def __init__(self, findings: Findings) -> None:
        self.findings = findings

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if len(data) >= 20 and data[0] < 4:
            kind = int.from_bytes(data[:2], "big")
            key = f"udp:reply:stun:0x{kind:04x}"
            if kind == 0x0111 and len(data) >= 28:
                key += f":{_stun_error_code(data)}"
        else:
            key = f"udp:reply:first_byte:{data[0] if data else 'empty'}"
        self.findings.replies[key] += 1


def _stun_error_code(data: bytes) -> int | str:
    offset = 20
    while offset + 4 <= len(data):
        kind, length = (
            int.from_bytes(data[offset : offset + 2]),
            int.from_bytes(data[offset + 2 : offset + 4]),
        )
        if kind == 0x0009 and length >= 4:
            return data[offset + 6] * 100 + data[offset + 7]
        offset += 4 + length + (-length % 4)
    return "?"


class UdpCampaign:
    def __init__(
        self, *, ws_url: str, seed: int, budget: Budget, findings: Findings, log: ServerLog
    ) -> None:
        self.ws_url = ws_url
        self.budget = budget
        self.findings = findings
        self.log = log
        self.rng = random.Random(f"{seed}:udp")
        self.mutator = UdpMutator(self.rng)
        self.forwarded = 0
        self.sessions = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        stranger, _ = await loop.create_datagram_endpoint(
            lambda: _Replies(self.findings), local_addr=("127.0.0.1", 0)
        )
        session: MediaSession | None = None
        try:
            while not self.budget.spent:
                if session is None:
                    session = await self._open()
                    if session is None:
                        return
                if not await self._batch(session, stranger):
                    self.forwarded += session.forwarded
                    await session.close()
                    session = None
        finally:
            if session is not None:
                self.forwarded += session.forwarded
                await session.close()
            stranger.close()

    async def _open(self) -> MediaSession | None:
        for attempt in range(SESSION_ATTEMPTS):
            try:
                session = await MediaSession.open(self.ws_url, f"{ROOM}-{self.sessions}")
            except (Exception, TimeoutError) as exc:
                self.findings.add(
                    ProblemKind.MEDIA_LOST,
                    "could not open a media session",
                    f"attempt {attempt + 1}: {exc!r}",
                    "",
                )
                continue
            self.sessions += 1
            return session
        return None

    async def _batch(self, session: MediaSession, stranger: asyncio.DatagramTransport) -> bool:
        """Send one batch; False when the session ended (recorded as a finding)."""
        endpoints = session.endpoints()
        sent: list[Datagram] = []
        for _ in range(BATCH):
            if not self.budget.take(1):
                break
            datagram = self.mutator.datagram(endpoints)
            self._send(datagram, stranger)
            sent.append(datagram)
            self.findings.sent[f"udp:{datagram.family}"] += 1
        alive = await session.round_trip(SYNC_TIMEOUT) and session.alive
        for problem in self.log.new_problems():
            self.findings.add(
                ProblemKind.SERVER_LOG,
                problem.signature,
                problem.excerpt,
                "during a UDP batch; its datagrams, last first:\n"
                + "\n".join(d.describe() for d in sent[::-1][:_KEEP_FOR_REPRODUCING]),
            )
        if alive:
            return True
        families = ",".join(sorted({d.family for d in sent}))
        self.findings.add(
            ProblemKind.MEDIA_LOST,
            f"session ended during a UDP batch ({families})",
            f"bye reasons: {session.end_reasons()}",
            "the batch's datagrams, last first:\n"
            + "\n".join(d.describe() for d in sent[::-1][:_KEEP_FOR_REPRODUCING]),
        )
        return False

    def _send(self, datagram: Datagram, stranger: asyncio.DatagramTransport) -> None:
        data = datagram.data
        endpoint = datagram.endpoint
        try:
            if datagram.protect is Protect.RTP:
                data = endpoint.srtp.protect(data)
            elif datagram.protect is Protect.RTCP:
                data = endpoint.srtp.protect_rtcp(data)
        except (pylibsrtp.Error, ValueError):  # ValueError: longer than libsrtp takes
            self.findings.replies["udp:unprotectable(sent_plain)"] += 1
        if datagram.corrupt_after_protect and data:
            index = self.rng.randrange(len(data))
            data = (
                data[:index]
                + bytes([data[index] ^ (1 << self.rng.randrange(8))])
                + (data[index + 1 :])
            )
        with contextlib.suppress(OSError):
            if datagram.from_client:
                endpoint.send_from_client(data)
            else:
                stranger.sendto(data, endpoint.server_address)


__all__ = ["UdpCampaign"]
