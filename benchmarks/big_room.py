"""Big room: does a room's signaling scale with its audience?

One room (`bench`) on a fresh server (one process by default, `--workers`): a stage of
`--publishers` A/V publishers and `--media-viewers` viewers receiving real RTP
(`benchmarks.bots`), a host, a stage member without media, and a crowd of signaling-only
members (`benchmarks.crowd`, `--crowd-procs` processes) filling the room to `--members`.

1. Media before: `--media-seconds` of the stage's forwarding latency (as in `stage-av`).
2. Fill: the crowd joins up to each checkpoint (`--checkpoints`, then `--members`), at
   most `--concurrency` joins in flight. Every join's round trip (`join` sent to `joined`
   read) is kept with the room's size from `joined.counts`; per segment between
   checkpoints: the joins' median/p99, the server's own mean time to admit one
   (`stage_sfu_join_duration_seconds`), the fill time and the stalls of the room's
   worker. The stage's media latency is sampled throughout.
3. At each checkpoint, `--idle-seconds` without commands (the server's background CPU),
   then the host runs `--rounds` rounds of each pair of stage commands (invite + revoke,
   mute with lock + unlock, raise + lower hand, stage access request + everyone), one
   command at a time: per command the round trip (sent to `ack`), and per kind the
   server's CPU per command (the server's CPU over the batch less the idle rate times
   its length, over the commands), the messages it sent per command and the stalls.
4. Media after: `--media-seconds` more once the room is full.

The goals (printed pass/fail, never asserted): per-join and per-command cost within 2x
from the first checkpoint to the last; no event-loop stall over 5 ms in the room's worker
while the room fills and the commands run; the stage's media p99 within 1 ms of before
while the room fills.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from signaling.settings import DEV_SECRET

from . import procstat, report, room_metrics, server_metrics
from .big_room_report import goals, summary
from .processes import STOP_TIMEOUT, BotGroup, ServerProcess, sfu_config
from .runner import BOT_PORTS, SFU_PORTS

KINDS = ("invite", "mute", "hand", "access")
READY_TIMEOUT = 60.0
MEDIA_POLL = 1.0
WARMUP = 3.0  # after the media started and the host joined, before measuring


@dataclass(frozen=True, slots=True, kw_only=True)
class BigRoomSpec:
    members: int = 5000
    checkpoints: tuple[int, ...] = (400, 1600)
    publishers: int = 1
    media_viewers: int = 4
    media_seconds: float = 10.0
    idle_seconds: float = 2.0
    rounds: int = 20
    concurrency: int = 4
    crowd_procs: int = 2
    workers: int = 1
    max_minutes: float = 25.0
    sfu_options: tuple[str, ...] = ()
    sfu_log_level: str = "warning"

    @property
    def base(self) -> int:
        """Members who are not the crowd: the stage, the media viewers, host, quiet member."""
        return self.publishers + self.media_viewers + 2

    @property
    def sizes(self) -> list[int]:
        return sorted({s for s in (*self.checkpoints, self.members) if self.base < s})


@dataclass(frozen=True, slots=True)
class Edge:
    """What is read at the edges of a measured interval."""

    scrape: room_metrics.Scrape
    cpu: float
    t: float
    busy: int
    total: int

    def __getitem__(self, i: int) -> Any:  # first.scrape is the scrape, [1] the CPU, [2] the time
        return (self.scrape, self.cpu, self.t)[i]


def _server_side(first: Edge, last: Edge) -> dict[str, Any]:
    """The room's worker between two edges: stalls, collector pauses, and how busy the
    machine was (a stall of a descheduled worker is a stall too, but a different cause)."""
    worker = room_metrics.home(last.scrape)
    ticks = last.total - first.total
    return {
        "stalls": room_metrics.stalls_between(first.scrape, last.scrape, worker),
        "gc_pause_ms": room_metrics.gc_pause_ms(first.scrape, last.scrape, worker),
        "machine_busy_pct": round((last.busy - first.busy) * 100 / ticks, 1) if ticks else None,
    }


class Driven(BotGroup):
    """A bot process answering commands with fields, some of which take long."""

    async def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        process = self.process
        assert process is not None and process.stdin is not None and process.stdout is not None
        async with self._lock:
            process.stdin.write(json.dumps(message).encode() + b"\n")
            await process.stdin.drain()
            try:
                line = await asyncio.wait_for(process.stdout.readline(), timeout)
            except TimeoutError:
                text = f"{self.name}: no answer to {message} in {timeout:.0f} s"
                raise RuntimeError(text) from None
        if not line:
            raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
        reply: dict[str, Any] = json.loads(line)
        return reply


class BigRoom:
    def __init__(self, spec: BigRoomSpec, out: Path) -> None:
        self.spec = spec
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        options = (
            "rooms.command_rate=1000",  # the host's batches are not rate limited
            "rooms.command_burst=1000",
            f"server.workers={spec.workers}",
            *spec.sfu_options,
        )
        config = sfu_config(
            port_min=SFU_PORTS[0],
            port_max=SFU_PORTS[1],
            stage_capacity=25,
            log_level=spec.sfu_log_level,
            extra=options,
        )
        self.server = ServerProcess("sfu", workdir=self.logs, config=config)
        self.media: list[BotGroup] = []
        self.crowd: list[Driven] = []
        self.deadline = time.monotonic() + spec.max_minutes * 60
        self.latency: dict[str, list[int]] = {}
        self.phase = "before"
        self._phase_lock = asyncio.Lock()
        self.errors: list[str] = []
        self.segments: list[dict[str, Any]] = []
        self.batches: list[dict[str, Any]] = []
        self.media_phases: dict[str, dict[str, Any]] = {}

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"the run took longer than --max-minutes {self.spec.max_minutes}")
        return left

    def _media_config(self, ports: tuple[int, int], budget: float) -> dict[str, Any]:
        return {
            "url": self.server.ws_url,
            "room": "bench",
            "secret": DEV_SECRET,
            "first_media": "video",
            "max_seconds": budget,
            "media_seconds": budget,
            "port_min": ports[0],
            "port_max": ports[1],
            "pacing_factor": 2.5,
        }

    async def execute(self) -> dict[str, Any]:
        spec = self.spec
        budget = spec.max_minutes * 60 + 60
        half = (BOT_PORTS[1] - BOT_PORTS[0] + 1) // 2
        ports = [(BOT_PORTS[0], BOT_PORTS[0] + half - 1), (BOT_PORTS[0] + half, BOT_PORTS[1])]
        sampler: asyncio.Task[None] | None = None
        try:
            await self.server.start()
            start = time.monotonic()
            publishers = BotGroup(
                "publishers",
                self._media_config(ports[0], budget)
                | {
                    "publish_audio": True,
                    "publish_video": True,
                    "indexes": list(range(spec.publishers)),
                    "start_at": start,
                    "join_rate": 1.0,
                },
                workdir=self.logs,
            )
            viewers = BotGroup(
                "viewers",
                self._media_config(ports[1], budget)
                | {
                    "indexes": list(range(spec.media_viewers)),
                    "start_at": start + spec.publishers + 1.0,
                    "join_rate": 5.0,
                    "nice": 19,
                },
                workdir=self.logs,
            )
            self.media = [publishers, viewers]
            for group in self.media:
                await group.start()
            await self._media_ready()
            for i in range(spec.crowd_procs):
                config = {
                    "url": self.server.ws_url,
                    "secret": DEV_SECRET,
                    "first": i,
                    "step": spec.crowd_procs,
                    "concurrency": max(1, round(spec.concurrency / spec.crowd_procs)),
                    "host": i == 0,
                    "max_seconds": budget,
                }
                group = Driven(f"crowd{i}", config, workdir=self.logs, module="benchmarks.crowd")
                self.crowd.append(group)
                await group.start()
            await self.crowd[0].request({"cmd": "host"}, 30.0)
            await asyncio.sleep(WARMUP)
            await self._drain_latency()  # samples so far are from the start-up
            sampler = asyncio.get_running_loop().create_task(self._sample_media())
            await self._media_window("before")
            await self._fill()
            await self._media_window("after")
            await self._set_phase("end")
        finally:
            if sampler is not None:
                sampler.cancel()
            await self._stop()
        return self.result()

    async def _media_ready(self) -> None:
        spec = self.spec
        ready_by = time.monotonic() + READY_TIMEOUT + spec.publishers
        while True:
            publishers, viewers = await asyncio.gather(*(g.stats() for g in self.media))
            if (
                publishers.get("published", 0) >= spec.publishers
                and viewers.get("with_media", 0) >= spec.media_viewers
            ):
                return
            if publishers.get("failed") or viewers.get("failed"):
                errors = [*publishers.get("errors", ()), *viewers.get("errors", ())]
                raise RuntimeError(f"media bots failed: {errors[:5]}")
            if time.monotonic() > ready_by:
                raise RuntimeError(f"media did not start: {viewers.get('waiting')}")
            await asyncio.sleep(0.5)

    async def _drain_latency(self) -> list[int]:
        replies = await asyncio.gather(*(g.stats() for g in self.media))
        for reply in replies:
            for error in reply.get("errors", ()):
                self._error(error)
        return [v for reply in replies for v in reply.get("latency_us", ())]

    async def _sample_media(self) -> None:
        """Every second: the stage's latency samples since the last, under the phase now."""
        while True:
            await asyncio.sleep(MEDIA_POLL)
            await self._set_phase(self.phase)

    async def _set_phase(self, phase: str) -> None:
        """The samples so far belong to the phase that ends; then `phase` begins."""
        async with self._phase_lock:
            self.latency.setdefault(self.phase, []).extend(await self._drain_latency())
            self.phase = phase

    async def _scrape(self) -> Edge:
        """/metrics, the server's CPU seconds (ns-precise, every thread of every process
        of its tree, from schedstat), the machine's CPU ticks and the time, now."""
        text = await server_metrics.scrape_text(self.server.port)
        if text is None:
            raise RuntimeError("the server's /metrics did not answer")
        busy, total = procstat.machine_ticks()
        cpu = _cpu_seconds(self.server.pid)
        return Edge(room_metrics.parse(text), cpu, time.monotonic(), busy, total)

    async def _media_window(self, phase: str) -> None:
        await self._set_phase(phase)
        first = await self._scrape()
        await asyncio.sleep(min(self.spec.media_seconds, self._left()))
        last = await self._scrape()
        self.media_phases[phase] = _server_side(first, last)

    async def _fill(self) -> None:
        spec = self.spec
        previous = spec.base
        for size in spec.sizes:
            crowd = size - spec.base
            shares = [len(range(i, crowd, spec.crowd_procs)) for i in range(spec.crowd_procs)]
            await self._set_phase("fill")
            first = await self._scrape()
            replies = await asyncio.gather(
                *(
                    group.request({"cmd": "fill", "members": share}, self._left())
                    for group, share in zip(self.crowd, shares, strict=True)
                )
            )
            last = await self._scrape()
            worker = room_metrics.home(last.scrape)
            joins = [j for reply in replies for j in reply["joins"]]
            self.segments.append(
                {
                    "from": previous,
                    "to": size,
                    "joins": len(joins),
                    "seconds": round(last.t - first.t, 3),
                    "server_join_mean_ms": room_metrics.join_mean_ms(
                        first.scrape, last.scrape, worker
                    ),
                    "server_cpu_seconds": round(last.cpu - first.cpu, 2),
                    "join_samples": joins,
                }
                | _server_side(first, last)
            )
            previous = size
            await self._set_phase("commands")
            await self._commands(size)
            await self._check_crowd()

    async def _commands(self, size: int) -> None:
        spec = self.spec
        first = await self._scrape()
        await asyncio.sleep(spec.idle_seconds)
        idle = await self._scrape()
        idle_rate = (idle.cpu - first.cpu) / max(1e-9, idle.t - first.t)
        for kind in KINDS:
            start = await self._scrape()
            reply = await self.crowd[0].request(
                {"cmd": "batch", "kind": kind, "rounds": spec.rounds}, self._left()
            )
            if "error" in reply:
                raise RuntimeError(f"batch {kind}: {reply['error']}")
            end = await self._scrape()
            worker = room_metrics.home(end.scrape)
            commands = sum(len(v) for v in reply["rtt_ms"].values())
            cpu = end.cpu - start.cpu - idle_rate * (end.t - start.t)
            sent = room_metrics.messages_out(start.scrape, end.scrape, worker)
            self.batches.append(
                {
                    "size": size,
                    "kind": kind,
                    "commands": commands,
                    "seconds": reply["seconds"],
                    "rtt_ms": {
                        name: _quantiles(values) for name, values in reply["rtt_ms"].items()
                    },
                    "rtt_median_ms": _quantiles(
                        [v for values in reply["rtt_ms"].values() for v in values]
                    )["median"],
                    "server_cpu_ms_per_command": round(cpu * 1000 / commands, 3),
                    "server_idle_cpu_util": round(idle_rate, 3),
                    "messages_out_per_command": round(sent / commands, 1) if sent else sent,
                }
                | _server_side(start, end)
            )

    async def _check_crowd(self) -> None:
        for group in self.crowd:
            stats = await group.request({"cmd": "stats"}, 30.0)
            group.last = stats
            for error in stats.get("errors", ()):
                self._error(f"{group.name}: {error}")

    def _error(self, text: str) -> None:
        if text not in self.errors and len(self.errors) < 50:
            self.errors.append(text)

    async def _stop(self) -> None:
        groups: list[BotGroup] = [*self.crowd, *self.media]
        await asyncio.gather(*(g.stop() for g in groups), return_exceptions=True)
        await asyncio.wait_for(self.server.stop(), STOP_TIMEOUT * 2)
        for group in groups:
            if "Traceback" in group.log_tail():
                self._error(f"{group.name} log: {group.log_tail()[-600:]}")
        log = self.server.log_path.read_text(errors="replace")
        if "Traceback" in log:
            self._error(f"server log: {log[log.index('Traceback') :][:1500]}")

    def result(self) -> dict[str, Any]:
        spec = self.spec
        segments = []
        for segment in self.segments:
            latencies = [j[1] for j in segment["join_samples"]]
            segments.append(
                {k: v for k, v in segment.items() if k != "join_samples"}
                | {"join_ms": _quantiles(latencies)}
                | {
                    "joins_per_s": round(segment["joins"] / segment["seconds"], 1)
                    if segment["seconds"]
                    else None
                }
            )
        media = {}
        for phase in ("before", "fill", "commands", "after"):
            samples = sorted(self.latency.get(phase, ()))
            media[phase] = {
                "latency_samples": len(samples),
                "latency_p50_ms": _pct(samples, 50),
                "latency_p99_ms": _pct(samples, 99),
            } | self.media_phases.get(phase, {})
        crowd = [group.last for group in self.crowd]
        result: dict[str, Any] = {
            "scenario": "big-room",
            "params": asdict(spec) | {"sizes": spec.sizes, "base_members": spec.base},
            "members": spec.members,
            "fill_seconds": round(sum(s["seconds"] for s in self.segments), 2),
            "joins": sum(s["joins"] for s in self.segments),
            "join_failures": sum(int(c.get("failed", 0)) for c in crowd),
            "crowd_disconnected": sum(int(c.get("lost", 0)) for c in crowd),
            "segments": segments,
            "commands": self.batches,
            "media": media,
            "errors": self.errors,
            "join_samples": [j for s in self.segments for j in s["join_samples"]],
        }
        result["goals"] = goals(result)
        return result


def _cpu_seconds(root: int) -> float:
    """CPU time of every thread of `root`'s process tree, from /proc/<pid>/task/<tid>/
    schedstat (nanoseconds; /proc/<pid>/stat counts 10 ms ticks, too coarse for a batch
    of commands costing a millisecond each)."""
    total = 0
    for pid in procstat.descendants(root):
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return total / 1e9


def _pct(values: list[int], pct: int) -> float | None:
    if len(values) < 2:
        return None
    return round(statistics.quantiles(values, n=100, method="inclusive")[pct - 1] / 1000, 3)


def _quantiles(values: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "median": None, "p99": None, "max": None}
    p99 = (
        statistics.quantiles(ordered, n=100, method="inclusive")[98]
        if len(ordered) > 1
        else ordered[0]
    )
    return {
        "count": len(ordered),
        "median": round(statistics.median(ordered), 3),
        "p99": round(p99, 3),
        "max": round(ordered[-1], 3),
    }


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v.strip())


def add_parser(scenarios: Any) -> None:
    """The `big-room` subcommand of `python -m benchmarks`."""
    d = BigRoomSpec()
    sub = scenarios.add_parser("big-room", help="one room filled to --members: signaling cost")
    sub.add_argument("--members", type=int, default=d.members, help="room size at the end")
    sub.add_argument(
        "--checkpoints",
        type=_sizes,
        default=d.checkpoints,
        help="room sizes where the fill pauses for the command batches, besides --members "
        "(default 400,1600)",
    )
    sub.add_argument("--publishers", type=int, default=d.publishers, help="A/V on stage")
    sub.add_argument("--media-viewers", type=int, default=d.media_viewers)
    sub.add_argument("--media-seconds", type=float, default=d.media_seconds)
    sub.add_argument("--idle-seconds", type=float, default=d.idle_seconds)
    sub.add_argument("--rounds", type=int, default=d.rounds, help="pairs of each command kind")
    sub.add_argument("--concurrency", type=int, default=d.concurrency, help="joins in flight")
    sub.add_argument("--crowd-procs", type=int, default=d.crowd_procs)
    sub.add_argument("--workers", type=int, default=d.workers, help="server.workers")
    sub.add_argument("--max-minutes", type=float, default=d.max_minutes, help="hard limit")
    sub.add_argument("--sfu-log-level", default=d.sfu_log_level)
    sub.add_argument("--sfu-option", action="append", default=[], metavar="SECTION.KEY=VALUE")
    sub.add_argument("--out", type=Path, help="output directory")


def spec_from(args: Any) -> BigRoomSpec:
    return BigRoomSpec(
        members=args.members,
        checkpoints=tuple(args.checkpoints),
        publishers=args.publishers,
        media_viewers=args.media_viewers,
        media_seconds=args.media_seconds,
        idle_seconds=args.idle_seconds,
        rounds=args.rounds,
        concurrency=args.concurrency,
        crowd_procs=args.crowd_procs,
        workers=args.workers,
        max_minutes=args.max_minutes,
        sfu_options=tuple(args.sfu_option),
        sfu_log_level=args.sfu_log_level,
    )


async def main(args: Any, out: Path, payload: dict[str, Any]) -> int:
    """Run it, write results.json, print the tables and the goals; 1 if it failed."""
    room = BigRoom(spec_from(args), out)
    try:
        result = await room.execute()
    except RuntimeError as exc:
        sys.stderr.write(f"big-room failed: {exc}\n")
        report.write_json(out / "results.json", payload | room.result() | {"failed": str(exc)})
        return 1
    report.write_json(out / "results.json", payload | result)
    print(summary(result))  # noqa: T201
    print(f"results: {out}")  # noqa: T201
    return 0
