"""stall: a starved media worker against `media.max_ingress_delay`.

For each value in `--delays`, a fresh server in one process (`server.workers = 1`) with
`media.max_ingress_delay` set to it; one A/V publisher and `--viewers` viewers, all
bots of `benchmarks.bots` running in this process. After every viewer has media and a
warm-up, the server process is stopped (SIGSTOP) for each length of `--stalls-ms` in
turn, `--repeat` times, one stall every `--every` seconds, and continued (SIGCONT)
after it: the worker gets no CPU at all, the hardest form of a brief starvation. Only
that one process is signalled, a bounded number of times, and it is always continued.

Per setting, and per stall length: how late packets reached the viewers after a stall
(the worst latency, and how long after SIGCONT latency stayed above normal + 50 ms
before 200 ms of normal latency: `recovery_ms`), the largest number of packets one
viewer received within 20 ms (`burst`; normal is a video frame, ~5), what the viewers
lost, what the server dropped as late
(`stage_sfu_rtp_packets_discarded_total{reason="late"}`), whether everybody stayed
connected (ICE consent, no `bye`), and the speaking changes the viewers were sent
about the publisher, whose audio level never changes (-30 dBov): every one after the
first is a flap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from sfu.aiortc_bridge import Certificate
from signaling.settings import DEV_SECRET

from . import report, server_metrics
from .bots import Bot, BotConfig, ProcessStats
from .processes import BotGroup, ServerProcess, sfu_config
from .receiver import _MAX_PLAUSIBLE_NS, STAMP_BYTES, Receiver
from .runner import BOT_PORTS, SFU_PORTS
from .send_clock import SendClock

NORMAL_MARGIN_MS = 50.0  # latency above normal by more than this counts as "not recovered"
BURST_BIN_MS = 20.0
NORMAL_WINDOW = 1.0  # s before each stall whose latency is "normal"
RECOVERED_FOR = 0.2  # s of normal latency that end a recovery
JOIN_TIMEOUT = 60.0
MAX_STALL = 2.0  # s: a longer stop is no "brief" starvation


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def add_parser(scenarios: Any) -> None:
    sub = scenarios.add_parser(
        "stall", help="a worker stopped for a few hundred ms, repeatedly, per max_ingress_delay"
    )
    sub.add_argument(
        "--delays",
        type=_floats,
        default=_floats("0,0.1,0.25,0.5,1.0"),
        help="media.max_ingress_delay values, one fresh server each (default 0,0.1,0.25,0.5,1.0)",
    )
    sub.add_argument(
        "--stalls-ms",
        type=_floats,
        default=_floats("200,400,800"),
        help="stall lengths in ms, taken in turn (default 200,400,800)",
    )
    sub.add_argument("--repeat", type=int, default=3, help="times each stall length is taken")
    sub.add_argument("--every", type=float, default=2.5, help="s from one stall to the next")
    sub.add_argument("--viewers", type=int, default=4, help="measured viewers (%(default)s)")
    sub.add_argument(
        "--load-viewers",
        type=int,
        default=0,
        help="more viewers in a bot process of their own (niced, thinned by --thin), so the "
        "server has a backlog to work through after a stall (default %(default)s)",
    )
    sub.add_argument("--thin", type=int, default=16, help="the load viewers keep 1 RTP in N")
    sub.add_argument("--warmup", type=float, default=3.0, help="s of media before the first")
    sub.add_argument("--sfu-log-level", default="warning")
    sub.add_argument("--sfu-option", action="append", default=[], metavar="SECTION.KEY=VALUE")
    sub.add_argument("--out", type=Path, help="output directory")


# -- bots --------------------------------------------------------------------------------


class TimelineReceiver(Receiver):
    """Keeps (kernel arrival ns, latency ns) of every RTP packet, instead of samples."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timeline: list[tuple[int, int]] = []

    def _latency(self, plain: bytes, kernel_ns: int | None) -> None:
        if len(plain) < 12 + STAMP_BYTES:
            return
        sent = int.from_bytes(plain[-STAMP_BYTES:], "big")
        arrival = kernel_ns if kernel_ns is not None else time.monotonic_ns()
        delay = arrival - sent
        if 0 <= delay < _MAX_PLAUSIBLE_NS:
            self.timeline.append((arrival, delay))


class StallBot(Bot):
    """A normal bot that keeps every packet's latency and the speaking changes it is sent."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.receiver: TimelineReceiver = TimelineReceiver(
            sample_every=1,
            samples=[],
            app_samples=[],
            on_first_media=self._first_media,
        )
        self.receiver.first_media_kind = self.config.first_media
        self._subscriber.on_rtp = self.receiver.on_rtp
        self.speaking: list[tuple[float, bool]] = []
        self.bye: str | None = None

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "speaking":
            self.speaking.append((time.monotonic(), bool(message.get("speaking"))))
        elif kind == "bye" and self.bye is None:
            self.bye = str(message.get("reason"))
        await super()._dispatch(message)


# -- analysis (pure) -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stall:
    start_ns: int  # SIGSTOP sent
    end_ns: int  # SIGCONT sent
    length_ms: float
    until_ns: int  # its effects are watched until here (the next stall, or the end)


def normal_latency_ms(timelines: list[list[tuple[int, int]]], stalls: list[Stall]) -> float:
    """Median latency of the packets that arrived in the second before each stall."""
    window = int(NORMAL_WINDOW * 1e9)
    values = [
        delay
        for timeline in timelines
        for arrival, delay in timeline
        for stall in stalls
        if stall.start_ns - window <= arrival < stall.start_ns
    ]
    return statistics.median(values) / 1e6 if values else 0.0


def stall_effects(
    timelines: list[list[tuple[int, int]]], stalls: list[Stall], normal_ms: float
) -> list[dict[str, Any]]:
    """Per stall, over every viewer's packets from the stall to `until_ns`: the worst
    latency; `recovery_ms`, from SIGCONT to the first packet from which on every packet
    for RECOVERED_FOR is within normal + NORMAL_MARGIN_MS (back to normal, so a later
    hiccup of a busy machine is not counted); the largest count one viewer received
    within BURST_BIN_MS; and the packets received."""
    out = []
    limit_ns = (normal_ms + NORMAL_MARGIN_MS) * 1e6
    bin_ns = int(BURST_BIN_MS * 1e6)
    steady_ns = int(RECOVERED_FOR * 1e9)
    for stall in stalls:
        worst = burst = received = 0
        recovered_ns = 0
        for timeline in timelines:
            bins: dict[int, int] = {}
            mine = sorted(p for p in timeline if stall.start_ns <= p[0] < stall.until_ns)
            received += len(mine)
            for arrival, delay in mine:
                worst = max(worst, delay)
                key = arrival // bin_ns
                bins[key] = bins.get(key, 0) + 1
            burst = max(burst, max(bins.values(), default=0))
            # The last late packet before the first RECOVERED_FOR-long run of normal ones.
            back = stall.end_ns
            run_from: int | None = None
            for arrival, delay in mine:
                if delay > limit_ns:
                    back, run_from = arrival, None
                elif run_from is None:
                    run_from = arrival
                if run_from is not None and arrival - run_from >= steady_ns:
                    break
            recovered_ns = max(recovered_ns, back - stall.end_ns)
        out.append(
            {
                "stall_ms": stall.length_ms,
                "max_latency_ms": round(worst / 1e6, 1),
                "recovery_ms": round(max(0, recovered_ns) / 1e6, 1),
                "burst": burst,
                "received": received,
            }
        )
    return out


def by_length(effects: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Medians (and the worst latency) of the stalls of each length."""
    out: dict[str, dict[str, float]] = {}
    for length in sorted({e["stall_ms"] for e in effects}):
        rows = [e for e in effects if e["stall_ms"] == length]
        out[f"{length:g}"] = {
            "recovery_ms_median": statistics.median(r["recovery_ms"] for r in rows),
            "recovery_ms_max": max(r["recovery_ms"] for r in rows),
            "max_latency_ms": max(r["max_latency_ms"] for r in rows),
            "burst_median": statistics.median(r["burst"] for r in rows),
            "burst_max": max(r["burst"] for r in rows),
        }
    return out


def flaps(changes: list[list[tuple[float, bool]]]) -> int:
    """Speaking changes after each viewer's first (the publisher's level never changes),
    summed over viewers."""
    return sum(max(0, len(c) - 1) for c in changes)


# -- one run -------------------------------------------------------------------------------


async def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # bots announce nothing: polled, bounded
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _wait_load(load: BotGroup, count: int) -> None:
    deadline = time.monotonic() + JOIN_TIMEOUT + count / 40.0
    while time.monotonic() < deadline:
        reply = await load.stats()
        if int(reply.get("with_media", 0)) + int(reply.get("failed", 0)) >= count:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError("timed out waiting for the load viewers' media")


async def _stall_server(pid: int, seconds: float) -> tuple[int, int]:
    """SIGSTOP `pid` for `seconds`, then SIGCONT, whatever happens meanwhile."""
    start = time.monotonic_ns()
    os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)
    return start, time.monotonic_ns()


async def run_one(args: Any, delay: float, workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - before anything runs
    config = sfu_config(
        port_min=SFU_PORTS[0],
        port_max=SFU_PORTS[1],
        stage_capacity=25,
        log_level=args.sfu_log_level,
        extra=(*args.sfu_option, "server.workers=1", f"media.max_ingress_delay={delay}"),
    )
    server = ServerProcess("sfu", workdir=workdir, config=config)
    lengths = [ms for _ in range(args.repeat) for ms in args.stalls_ms]
    budget = JOIN_TIMEOUT + args.warmup + len(lengths) * args.every + 60
    common = {
        "secret": DEV_SECRET,
        "first_media": "video",
        "start_at": time.monotonic(),
        "max_seconds": budget,
        "media_seconds": budget,
        "pacing_factor": 2.5,
    }
    bots: list[StallBot] = []
    load: BotGroup | None = None
    tasks: list[asyncio.Task[None]] = []
    stalls: list[Stall] = []
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        await server.start()
        certificate = Certificate()
        stats = ProcessStats()
        clock = SendClock()
        quarter = (BOT_PORTS[1] - BOT_PORTS[0] + 1) // 4  # publisher, viewers, load x2

        def start(index: int, bot_config: BotConfig) -> StallBot:
            bot = StallBot(
                index, bot_config, http=http, certificate=certificate, stats=stats, send_clock=clock
            )
            bots.append(bot)
            tasks.append(asyncio.get_running_loop().create_task(bot.run()))
            return bot

        publisher = start(
            0,
            BotConfig(
                url=server.ws_url,
                publish_audio=True,
                publish_video=True,
                indexes=(0,),
                port_min=BOT_PORTS[0],
                port_max=BOT_PORTS[0] + quarter - 1,
                **common,
            ),
        )
        await _wait(lambda: publisher.published or publisher.failed, JOIN_TIMEOUT, "publishing")
        viewer_config = BotConfig(
            url=server.ws_url,
            indexes=tuple(range(1, args.viewers + 1)),
            port_min=BOT_PORTS[0] + quarter,
            port_max=BOT_PORTS[0] + 2 * quarter - 1,
            **common,
        )
        viewers = [start(i, viewer_config) for i in viewer_config.indexes]
        await _wait(
            lambda: all(v.has_media or v.failed for v in viewers), JOIN_TIMEOUT, "viewers' media"
        )
        if args.load_viewers:
            first = args.viewers + 1
            load = BotGroup(
                "load",
                {
                    **common,
                    "url": server.ws_url,
                    "indexes": list(range(first, first + args.load_viewers)),
                    "start_at": time.monotonic(),
                    "join_rate": 40.0,
                    "port_min": BOT_PORTS[0] + 2 * quarter,
                    "port_max": BOT_PORTS[1],
                    "nice": 19,
                    "thin_every": args.thin,
                },
                workdir=workdir,
            )
            await load.start()
            await _wait_load(load, args.load_viewers)
        await asyncio.sleep(args.warmup)
        first_text = await server_metrics.scrape_text(server.port)
        for n, ms in enumerate(lengths):
            seconds = min(ms / 1000.0, MAX_STALL)
            sys.stderr.write(f"\r  max_ingress_delay={delay:g}: stall {n + 1}/{len(lengths)}")
            begin, end = await _stall_server(server.pid, seconds)
            await asyncio.sleep(max(0.0, args.every - seconds))
            stalls.append(Stall(begin, end, ms, time.monotonic_ns()))
        sys.stderr.write("\n")
        text = await server_metrics.scrape_text(server.port)
        result = _result(delay, viewers, [publisher, *viewers], stalls, first_text, text)
    finally:
        for bot in bots:
            with contextlib.suppress(Exception):
                await bot.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await http.close()
        if load is not None:
            await load.stop()
        await server.stop()
    return result


def _late(text: str | None) -> float:
    if text is None:
        return 0.0
    return server_metrics.by_label(text, "stage_sfu_rtp_packets_discarded_total", "reason").get(
        "late", 0.0
    )


def _result(
    delay: float,
    viewers: list[StallBot],
    everyone: list[StallBot],
    stalls: list[Stall],
    first_text: str | None,
    text: str | None,
) -> dict[str, Any]:
    timelines = [v.receiver.timeline for v in viewers]
    normal = normal_latency_ms(timelines, stalls)
    effects = stall_effects(timelines, stalls, normal)
    received = expected = 0
    for v in viewers:
        r, e, *_ = v.receiver.totals()
        received += r
        expected += e
    speaking = totals = None
    if text is not None:
        totals = server_metrics.totals(text, ["stage_sfu_speaking_changes_total"])
        speaking = totals.get("stage_sfu_speaking_changes_total")
    return {
        "max_ingress_delay": delay,
        "stalls": len(stalls),
        "normal_latency_ms": round(normal, 2),
        "by_stall_ms": by_length(effects),
        "late_discarded": round(_late(text) - _late(first_text)),
        "viewer_loss_pct": round(max(0, expected - received) * 100 / expected, 2)
        if expected
        else None,
        "speaking_flaps": flaps([v.speaking for v in viewers]),
        "server_speaking_changes": speaking,
        "connected_at_end": sum(
            1 for b in everyone if b.connected or (b.published and not b.failed)
        ),
        "participants": len(everyone),
        "failed": [b.name for b in everyone if b.failed],
        "byes": [b.bye for b in everyone if b.bye],
        "stall_effects": effects,
    }


def table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "delay_s  stall_ms  recovery_ms(med/max)  max_latency_ms  burst(med/max)  "
        "late_dropped  loss%  flaps  connected"
    ]
    for r in runs:
        for length, row in r["by_stall_ms"].items():
            lines.append(
                f"{r['max_ingress_delay']:<8g} {length:<9} "
                f"{row['recovery_ms_median']:>7g}/{row['recovery_ms_max']:<12g} "
                f"{row['max_latency_ms']:<15g} {row['burst_median']:>5g}/{row['burst_max']:<9g} "
                f"{r['late_discarded']:<13} {r['viewer_loss_pct']!s:<6} {r['speaking_flaps']:<6} "
                f"{r['connected_at_end']}/{r['participants']}"
            )
    return "\n".join(lines)


async def main(args: Any, out: Path, header: dict[str, Any]) -> int:
    if any(d < 0 for d in args.delays) or not args.stalls_ms or args.repeat < 1:
        sys.stderr.write("stall: delays must be >= 0, with at least one stall\n")
        return 2
    runs: list[dict[str, Any]] = []
    payload = {**header, "scenario": "stall", "runs": runs}
    status = 0
    for i, delay in enumerate(args.delays):
        try:
            runs.append(await run_one(args, delay, out / "logs" / f"{i:02d}-delay-{delay:g}"))
        except RuntimeError as exc:
            sys.stderr.write(f"\nrun max_ingress_delay={delay:g} failed: {exc}\n")
            status = 1
        report.write_json(out / "results.json", payload)
    print(table(runs))  # noqa: T201
    print(f"results: {out}")  # noqa: T201
    return status
