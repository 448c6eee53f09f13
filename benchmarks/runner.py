"""One measured run: start the server and the bots, measure a window, stop everything.

Phases: the publishers join and start sending; the viewers join at `join_rate` per
second (spread over the bot processes); in steady scenarios the window opens once every
viewer receives media (or the join deadline passes) plus a warm-up, and lasts `seconds`;
in a join storm it opens just before the first viewer joins and closes `seconds` after
the last one received media. Counters are read from every bot process and from /proc at
the window's edges; see README.md for what each reported field means.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from signaling.settings import DEV_SECRET

from . import procstat, server_metrics
from .processes import BotGroup, ServerProcess, sfu_config
from .progress import Progress

SFU_PORTS = (20000, 34999)
BOT_PORTS = (40000, 59999)
PUBLISH_TIMEOUT = 30.0  # plus one second per publisher
JOIN_SLACK = 30.0  # beyond viewers / join_rate
POLL_INTERVAL = 1.0
# The server kept up with a run when it accepted nearly all the publishers sent, dropped
# next to nothing on the way out, and forwarded without a backlog (loopback forwarding
# takes about a millisecond when it does).
KEPT_UP_LOSS_PCT = 1.0
KEPT_UP_LATENCY_P50_MS = 50.0
VIEWERS_PER_PROCESS = 75
MAX_PROCESSES = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSpec:
    scenario: str
    target: str  # "sfu", "sfu-python" (the pure-Python fan-out, one process) or "relay"
    publishers: int
    publish_audio: bool
    publish_video: bool
    viewers: int
    seconds: float
    join_rate: float
    warmup: float = 2.0
    processes: int = 0  # viewer bot processes; 0 = one per 75 viewers, at most 4
    storm: bool = False
    sfu_log_level: str = "warning"
    sfu_options: tuple[str, ...] = ()  # extra "section.key=value" settings for the SFU
    viewers_nice: int = 19  # viewer bot processes yield the CPU to the server and publishers
    rooms: int = 1  # `publishers` on stage in each room; viewers spread evenly over rooms
    workers: int | None = None  # server.workers for this run; None = the server's default
    thin_viewers: int = 0  # > 0: viewers' sockets keep one RTP packet in this many
    pacing_factor: float = 2.5  # publishers pace video at this x the clip's bitrate; 0 = burst
    chat_rate: float = 0.0  # chat lines a second in each room, posted by its publishers
    simulcast: bool = False  # publishers send video as three encodings (160x90 to 640x360)
    # Viewer i shows every video in a tile view_heights[i % len] device pixels tall
    # (`view_tracks`; 0 = no limit); () = viewers never say.
    view_heights: tuple[int, ...] = ()
    viewer_transport_cc: bool = True  # bots' answers keep transport-cc, as browsers' do

    @property
    def all_publishers(self) -> int:
        return self.publishers * self.rooms

    @property
    def measures_server(self) -> bool:
        """The server under test is ours (it has /metrics and media workers)."""
        return self.target != "relay"

    @property
    def viewer_processes(self) -> int:
        if self.processes > 0:
            return min(self.processes, max(1, self.viewers))
        return max(1, min(MAX_PROCESSES, math.ceil(self.viewers / VIEWERS_PER_PROCESS)))


@dataclass(slots=True)
class Sample:
    t: float
    server_cpu: float
    bots_cpu: float
    bots_cpu_by_group: dict[str, float]
    machine_busy: int
    machine_total: int
    udp_errors: tuple[int, int]  # machine-wide receive and send buffer overflows
    rss: int
    viewers: dict[str, int]
    publishers: dict[str, int]
    # Read at the window's edges only: the server's egress counters, per-process CPU.
    server_counters: dict[str, float] | None = None
    server_processes: dict[int, tuple[str, float]] | None = None


@dataclass(slots=True)
class Collected:
    samples: list[Sample] = field(default_factory=list)
    latency_us: list[tuple[float, list[int]]] = field(default_factory=list)
    app_latency_us: list[tuple[float, list[int]]] = field(default_factory=list)
    join_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


_COUNTERS = (
    "started",
    "joined",
    "connected",
    "with_media",
    "published",
    "failed",
    "received",
    "expected",
    "bytes",
    "duplicates",
    "rtcp_received",
    "sent",
    "key_frame_requests",
    "key_frames_sent",
    "video_frames",
    "video_streams",
    "off_sample",
    "thin_connections",
    "chat_sent",
    "chat_received",
)
_MAXIMA = ("video_max_burst", "pacer_max_delay_us")


def _sum(replies: list[dict[str, Any]]) -> dict[str, int]:
    totals = {key: sum(int(r.get(key, 0)) for r in replies) for key in _COUNTERS}
    return totals | {key: max((int(r.get(key, 0)) for r in replies), default=0) for key in _MAXIMA}


class Run:
    def __init__(self, spec: RunSpec, workdir: Path) -> None:
        self.spec = spec
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        config = sfu_config(
            port_min=SFU_PORTS[0],
            port_max=SFU_PORTS[1],
            stage_capacity=min(100, max(25, spec.publishers)),
            log_level=spec.sfu_log_level,
            extra=spec.sfu_options
            + (("media.native_fastpath=false",) if spec.target == "sfu-python" else ())
            + ((f"server.workers={spec.workers}",) if spec.workers is not None else ()),
        )
        self.server = ServerProcess(spec.target, workdir=workdir, config=config)
        self.publisher_group: BotGroup | None = None
        self.viewer_groups: list[BotGroup] = []
        self.collected = Collected()
        self.progress = Progress(f"{spec.scenario} {spec.target} {spec.viewers}v")

    def _bot_config(
        self,
        *,
        publisher: bool,
        indexes: list[int],
        ports: tuple[int, int],
        start_at: float,
        max_seconds: float,
    ) -> dict[str, Any]:
        spec = self.spec
        return {
            "url": self.server.ws_url,
            "rooms": spec.rooms,
            "secret": "" if spec.target == "relay" else DEV_SECRET,
            "publish_audio": publisher and spec.publish_audio,
            "publish_video": publisher and spec.publish_video,
            "first_media": "video" if spec.publish_video else "audio",
            "indexes": indexes,
            "start_at": start_at,
            # Publishers 1 s apart in each room (index % rooms is the room): a producer added
            # while a subscribe offer waits for its answer makes the SFU refuse that answer
            # (see README, "ICE roles and other known interactions").
            "join_rate": spec.join_rate if not publisher else float(spec.rooms),
            "max_seconds": max_seconds,
            "media_seconds": max_seconds,
            "port_min": ports[0],
            "port_max": ports[1],
            "stamp": spec.target != "relay",
            "nice": 0 if publisher else spec.viewers_nice,
            "thin_every": spec.thin_viewers,
            "pacing_factor": spec.pacing_factor,
            "chat_rate": spec.chat_rate if publisher else 0.0,
            "simulcast": publisher and spec.simulcast,
            "view_heights": [] if publisher else list(spec.view_heights),
            "transport_cc": spec.viewer_transport_cc,
        }

    async def execute(self) -> dict[str, Any]:
        spec = self.spec
        groups = spec.viewer_processes + 1
        span = (BOT_PORTS[1] - BOT_PORTS[0] + 1) // groups
        ranges = [
            (BOT_PORTS[0] + i * span, BOT_PORTS[0] + (i + 1) * span - 1) for i in range(groups)
        ]
        join_phase = spec.viewers / spec.join_rate + JOIN_SLACK
        budget = PUBLISH_TIMEOUT + spec.publishers + join_phase + spec.warmup + spec.seconds + 30
        try:
            await self.server.start()
            if spec.publishers:
                self.publisher_group = BotGroup(
                    "publishers",
                    self._bot_config(
                        publisher=True,
                        indexes=list(range(spec.all_publishers)),
                        ports=ranges[0],
                        start_at=time.monotonic(),
                        max_seconds=budget,
                    ),
                    workdir=self.workdir,
                )
                await self.publisher_group.start()
                await self._wait_published()
            start_at = time.monotonic() + 1.0
            for g in range(spec.viewer_processes):
                indexes = list(range(g, spec.viewers, spec.viewer_processes))
                group = BotGroup(
                    f"viewers{g}",
                    self._bot_config(
                        publisher=False,
                        indexes=indexes,
                        ports=ranges[g + 1],
                        start_at=start_at,
                        max_seconds=budget,
                    ),
                    workdir=self.workdir,
                )
                self.viewer_groups.append(group)
                await group.start()
            if spec.storm:
                window = await self._storm(start_at, join_phase)
            else:
                window = await self._steady(start_at, join_phase)
        finally:
            await self._stop()
        return self._result(*window)

    # -- phases ---------------------------------------------------------------------
    async def _poll(self, *, edge: bool = False) -> Sample:
        """Every bot process's counters and the CPU; at a window `edge` also the server's
        own egress counters and the CPU of each of its processes."""
        counters = processes = None
        if edge and self.spec.measures_server:
            counters = await server_metrics.scrape(self.server.port)
            if counters is None:
                self.collected.errors.append("the server's /metrics did not answer")
            processes = procstat.process_cpu(self.server.pid)
        groups = ([self.publisher_group] if self.publisher_group else []) + self.viewer_groups
        replies = await asyncio.gather(*(g.stats() for g in groups))
        now = time.monotonic()
        viewer_replies = replies[1:] if self.publisher_group else replies
        publisher_replies = replies[:1] if self.publisher_group else []
        for reply in viewer_replies:
            self.collected.join_ms.extend(reply.get("join_ms", ()))
        for reply in replies:
            self.collected.latency_us.append((now, list(reply.get("latency_us", ()))))
            self.collected.app_latency_us.append((now, list(reply.get("app_latency_us", ()))))
            for error in reply.get("errors", ()):
                if error not in self.collected.errors and len(self.collected.errors) < 50:
                    self.collected.errors.append(error)
        busy, total = procstat.machine_ticks()
        udp_errors = procstat.udp_errors()
        by_group = {g.name: procstat.cpu_seconds(g.pid) for g in groups if g.process is not None}
        sample = Sample(
            t=now,
            server_cpu=procstat.cpu_seconds(self.server.pid),
            bots_cpu=sum(by_group.values()),
            bots_cpu_by_group=by_group,
            machine_busy=busy,
            machine_total=total,
            udp_errors=udp_errors,
            rss=procstat.rss_bytes(self.server.pid),
            viewers=_sum(viewer_replies),
            publishers=_sum(publisher_replies),
            server_counters=counters,
            server_processes=processes,
        )
        self.collected.samples.append(sample)
        return sample

    def _expected_total(self) -> float:
        spec = self.spec
        return 3 + spec.viewers / spec.join_rate + spec.warmup + spec.seconds

    def _show(self, sample: Sample, phase: str) -> None:
        spec = self.spec
        elapsed = sample.t - self.collected.samples[0].t if self.collected.samples else 0.0
        v = sample.viewers
        self.progress.update(
            elapsed / self._expected_total(),
            f"{phase}: {v['with_media']}/{spec.viewers} receiving, {v['failed']} failed",
        )

    async def _wait_published(self) -> None:
        deadline = time.monotonic() + PUBLISH_TIMEOUT + self.spec.publishers
        while time.monotonic() < deadline:
            sample = await self._poll()
            if sample.publishers["published"] >= self.spec.all_publishers:
                return
            if sample.publishers["failed"] or not self.publisher_group.alive:  # type: ignore[union-attr]
                break
            self._show(sample, "publishing")
            await asyncio.sleep(0.2)
        waiting = self.publisher_group.last.get("waiting") if self.publisher_group else None
        raise RuntimeError(f"publishers did not start: {self.collected.errors[:5]} {waiting}")

    def _all_joined(self, sample: Sample) -> bool:
        v = sample.viewers
        return int(v["with_media"]) + int(v["failed"]) >= self.spec.viewers

    async def _join(self, start_at: float, join_phase: float) -> Sample:
        deadline = start_at + join_phase
        while True:
            sample = await self._poll()
            self._show(sample, "joining")
            if self._all_joined(sample):
                return sample
            if time.monotonic() >= deadline:
                for group in self.viewer_groups:
                    for state in group.last.get("waiting", ()):
                        self.collected.errors.append(f"no media by the join deadline: {state}")
                return sample
            if not any(g.alive for g in self.viewer_groups):
                raise RuntimeError("every viewer process exited")
            await asyncio.sleep(POLL_INTERVAL)

    async def _measure(self, seconds: float, phase: str, *, edge: bool = False) -> Sample:
        end = time.monotonic() + seconds
        while True:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return await self._poll(edge=edge)
            await asyncio.sleep(min(POLL_INTERVAL, remaining))
            if time.monotonic() < end:
                self._show(await self._poll(), phase)

    async def _steady(self, start_at: float, join_phase: float) -> tuple[Sample, Sample]:
        await self._join(start_at, join_phase)
        await self._measure(self.spec.warmup, "warm-up")
        first = await self._poll(edge=True)
        last = await self._measure(self.spec.seconds, "measuring", edge=True)
        return first, last

    async def _storm(self, start_at: float, join_phase: float) -> tuple[Sample, Sample]:
        await asyncio.sleep(max(0.0, start_at - 0.2 - time.monotonic()))
        first = await self._poll(edge=True)
        await self._join(start_at, join_phase)
        last = await self._measure(self.spec.seconds, "after the storm", edge=True)
        return first, last

    async def _stop(self) -> None:
        groups = ([self.publisher_group] if self.publisher_group else []) + self.viewer_groups
        await asyncio.gather(*(g.stop() for g in groups), return_exceptions=True)
        await self.server.stop()
        for group in groups:
            tail = group.log_tail()
            if "Traceback" in tail:
                self.collected.errors.append(f"{group.name} log: {tail[-600:]}")

    # -- results --------------------------------------------------------------------
    def _result(self, first: Sample, last: Sample) -> dict[str, Any]:
        spec = self.spec
        collected = self.collected
        window = last.t - first.t
        dv = {k: last.viewers[k] - first.viewers[k] for k in _COUNTERS}
        dp = {k: last.publishers[k] - first.publishers[k] for k in _COUNTERS}
        received = dv["received"] + dp["received"]
        expected = dv["expected"] + dp["expected"]
        latency = _in_window(collected.latency_us, first.t, last.t)
        app_latency = _in_window(collected.app_latency_us, first.t, last.t)
        server_egress = server_metrics.egress_between(first.server_counters, last.server_counters)
        server_ingress = server_metrics.ingress_between(first.server_counters, last.server_counters)
        server_dropped = server_metrics.dropped_between(first.server_counters, last.server_counters)
        pipes = server_metrics.pipe_loss_between(first.server_counters, last.server_counters)
        pipe_loss = round(pipes[1] * 100 / pipes[0], 3) if pipes and pipes[0] else None
        drop_pct = (
            round(server_dropped * 100 / (server_egress + server_dropped), 3)
            if server_dropped is not None and server_egress is not None and server_egress > 0
            else None
        )
        ingress_loss = (
            round(max(0, dp["sent"] - server_ingress) * 100 / dp["sent"], 3)
            if server_ingress is not None and dp["sent"]
            else None
        )
        latency_p50 = _percentile(latency, 50, scale=1e-3)
        # Thin viewers count one packet in N: egress is then what the server says it sent.
        thin = spec.thin_viewers > 0
        egress = server_egress if thin else received
        cpu = last.server_cpu - first.server_cpu
        processes = _processes(
            first.server_processes, last.server_processes, window, root=self.server.pid
        )
        worker_processes = sum(p["role"].startswith("worker") for p in processes)
        joins = sorted(collected.join_ms)
        in_window = [s for s in collected.samples if first.t <= s.t <= last.t]
        busy = last.machine_busy - first.machine_busy
        total = last.machine_total - first.machine_total
        receiving = last.viewers["with_media"]
        return {
            "scenario": spec.scenario,
            "target": spec.target,
            "params": asdict(spec) | {"viewer_processes": spec.viewer_processes},
            "rooms": spec.rooms,
            "workers": spec.workers
            if spec.workers is not None
            else (max(1, worker_processes) if processes else None),
            "thin_viewers": spec.thin_viewers,
            "pacing_factor": spec.pacing_factor,
            "chat_rate": spec.chat_rate,
            "simulcast": spec.simulcast,
            # Viewers forwarded each simulcast encoding (lowest first) at the window's end.
            "simulcast_consumers": server_metrics.simulcast_consumers(last.server_counters),
            # Chat lines posted, and chat messages every member received (the broadcasts).
            "chat_lines_per_s": round(dp["chat_sent"] / window, 2) if window else None,
            "chat_deliveries_per_s": (
                round((dp["chat_received"] + dv["chat_received"]) / window, 1) if window else None
            ),
            "viewers_receiving": receiving,
            "viewers_failed": last.viewers["failed"],
            "window_seconds": round(window, 3),
            "egress_packets": egress,
            "egress_pps": round(egress / window, 1) if window and egress is not None else None,
            "egress_source": "server_metrics" if thin else "bots",
            "egress_ratio": None,  # filled in when one point ran with several worker counts
            "bots_received_packets": received,
            "viewers_received_packets": dv["received"],
            "publishers_received_packets": dp["received"],
            "server_egress_packets": server_egress,
            "server_ingress_packets": server_ingress,
            "server_ingress_loss_pct": ingress_loss,
            "server_dropped_packets": server_dropped,
            "server_drop_pct": drop_pct,
            "server_piped_packets": pipes[0] if pipes else None,
            "server_pipe_loss_pct": pipe_loss,
            **server_metrics.stalls_between(first.server_counters, last.server_counters),
            # Machine-wide (other jobs count too): where loopback loses packets. The server's
            # own overflows also show in its ingress and pipe loss; the rest is the bots'.
            "udp_rcvbuf_errors": last.udp_errors[0] - first.udp_errors[0],
            "udp_sndbuf_errors": last.udp_errors[1] - first.udp_errors[1],
            "server_kept_up": None
            if ingress_loss is None
            else (
                ingress_loss <= KEPT_UP_LOSS_PCT
                and (drop_pct or 0.0) <= KEPT_UP_LOSS_PCT
                and (pipe_loss or 0.0) <= KEPT_UP_LOSS_PCT
                and (latency_p50 is None or latency_p50 <= KEPT_UP_LATENCY_P50_MS)
                and not collected.errors
                and not last.viewers["failed"]
            ),
            "off_sample_packets": dv["off_sample"] + dp["off_sample"],
            "thin_connections": last.viewers["thin_connections"]
            + last.publishers["thin_connections"],
            "egress_bytes": dv["bytes"],
            "mean_packet_bytes": round(dv["bytes"] / dv["received"], 1) if dv["received"] else None,
            "ingress_packets": dp["sent"],
            "sfu_cpu_seconds": round(cpu, 3),
            "sfu_cpu_util": round(cpu / window, 3) if window else None,
            "cpu_us_per_egress_packet": round(cpu * 1e6 / egress, 3) if egress else None,
            "kernel_send_us_per_packet": None,  # filled in after the run
            "viewers_per_cpu_second": round(receiving * window / cpu, 1) if cpu else None,
            "loss_pct": round(max(0, expected - received) * 100 / expected, 4)
            if expected
            else None,
            "duplicates": dv["duplicates"] + dp["duplicates"],
            # Thin receivers see too few marker bits to count frames.
            "video_fps": None
            if thin
            else _fps(dv["video_frames"], last.viewers["video_streams"], window),
            "video_max_burst": last.publishers["video_max_burst"],
            "pacer_max_delay_ms": round(last.publishers["pacer_max_delay_us"] / 1000, 2),
            "latency_p50_ms": latency_p50,
            "latency_p99_ms": _percentile(latency, 99, scale=1e-3),
            "latency_samples": len(latency),
            "bot_latency_p50_ms": _percentile(app_latency, 50, scale=1e-3),
            "bot_latency_p99_ms": _percentile(app_latency, 99, scale=1e-3),
            "join_p50_ms": _percentile(joins, 50),
            "join_p95_ms": _percentile(joins, 95),
            "join_max_ms": round(joins[-1], 1) if joins else None,
            "join_samples": len(joins),
            "upstream_pli_per_s": round(dp["key_frame_requests"] / window, 3) if window else None,
            "upstream_pli_total": dp["key_frame_requests"],
            "rss_mb": round(max(s.rss for s in in_window) / 2**20, 1) if in_window else None,
            "bots_cpu_seconds": round(last.bots_cpu - first.bots_cpu, 3),
            "bots_cpu_util_by_process": {
                name: round((cpu - first.bots_cpu_by_group.get(name, 0.0)) / window, 3)
                for name, cpu in last.bots_cpu_by_group.items()
            }
            if window
            else {},
            "machine_busy_pct": round(busy * 100 / total, 1) if total else None,
            # Busy cores not used by the server or the bots: this runner, other jobs.
            "other_cpu_util": round(
                busy / total * procstat.NPROC - (cpu + last.bots_cpu - first.bots_cpu) / window,
                3,
            )
            if total and window
            else None,
            "server_processes": processes,
            "errors": collected.errors[:20],
            "timeseries": [
                {
                    "t": round(s.t - collected.samples[0].t, 2),
                    "server_cpu": s.server_cpu,
                    "received": s.viewers["received"] + s.publishers["received"],
                    "with_media": s.viewers["with_media"],
                    "rss": s.rss,
                    "in_window": first.t <= s.t <= last.t,
                }
                for s in collected.samples
            ],
            "latency_us_sample": latency[:: max(1, len(latency) // 5000)],
            "join_ms_all": [round(j, 1) for j in joins],
        }


def _processes(
    first: dict[int, tuple[str, float]] | None,
    last: dict[int, tuple[str, float]] | None,
    window: float,
    *,
    root: int,
) -> list[dict[str, Any]]:
    """CPU of each server process in the window: the front (or the single process) and
    each media worker (`python -m signaling.web.worker_main --index N`)."""
    if not first or not last:
        return []
    roles = {pid: _role(command) for pid, (command, _) in last.items()}
    single = not any(role.startswith("worker") for role in roles.values())
    out = []
    for pid, (command, end) in sorted(last.items()):
        start = first.get(pid, (command, 0.0))[1]
        role = roles[pid] or ("other" if pid != root else "server" if single else "front")
        cpu = end - start
        out.append(
            {
                "pid": pid,
                "role": role,
                "cpu_seconds": round(cpu, 3),
                "cpu_util": round(cpu / window, 3) if window else None,
            }
        )
    return out


def _role(command: str) -> str:
    words = command.split()
    if "signaling.web.worker_main" in words and "--index" in words[:-1]:
        return f"worker{words[words.index('--index') + 1]}"
    return ""


def _fps(frames: int, streams: int, window: float) -> float | None:
    """Mean frame rate of the video streams viewers received (the source sends 30)."""
    return round(frames / streams / window, 2) if streams and window else None


def _in_window(batches: list[tuple[float, list[int]]], start: float, end: float) -> list[int]:
    return sorted(value for t, batch in batches if start < t <= end for value in batch)


def _percentile(values: list[float] | list[int], q: float, *, scale: float = 1.0) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0] * scale, 3)
    cut = statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]
    return round(cut * scale, 3)


async def measure_kernel_send(size: int, *options: str) -> dict[str, Any] | None:
    """`python -m benchmarks.kernel_send` in its own process (see there for `options`)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.kernel_send",
        "--size",
        str(size),
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), 40)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return None
    result: dict[str, Any] = json.loads(out)
    return result


async def run(spec: RunSpec, workdir: Path) -> dict[str, Any]:
    measured = Run(spec, workdir)
    result = await measured.execute()
    measured.progress.done(
        f"{result['viewers_receiving']}/{spec.viewers} receiving, "
        f"{result['egress_pps']} pkt/s out, loss {result['loss_pct']}%"
    )
    size = round(result["mean_packet_bytes"] or 1000)
    kernel = await measure_kernel_send(size)
    if kernel is not None:
        result["kernel_send_us_per_packet"] = kernel["us_per_packet"]
        result["kernel_send"] = kernel
    return result
