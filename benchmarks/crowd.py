"""The big room's crowd: thousands of signaling-only members, and the host that runs the
stage commands. One process, many WebSockets, no media.

Run by `benchmarks.big_room` as `python -m benchmarks.crowd CONFIG_JSON`. It reads one JSON
command per line on stdin and answers each with one line on stdout:

* `{"cmd": "fill", "members": K}`: join members of this process (identities
  `crowd<index>`, indexes `first`, `first + step`, ...) until K of them are in the room,
  at most `concurrency` joins in flight; answers with the joins since the previous fill,
  each `[room_size, latency_ms]`: the room's size from the server's own `joined.counts`
  (everyone, this member included) and the time from sending `join` on an open
  WebSocket to reading `joined`;
* `{"cmd": "batch", "kind": KIND, "rounds": R}` (the host's process only): R rounds of
  one pair of stage commands, each sent when the one before was acknowledged, answering
  with each command's round trip (send to `ack`) in ms. KIND is `invite` (invite a
  member of the crowd, then revoke the invitation), `mute` (lock the microphone of the
  stage member this process keeps on stage, then unlock it), `hand` (the host raises,
  then lowers its hand) or `access` (stage access to `request`, then back to `everyone`);
* `{"cmd": "stats"}`: counters (joined, failed, lost, messages received by type);
* `{"cmd": "stop"}`: every member leaves (bounded), `{"stopped": true}`, exit.

It stops by itself at `max_seconds` or when stdin closes. Every member reads everything
the server sends it (the `counts` ticks, policies, subscribe offers it never answers: a
signaling-only member never connects media, so no consumer of it ever forwards), since a
member that stops reading is disconnected as too slow. The open-file limit is raised to
its hard limit at start, one descriptor per WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import uvloop

from signaling.auth import issue_token
from signaling.roles import Role

logger = logging.getLogger("benchmarks.crowd")

_CLOSE_TIMEOUT = 5.0
_BATCH_KINDS = {
    "invite": ("invite", "revoke_invitation"),
    "mute": ("mute", "unlock"),
    "hand": ("raise_hand", "lower_hand"),
    "access": ("set_stage_access", "set_stage_access"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class CrowdConfig:
    url: str
    room: str = "bench"
    secret: str = ""
    first: int = 0  # this process's members are crowd<first>, crowd<first + step>, ...
    step: int = 1
    concurrency: int = 2  # joins in flight in this process
    join_timeout: float = 60.0
    host: bool = False  # this process also runs the host and a stage member without media
    max_seconds: float = 1800.0


@dataclass(slots=True)
class Member:
    index: int
    name: str
    ws: aiohttp.ClientWebSocketResponse | None = None
    participant_id: str = ""
    revision: int = 0
    joined: asyncio.Future[dict[str, Any]] | None = None
    acks: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None
    lost: bool = False


class Crowd:
    def __init__(self, config: CrowdConfig) -> None:
        self.config = config
        self.members: list[Member] = []
        self.host: Member | None = None
        self.stage_member: Member | None = None
        self.received: Counter[str] = Counter()
        self.errors: list[str] = []
        self.failed = 0
        self.lost = 0
        self._joins: list[list[float]] = []
        self._next = 0
        self._commands = 0
        self._stopping = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None

    def _error(self, text: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(text)

    # -- one member ---------------------------------------------------------------
    def _token(self, name: str, role: Role) -> str:
        return issue_token(
            self.config.secret,
            room=self.config.room,
            identity=name,
            name=name,
            role=role,
            ttl=4 * 3600,
            now=time.time(),
        )

    async def _join(
        self, member: Member, *, role: Role = Role.PARTICIPANT, entry: str = "viewer"
    ) -> float | None:
        """Connect and join; the round trip of `join` in ms, or None if refused."""
        assert self._http is not None
        token = self._token(member.name, role)
        member.ws = await self._http.ws_connect(self.config.url, max_msg_size=1 << 22)
        member.joined = asyncio.get_running_loop().create_future()
        member.reader = asyncio.get_running_loop().create_task(self._read(member))
        request: dict[str, Any] = {"type": "join", "id": "join", "token": token, "entry": entry}
        if entry == "stage":
            request |= {"mic": True, "camera": True}
        sent = time.perf_counter()
        await member.ws.send_str(json.dumps(request))
        async with asyncio.timeout(self.config.join_timeout):
            joined = await member.joined
        latency = (time.perf_counter() - sent) * 1000
        if joined.get("type") != "joined":
            self._error(f"{member.name}: {joined.get('code')}: {joined.get('message')}")
            return None
        member.participant_id = joined["participant_id"]
        member.revision = int(joined["you"]["revision"])
        counts = joined.get("counts") or {}
        size = int(counts.get("viewers", 0)) + int(counts.get("on_stage", 0))
        self._joins.append([size, round(latency, 3)])
        return latency

    async def _read(self, member: Member) -> None:
        ws = member.ws
        assert ws is not None
        try:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(message.data)
                kind = data.get("type", "")
                self.received[kind] += 1
                if kind == "joined" or (kind == "error" and data.get("id") == "join"):
                    if member.joined is not None and not member.joined.done():
                        member.joined.set_result(data)
                elif kind in ("ack", "error"):
                    waiter = member.acks.pop(str(data.get("id")), None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(data)
                    elif kind == "error":
                        self._error(f"{member.name}: {data.get('code')}: {data.get('message')}")
                elif kind == "bye" and not self._stopping.is_set():
                    self._error(f"{member.name}: bye {data.get('reason')}")
        except (aiohttp.ClientError, OSError) as exc:
            self._error(f"{member.name}: {type(exc).__name__}: {exc}")
        finally:
            if not self._stopping.is_set() and not member.lost:
                member.lost = True
                self.lost += 1
            if member.joined is not None and not member.joined.done():
                member.joined.set_result({"type": "error", "code": "closed", "message": ""})

    async def _command(self, member: Member, kind: str, **fields: Any) -> float:
        """Send one command and wait for its `ack` (or `error`); the round trip in ms."""
        assert member.ws is not None
        self._commands += 1
        ident = f"{kind}-{self._commands}"
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        member.acks[ident] = waiter
        sent = time.perf_counter()
        await member.ws.send_str(json.dumps({"type": kind, "id": ident, **fields}))
        async with asyncio.timeout(self.config.join_timeout):
            reply = await waiter
        if reply.get("type") == "error":
            self._error(f"{kind}: {reply.get('code')}: {reply.get('message')}")
        return (time.perf_counter() - sent) * 1000

    # -- commands from the runner -------------------------------------------------
    async def fill(self, members: int) -> dict[str, Any]:
        """Join until `members` of this process are in (or the join of one fails)."""

        async def worker() -> None:
            while len(self.members) < members and not self._stopping.is_set():
                index = self.config.first + self._next * self.config.step
                self._next += 1
                member = Member(index=index, name=f"crowd{index}")
                self.members.append(member)
                try:
                    if await self._join(member) is None:
                        self.failed += 1
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    self.failed += 1
                    self._error(f"{member.name}: {type(exc).__name__}: {exc}")

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(self.config.concurrency)))
        joins, self._joins = self._joins, []
        return {"joins": joins, "seconds": round(time.monotonic() - started, 3)}

    async def start_host(self) -> dict[str, Any]:
        """The host (a viewer, so in the full view) and one stage member without media."""
        self.host = Member(index=-1, name="host")
        self.stage_member = Member(index=-2, name="stage-quiet")
        await self._join(self.host, role=Role.HOST)
        await self._join(self.stage_member, entry="stage")
        self._joins.clear()  # not part of the crowd's joins
        return {"host": self.host.participant_id, "stage": self.stage_member.participant_id}

    async def batch(self, kind: str, rounds: int) -> dict[str, Any]:
        host, stage = self.host, self.stage_member
        if host is None or stage is None or kind not in _BATCH_KINDS:
            return {"error": f"no host, or unknown batch {kind!r}"}
        target = next((m for m in self.members if m.participant_id and not m.lost), None)
        if kind == "invite" and target is None:
            return {"error": "no crowd member to invite"}
        first, second = _BATCH_KINDS[kind]
        rtts: dict[str, list[float]] = {first: [], second: []} if first != second else {}
        started = time.monotonic()
        for _ in range(rounds):
            if kind == "invite":
                assert target is not None
                fields = {"target": target.participant_id}
                a = await self._command(host, first, **fields, revision=target.revision)
                b = await self._command(host, second, **fields, revision=target.revision + 1)
                target.revision += 2
            elif kind == "mute":
                fields = {"target": stage.participant_id, "device": "mic"}
                a = await self._command(host, first, **fields, lock=True)
                b = await self._command(host, second, **fields)
            elif kind == "hand":
                a = await self._command(host, first)
                b = await self._command(host, second)
            else:
                a = await self._command(host, first, access="request")
                b = await self._command(host, second, access="everyone")
            if first == second:
                rtts.setdefault(f"{first}:request", []).append(round(a, 3))
                rtts.setdefault(f"{first}:everyone", []).append(round(b, 3))
            else:
                rtts[first].append(round(a, 3))
                rtts[second].append(round(b, 3))
        return {"rtt_ms": rtts, "seconds": round(time.monotonic() - started, 3)}

    def stats(self) -> dict[str, Any]:
        return {
            "members": len(self.members),
            "joined": sum(1 for m in self.members if m.participant_id),
            "failed": self.failed,
            "lost": self.lost,
            "received": dict(self.received),
            "errors": self.errors[:],
        }

    async def run(self) -> None:
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        commands = asyncio.get_running_loop().create_task(self._read_commands())
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.config.max_seconds)
        finally:
            self._stopping.set()
            commands.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await commands
            everyone = [m for m in (*self.members, self.host, self.stage_member) if m]
            await asyncio.gather(*(self._leave(m) for m in everyone), return_exceptions=True)
            await self._http.close()
            _reply({"stopped": True})

    async def _leave(self, member: Member) -> None:
        ws = member.ws
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                if ws is not None and not ws.closed:
                    await ws.send_str(json.dumps({"type": "leave", "id": "leave"}))
                    await ws.close()
        if member.reader is not None:
            member.reader.cancel()

    async def _read_commands(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 24)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:  # the runner went away
                self._stopping.set()
                return
            request = json.loads(line)
            command = request.get("cmd")
            if command == "stats":
                _reply(self.stats())
            elif command == "fill":
                _reply(await self.fill(int(request["members"])))
            elif command == "host":
                _reply(await self.start_host())
            elif command == "batch":
                _reply(await self.batch(str(request["kind"]), int(request["rounds"])))
            elif command == "stop":
                self._stopping.set()
                return


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    config = CrowdConfig(**json.loads(args[0]))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # a descriptor per WebSocket
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # A bounded run that creates few cycles: no collector pauses in the measured replies.
    gc.collect()
    gc.freeze()
    gc.disable()
    uvloop.run(Crowd(config).run())


if __name__ == "__main__":
    main()
