"""The WebSocket half of a run: several connections at once, each going through
sessions of odd orders (frames before `join`, a join as host, moderator or participant,
batches of mutated frames, `leave` and more frames after it), every batch followed by a
bounded round trip that proves the server handled it and answered each frame once.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from signaling.roles import Role

from .budget import Budget
from .findings import Findings, ProblemKind
from .frames import Frame, FrameKind
from .knowledge import Knowledge
from .messages import MessageFactory
from .server_log import ServerLog
from .ws_mutations import HARD_FACTOR, WsMutator, dumps
from .ws_socket import FuzzSocket

ROOMS = ("a", "b", "c")
# Sessions go to a new set of rooms after this many: a participant who drops stays in
# the room for the reconnect grace (30 s), and every join then lists them all, so rooms
# that only grow would slow a long run down to the pace of ever longer member lists.
SESSIONS_PER_ROOM_SET = 60
CONNECTIONS = 6  # sessions running at once
SYNC_TIMEOUT = 15.0  # a batch's round trip; far above what a healthy server needs
PREJOIN_TIMEOUT = 3.0  # a ping before join; paid only while that defect is unseen
KNOWN_ENOUGH = 3  # after this many sightings a costly scenario is not repeated


@dataclass(slots=True)
class Batch:
    phase: str
    frames: list[Frame] = field(default_factory=list)

    def labels(self) -> str:
        return ", ".join(sorted({f.label for f in self.frames}))[:300]

    def reproducer(self) -> str:
        return f"{self.phase}: " + " | ".join(f.reproducer(160) for f in self.frames)


class WsCampaign:
    def __init__(
        self,
        *,
        url: str,
        seed: int,
        budget: Budget,
        findings: Findings,
        log: ServerLog,
        max_message_bytes: int,
    ) -> None:
        self.url = url
        self.seed = seed
        self.budget = budget
        self.findings = findings
        self.log = log
        self.max_message_bytes = max_message_bytes
        self.knowledge = Knowledge()
        self.sessions = 0

    def rooms(self) -> tuple[str, ...]:
        generation = self.sessions // SESSIONS_PER_ROOM_SET
        return tuple(f"fuzz-{generation}-{name}" for name in ROOMS)

    async def run(self) -> None:
        async with aiohttp.ClientSession() as http:
            await asyncio.gather(
                *(self._connection_loop(http, slot) for slot in range(CONNECTIONS))
            )

    async def _connection_loop(self, http: aiohttp.ClientSession, slot: int) -> None:
        rng = random.Random(f"{self.seed}:ws:{slot}")
        factory = MessageFactory(rng, self.knowledge, self.rooms)
        mutator = WsMutator(rng, factory, self.max_message_bytes)
        while not self.budget.spent:
            self.sessions += 1
            await _Session(self, http, rng, mutator).run()

    # -- tallies shared by the sessions --------------------------------------------------
    def on_message(self, message: dict[str, Any], batch: Batch | None) -> None:
        kind = str(message.get("type"))
        key = f"ws:error:{message.get('code')}" if kind == "error" else f"ws:{kind}"
        self.findings.replies[key] += 1
        self.knowledge.learn(message)
        if kind == "error" and message.get("code") == "internal":
            self._internal(message, batch)

    def _internal(self, message: dict[str, Any], batch: Batch | None) -> None:
        frames = batch.frames if batch is not None else []
        culprit = next(
            (f for f in frames if f.request_id and f.request_id == message.get("id")), None
        )
        phase = batch.phase if batch is not None else "?"
        if culprit is not None:
            self.findings.add(
                ProblemKind.INTERNAL,
                ":".join(culprit.label.split(":")[:2]),
                f"{phase}: {message}",
                culprit.reproducer(),
            )
            return
        self.findings.add(
            ProblemKind.INTERNAL,
            f"unattributed in batch: {_families(frames)}",
            f"{phase}: {message} (frames without a usable id; one of these)",
            batch.reproducer() if batch is not None else "",
        )

    def check_log(self, batch: Batch) -> None:
        for problem in self.log.new_problems():
            self.findings.add(
                ProblemKind.SERVER_LOG,
                problem.signature,
                problem.excerpt,
                f"during a WebSocket batch ({batch.phase}; frames: {batch.labels()})",
            )


class _Session:
    """One connection from open to close: see the module docstring for its course."""

    def __init__(
        self,
        campaign: WsCampaign,
        http: aiohttp.ClientSession,
        rng: random.Random,
        mutator: WsMutator,
    ) -> None:
        self.c = campaign
        self.http = http
        self.rng = rng
        self.mutator = mutator
        self.batch: Batch | None = None
        self.sent_leave = self.sent_raw_text = self.sent_huge = False

    async def run(self) -> None:
        try:
            sock = await FuzzSocket.open(self.http, self.c.url, self._on_message)
        except (aiohttp.ClientError, OSError) as exc:
            self.c.findings.add(ProblemKind.UNEXPECTED_CLOSE, "connect failed", str(exc), "")
            await asyncio.sleep(0.5)  # the server may be restarting a worker; do not spin
            return
        try:
            await self._course(sock)
        finally:
            await sock.close()
            if not sock.closed_by_us:
                self._closed(sock)

    async def _course(self, sock: FuzzSocket) -> None:
        rng = self.rng
        before = rng.choice([0, 0, 1, 2, 5, 20])
        if before and rng.random() < 0.15 and not self._known_unanswered_prejoin():
            # Frames then a ping before any join: each must be answered (not_joined, ...).
            if not await self._batch(sock, "before join", before, PREJOIN_TIMEOUT):
                return
            before = 0
        joined = rng.random() < 0.9 and await self._join(sock, before)
        phase = "after join" if joined else "not joined"
        for _ in range(rng.randint(1, 6)):
            if not await self._batch(sock, phase, rng.choice([5, 10, 20, 40]), SYNC_TIMEOUT):
                return
        if rng.random() < 0.2 and self.c.budget.take(1):
            await self._send_counted(sock, Frame(FrameKind.TEXT, '{"type":"leave"}', "leave"))
            self.sent_leave = True
            await self._batch(sock, "after leave", rng.choice([1, 5]), SYNC_TIMEOUT)

    def _known_unanswered_prejoin(self) -> bool:
        return self.c.findings.seen(ProblemKind.UNANSWERED, "before join") >= KNOWN_ENOUGH

    async def _join(self, sock: FuzzSocket, before: int) -> bool:
        """Send `before` fuzz frames then a valid join; the join's reply also proves
        those frames were handled. True when joined."""
        batch = self._new_batch("frames then join")
        if not await self._send_fuzz(sock, batch, before):
            return False
        if not self.c.budget.take(1):
            return False
        message = self.mutator.factory.join(role=self.rng.choice(list(Role)))
        replies_before = sock.direct_replies
        reply = await sock.request(message, SYNC_TIMEOUT)
        self.c.findings.sent["ws"] += 1
        self.c.check_log(batch)
        if reply is None:
            self._no_reply(sock, batch, "join")
            return False
        self._count_answers(sock, batch, replies_before + 1)
        return reply.get("type") == "joined"

    async def _batch(self, sock: FuzzSocket, phase: str, size: int, timeout: float) -> bool:
        """Send a batch and round-trip a ping; False when the session should end."""
        batch = self._new_batch(phase)
        replies_before = sock.direct_replies
        if not await self._send_fuzz(sock, batch, size):
            return False
        reply = await sock.sync(timeout)
        self.c.check_log(batch)
        if reply is None:
            self._no_reply(sock, batch, phase)
            return False
        self._count_answers(sock, batch, replies_before + 1)
        return True

    def _new_batch(self, phase: str) -> Batch:
        self.batch = Batch(phase)
        return self.batch

    async def _send_fuzz(self, sock: FuzzSocket, batch: Batch, size: int) -> bool:
        for _ in range(size):
            if not self.c.budget.take(1):
                return False
            frame = self.mutator.frame()
            batch.frames.append(frame)
            self.sent_raw_text |= frame.kind is FrameKind.RAW_TEXT
            self.sent_huge |= frame.size >= HARD_FACTOR * self.c.max_message_bytes
            self.sent_leave |= '"leave"' in str(frame.data)[:200]
            if not await self._send_counted(sock, frame):
                return False
        return not sock.closed.is_set()

    async def _send_counted(self, sock: FuzzSocket, frame: Frame) -> bool:
        sent = await sock.send(frame)
        self.c.findings.sent["ws"] += sent
        if not sent:
            self.c.budget.give_back(1)
        return sent

    def _count_answers(self, sock: FuzzSocket, batch: Batch, expected_before: int) -> None:
        """Every frame of the batch must have earned exactly one direct reply."""
        missing = expected_before + len(batch.frames) - sock.direct_replies
        if missing > 0 and not self.sent_leave:
            self.c.findings.add(
                ProblemKind.UNANSWERED,
                f"{batch.phase}: frames without a reply",
                f"{missing} of {len(batch.frames)} frames got no reply",
                batch.reproducer(),
            )

    def _no_reply(self, sock: FuzzSocket, batch: Batch, phase: str) -> None:
        if sock.closed.is_set():
            return  # the close is judged in _closed
        self.c.findings.add(
            ProblemKind.UNANSWERED,
            phase,
            "no reply to a request within the bound (connection still open)",
            batch.reproducer(),
        )

    def _closed(self, sock: FuzzSocket) -> None:
        code = sock.close_code
        self.c.findings.replies[f"ws:close:{code}"] += 1
        if sock.bye is not None:
            return  # left, kicked, replaced, failed media: the server said why
        # A close with no `bye` is due only to what the WebSocket layer refuses. The
        # server then drops the TCP connection at once, so a client still sending may
        # see a reset (1006) instead of the close frame.
        expected = set()
        if self.sent_raw_text:
            expected |= {1007, 1006}  # invalid UTF-8 in a text frame
        if self.sent_huge:
            expected |= {1009, 1006}  # past the WebSocket layer's own limit
        if self.sent_leave:
            expected |= {1000, 1006}  # the bye can be lost in that reset too
        if code not in expected:
            batch = self.batch or Batch("?")
            self.c.findings.add(
                ProblemKind.UNEXPECTED_CLOSE,
                f"close {code} ({batch.phase}): {_families(batch.frames)}",
                f"connection closed with {code} after a batch",
                batch.reproducer(),
            )

    def _on_message(self, message: dict[str, Any]) -> None:
        self.c.on_message(message, self.batch)


def _families(frames: list[Frame]) -> str:
    return ",".join(sorted({f.label.split(":")[0] for f in frames})) or "none"


__all__ = ["WsCampaign", "dumps"]
