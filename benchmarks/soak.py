"""Soak: one room with everything moving for `--minutes`, the server's footprint sampled.

The room (`bench`): `--publishers` on stage for the whole run (A/V, `benchmarks.bots`),
`--viewers` watching for the whole run (their loss and latency show whether the media
stayed healthy), and `benchmarks.soak_bots` for the movement: a host opening and closing
polls that everyone votes in, `--hoppers` people leaving and returning to the stage
(`leave_stage`, `join_stage`, a new `publish`), `--quiet-hoppers` taking and leaving the
stage with microphone and camera off (no tracks), a viewer joining every `--churn-every`
seconds and leaving after `--viewer-lifetime`, and `--chat-rate` chat lines a second.

Every `--sample-seconds` (10) the runner reads, for the server and each of its processes
(the front and its media workers), VmRSS and Threads from /proc/<pid>/status and the
entries of /proc/<pid>/fd, and from /metrics the room, participant, connection,
transport, producer and consumer gauges; every minute it prints a line. At the end it
fits a line to each series after `--warmup-minutes` (`benchmarks.trend`) and reports the
slopes, RSS as % of its level per hour. Then every bot leaves, and the gauges are read
once more: what the server still holds for a room nobody is in.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from signaling.settings import DEV_SECRET

from . import procstat, report, server_metrics, trend
from .processes import BotGroup, ServerProcess, sfu_config
from .runner import BOT_PORTS, SFU_PORTS

# Gauges read from /metrics, summed over labels and workers, and their short names.
GAUGES = {
    "stage_sfu_rooms": "rooms",
    "stage_sfu_participants": "participants",
    "stage_sfu_participants_disconnected": "disconnected",
    "stage_sfu_connections": "connections",
    "stage_sfu_routers": "routers",
    "stage_sfu_transports": "transports",
    "stage_sfu_producers": "producers",
    "stage_sfu_consumers": "consumers",
    "stage_sfu_consumers_waiting_for_key_frame": "waiting_for_key_frame",
    "stage_sfu_raised_hands": "raised_hands",
    "stage_sfu_asyncio_tasks": "tasks",
}
# Series whose trend is reported (sample keys).
TRENDS = (
    "rss_mb",
    "fds",
    "threads",
    "tasks",
    "participants",
    "connections",
    "transports",
    "producers",
    "consumers",
)
_OBJECTS = ("rooms", "participants", "transports", "consumers", "producers")
SETTLE_SECONDS = 40.0  # after everyone left: longer than rooms.reconnect_grace (30 s)


@dataclass(frozen=True, slots=True, kw_only=True)
class SoakSpec:
    minutes: float = 10.0
    publishers: int = 2
    viewers: int = 6
    hoppers: int = 1
    stage_seconds: float = 100.0
    off_stage_seconds: float = 40.0
    quiet_hoppers: int = 2
    quiet_stage_seconds: float = 20.0
    quiet_off_stage_seconds: float = 10.0
    churn_every: float = 8.0
    viewer_lifetime: float = 40.0
    churn_identities: int = 0  # > 0: churn viewers reuse this many identities in turn
    chat_rate: float = 1.0
    poll_seconds: float = 60.0
    warmup_minutes: float | None = None  # None: a fifth of the run, at most 10 minutes
    sample_seconds: float = 10.0
    sfu_options: tuple[str, ...] = ()
    sfu_log_level: str = "warning"
    viewers_nice: int = 19

    @property
    def warmup_seconds(self) -> float:
        if self.warmup_minutes is not None:
            return self.warmup_minutes * 60
        return min(600.0, self.minutes * 60 / 5)


class Soak:
    def __init__(self, spec: SoakSpec, out: Path, payload: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.out = out
        self.payload = payload or {}  # the machine, the source...: written with the results
        self.logs = out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        config = sfu_config(
            port_min=SFU_PORTS[0],
            port_max=SFU_PORTS[1],
            stage_capacity=25,
            log_level=spec.sfu_log_level,
            extra=spec.sfu_options,
        )
        self.server = ServerProcess("sfu", workdir=self.logs, config=config)
        self.groups: list[BotGroup] = []
        self.samples: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._last_viewers: dict[str, Any] = {}

    def _bot_config(self, ports: tuple[int, int], budget: float) -> dict[str, Any]:
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
        duration = spec.minutes * 60
        budget = duration + 120
        span = (BOT_PORTS[1] - BOT_PORTS[0] + 1) // 3
        ports = [(BOT_PORTS[0] + i * span, BOT_PORTS[0] + (i + 1) * span - 1) for i in range(3)]
        residual: dict[str, Any] = {}
        try:
            await self.server.start()
            start = time.monotonic()
            publishers = BotGroup(
                "publishers",
                self._bot_config(ports[0], budget)
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
                self._bot_config(ports[1], budget)
                | {
                    "indexes": list(range(spec.viewers)),
                    "start_at": start + spec.publishers + 1.0,
                    "join_rate": 5.0,
                    "nice": spec.viewers_nice,
                },
                workdir=self.logs,
            )
            movement = BotGroup(
                "soak",
                {
                    "bots": self._bot_config(ports[2], budget),
                    "hoppers": spec.hoppers,
                    "stage_seconds": spec.stage_seconds,
                    "off_stage_seconds": spec.off_stage_seconds,
                    "quiet_hoppers": spec.quiet_hoppers,
                    "quiet_stage_seconds": spec.quiet_stage_seconds,
                    "quiet_off_stage_seconds": spec.quiet_off_stage_seconds,
                    "churn_every": spec.churn_every,
                    "viewer_lifetime": spec.viewer_lifetime,
                    "churn_identities": spec.churn_identities,
                    "chat_rate": spec.chat_rate,
                    "poll_seconds": spec.poll_seconds,
                    "max_seconds": budget,
                },
                workdir=self.logs,
                module="benchmarks.soak_bots",
            )
            self.groups = [publishers, viewers, movement]
            await publishers.start()
            await viewers.start()
            await asyncio.sleep(spec.publishers + 2.0)  # the stage first, then the movement
            await movement.start()
            await self._sample_until(time.monotonic(), duration)
            await asyncio.gather(*(g.stop() for g in self.groups), return_exceptions=True)
            residual = await self._settle()
        finally:
            await asyncio.gather(*(g.stop() for g in self.groups), return_exceptions=True)
            await self.server.stop()
            for group in self.groups:
                tail = group.log_tail()
                if "Traceback" in tail:
                    self.errors.append(f"{group.name} log: {tail[-600:]}")
            log = self.server.log_path.read_text(errors="replace")
            if "Traceback" in log:
                self.errors.append(f"server log: {log[log.index('Traceback') :][:1500]}")
        result = self.result(residual)
        self._write(result)
        return result

    def _write(self, result: dict[str, Any]) -> None:
        report.write_json(self.out / "results.json", self.payload | result)

    async def _sample_until(self, t0: float, duration: float) -> None:
        spec = self.spec
        next_print = 60.0
        while True:
            elapsed = time.monotonic() - t0
            sample = await self._sample(elapsed)
            self.samples.append(sample)
            if elapsed >= next_print or elapsed >= duration:
                print(_line(sample, first=len(self.samples) <= 1 or next_print == 60.0), flush=True)  # noqa: T201
                next_print += 60.0
                self._write(self.result({}) | {"partial": True})
            if elapsed >= duration:
                return
            await asyncio.sleep(
                max(0.0, min(spec.sample_seconds, t0 + duration - time.monotonic()))
            )

    async def _sample(self, elapsed: float) -> dict[str, Any]:
        processes: dict[int, _Process] = {}
        for pid in procstat.descendants(self.server.pid):
            status = procstat.process_status(pid)
            if status is not None:
                processes[pid] = {**status, "role": _role(pid, self.server.pid)}
        text = await server_metrics.scrape_text(self.server.port)
        gauges: dict[str, float | None] = dict.fromkeys(GAUGES.values())
        if text is None:
            self._error(f"{elapsed:.0f}s: /metrics did not answer")
        else:
            for name, value in server_metrics.totals(text, GAUGES).items():
                gauges[GAUGES[name]] = value
        replies = await asyncio.gather(*(g.stats() for g in self.groups))
        publishers, viewers, movement = replies
        for reply in replies:
            for error in reply.get("errors", ()):
                self._error(error)
        last = self._last_viewers
        received = viewers.get("received", 0) - last.get("received", 0)
        expected = viewers.get("expected", 0) - last.get("expected", 0)
        latency = sorted(viewers.get("latency_us", ()))
        self._last_viewers = viewers
        return {
            "t": round(elapsed, 1),
            "rss_mb": round(sum(p["rss"] for p in processes.values()) / 2**20, 2),
            "fds": sum(p["fds"] for p in processes.values()),
            "threads": sum(p["threads"] for p in processes.values()),
            "processes": {
                p["role"]: {"pid": pid, "rss_mb": round(p["rss"] / 2**20, 2), "fds": p["fds"]}
                for pid, p in processes.items()
            },
            **gauges,
            "viewers_with_media": viewers.get("with_media"),
            "publishers_published": publishers.get("published"),
            "viewers_loss_pct": round(max(0, expected - received) * 100 / expected, 3)
            if expected > 0
            else None,
            "viewers_latency_p99_ms": round(
                statistics.quantiles(latency, n=100, method="inclusive")[98] / 1000, 2
            )
            if len(latency) > 1
            else None,
            "movement": {k: v for k, v in movement.items() if k != "errors"},
        }

    async def _settle(self) -> dict[str, Any]:
        """Everyone left: wait (bounded) for the room to go, then read the gauges once."""
        deadline = time.monotonic() + SETTLE_SECONDS
        gauges: dict[str, float] = {}
        while time.monotonic() < deadline:
            text = await server_metrics.scrape_text(self.server.port)
            if text is not None:
                gauges = {GAUGES[k]: v for k, v in server_metrics.totals(text, GAUGES).items()}
                if not any(gauges.get(k) for k in _OBJECTS):
                    break
            await asyncio.sleep(2.0)
        processes = [procstat.process_status(pid) for pid in procstat.descendants(self.server.pid)]
        alive = [p for p in processes if p is not None]
        return {
            "after_seconds": round(SETTLE_SECONDS - max(0.0, deadline - time.monotonic()), 1),
            **gauges,
            "rss_mb": round(sum(p["rss"] for p in alive) / 2**20, 2),
            "fds": sum(p["fds"] for p in alive),
            "threads": sum(p["threads"] for p in alive),
        }

    def _error(self, text: str) -> None:
        if text not in self.errors and len(self.errors) < 50:
            self.errors.append(text)

    def result(self, residual: dict[str, Any]) -> dict[str, Any]:
        warmup = self.spec.warmup_seconds
        ts = [s["t"] for s in self.samples]
        trends: dict[str, Any] = {}
        for key in TRENDS:
            pairs = [(s["t"], s[key]) for s in self.samples if s.get(key) is not None]
            trends[key] = trend.trend([t for t, _ in pairs], [v for _, v in pairs], warmup=warmup)
        roles = sorted({role for s in self.samples for role in s["processes"]})
        for role in roles:
            pairs = [
                (s["t"], s["processes"][role]["rss_mb"])
                for s in self.samples
                if role in s["processes"]
            ]
            trends[f"rss_mb:{role}"] = trend.trend(
                [t for t, _ in pairs], [v for _, v in pairs], warmup=warmup
            )
        settled = [s for s in self.samples if s["t"] >= warmup]
        losses = [s["viewers_loss_pct"] for s in settled if s["viewers_loss_pct"] is not None]
        p99s = [s["viewers_latency_p99_ms"] for s in settled if s["viewers_latency_p99_ms"]]
        rss_pct = trends["rss_mb"]["pct_per_hour"]
        movement = self.samples[-1]["movement"] if self.samples else {}
        return {
            "scenario": "soak",
            "params": asdict(self.spec) | {"warmup_seconds": warmup},
            "duration_seconds": ts[-1] if ts else 0,
            "trends": trends,
            "rss_goal_pct_per_hour": 1.0,
            "rss_within_goal": rss_pct is not None and rss_pct <= 1.0,
            "viewers_loss_pct_max": max(losses, default=None),
            "viewers_loss_pct_mean": round(statistics.fmean(losses), 4) if losses else None,
            "viewers_latency_p99_ms_median": round(statistics.median(p99s), 2) if p99s else None,
            "movement": movement,
            "after_everyone_left": residual,
            "errors": self.errors,
            "samples": self.samples,
        }


class _Process(procstat.ProcessStatus):
    role: str  # front, worker<n> or other<pid>


def _role(pid: int, root: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"pid{pid}"
    words = command.split()
    if "signaling.web.worker_main" in words and "--index" in words[:-1]:
        return f"worker{words[words.index('--index') + 1]}"
    return "front" if pid == root else f"other{pid}"


_HEADER = (
    f"{'min':>5} {'RSS MB':>8} {'fds':>5} {'thr':>4} {'rooms':>5} {'ppl':>4} {'conn':>4} "
    f"{'transp':>6} {'prod':>4} {'cons':>4} {'loss%':>6} {'p99ms':>6} "
    f"{'joins':>5} {'hops':>4} {'polls':>5} {'chat':>5}"
)


def _line(sample: dict[str, Any], *, first: bool) -> str:
    m = sample["movement"]

    def num(value: Any, fmt: str = "{:.0f}") -> str:
        return "-" if value is None else fmt.format(value)

    row = (
        f"{sample['t'] / 60:>5.1f} {sample['rss_mb']:>8.1f} {sample['fds']:>5} "
        f"{sample['threads']:>4} {num(sample['rooms']):>5} {num(sample['participants']):>4} "
        f"{num(sample['connections']):>4} {num(sample['transports']):>6} "
        f"{num(sample['producers']):>4} {num(sample['consumers']):>4} "
        f"{num(sample['viewers_loss_pct'], '{:.2f}'):>6} "
        f"{num(sample['viewers_latency_p99_ms'], '{:.1f}'):>6} "
        f"{m.get('viewer_joins', 0):>5} {m.get('stage_joins', 0):>4} "
        f"{m.get('polls_created', 0):>5} {m.get('chat_sent', 0):>5}"
    )
    return f"{_HEADER}\n{row}" if first else row


def summary(result: dict[str, Any]) -> str:
    """The trends as a table, then what was left after everyone went."""
    lines = ["series              start      end   slope/hour   %/hour  points"]
    for key, t in result["trends"].items():
        if t["per_hour"] is None:
            continue
        pct = "-" if t["pct_per_hour"] is None else f"{t['pct_per_hour']:+.2f}"
        lines.append(
            f"{key:<18} {t['start']:>7.1f} {t['end']:>8.1f} {t['per_hour']:>+12.2f} "
            f"{pct:>8} {t['points']:>7}"
        )
    m = result["movement"]
    lines.append(
        f"movement: {m.get('viewer_joins', 0)} viewer joins "
        f"({m.get('viewer_failures', 0)} failed), "
        f"{m.get('stage_joins', 0)} returns to the stage / {m.get('stage_leaves', 0)} leaves "
        f"({m.get('republished', 0)} republished), {m.get('polls_created', 0)} polls, "
        f"{m.get('votes', 0)} votes, {m.get('chat_sent', 0)} chat lines"
    )
    lines.append(
        f"steady viewers: loss mean {result['viewers_loss_pct_mean']}% max "
        f"{result['viewers_loss_pct_max']}%, per-sample p99 latency median "
        f"{result['viewers_latency_p99_ms_median']} ms"
    )
    lines.append(f"after everyone left: {result['after_everyone_left']}")
    rss = result["trends"]["rss_mb"]
    lines.append(
        f"RSS trend after {result['params']['warmup_seconds'] / 60:.1f} min warm-up: "
        f"{rss['pct_per_hour']} %/hour (goal <= 1): "
        f"{'within' if result['rss_within_goal'] else 'NOT within'} the goal"
    )
    return "\n".join(lines)


def add_parser(scenarios: Any) -> None:
    """The `soak` subcommand of `python -m benchmarks`."""
    d = SoakSpec()
    sub = scenarios.add_parser("soak", help="one room with everything moving for --minutes")
    sub.add_argument("--minutes", type=float, default=d.minutes, help="duration (%(default)s)")
    sub.add_argument("--publishers", type=int, default=d.publishers, help="A/V, whole run")
    sub.add_argument("--viewers", type=int, default=d.viewers, help="watching the whole run")
    sub.add_argument("--hoppers", type=int, default=d.hoppers, help="on and off the stage")
    sub.add_argument("--stage-seconds", type=float, default=d.stage_seconds)
    sub.add_argument("--off-stage-seconds", type=float, default=d.off_stage_seconds)
    sub.add_argument(
        "--quiet-hoppers", type=int, default=d.quiet_hoppers, help="on stage without tracks"
    )
    sub.add_argument("--quiet-stage-seconds", type=float, default=d.quiet_stage_seconds)
    sub.add_argument("--quiet-off-stage-seconds", type=float, default=d.quiet_off_stage_seconds)
    sub.add_argument("--churn-every", type=float, default=d.churn_every, help="s between joins")
    sub.add_argument("--viewer-lifetime", type=float, default=d.viewer_lifetime)
    sub.add_argument(
        "--churn-identities",
        type=int,
        default=d.churn_identities,
        help="churn viewers reuse this many identities in turn (0: a new one each time)",
    )
    sub.add_argument("--chat-rate", type=float, default=d.chat_rate, help="lines/s in the room")
    sub.add_argument("--poll-seconds", type=float, default=d.poll_seconds)
    sub.add_argument("--warmup-minutes", type=float, default=None, help="excluded from fits")
    sub.add_argument("--sample-seconds", type=float, default=d.sample_seconds)
    sub.add_argument("--viewers-nice", type=int, default=d.viewers_nice)
    sub.add_argument("--sfu-log-level", default=d.sfu_log_level)
    sub.add_argument("--sfu-option", action="append", default=[], metavar="SECTION.KEY=VALUE")
    sub.add_argument("--out", type=Path, help="output directory")


def spec_from(args: Any) -> SoakSpec:
    return SoakSpec(
        minutes=args.minutes,
        publishers=args.publishers,
        viewers=args.viewers,
        hoppers=args.hoppers,
        stage_seconds=args.stage_seconds,
        off_stage_seconds=args.off_stage_seconds,
        quiet_hoppers=args.quiet_hoppers,
        quiet_stage_seconds=args.quiet_stage_seconds,
        quiet_off_stage_seconds=args.quiet_off_stage_seconds,
        churn_every=args.churn_every,
        viewer_lifetime=args.viewer_lifetime,
        churn_identities=args.churn_identities,
        chat_rate=args.chat_rate,
        poll_seconds=args.poll_seconds,
        warmup_minutes=args.warmup_minutes,
        sample_seconds=args.sample_seconds,
        sfu_options=tuple(args.sfu_option),
        sfu_log_level=args.sfu_log_level,
        viewers_nice=args.viewers_nice,
    )


async def main(args: Any, out: Path, payload: dict[str, Any]) -> int:
    """Run the soak, write results.json (also once a minute while it runs), print the
    trends; 1 if the run could not start."""
    soak = Soak(spec_from(args), out, payload)
    try:
        result = await soak.execute()
    except RuntimeError as exc:
        sys.stderr.write(f"soak failed: {exc}\n")
        return 1
    print(summary(result))  # noqa: T201
    for error in result["errors"][:10]:
        print(f"  ! {error[:300]}")  # noqa: T201
    print(f"results: {out}")  # noqa: T201
    return 0
