"""bad-viewers: do a stalled viewer and a lossy one hurt everybody else?

Each pair of runs is the same `stage-av` room twice, each on a fresh server: first as it
is (`baseline`), then with two more viewers (`bad`) that join after the others: one that
stops reading its UDP socket `--stall-after` seconds after its media starts, and one
behind `--loss` random loss before its socket that NACKs and sends PLIs as a real
receiver does (`benchmarks.bad_bots`, `benchmarks.loss`). The normal viewers' loss and
latency in the two runs are the answer (goal: the same within noise; `--pairs 2` or more
shows the noise). The server's counters in each window, read from /metrics at its edges,
and the difference between the runs show what the server did for the bad viewers:
packets sent, dropped, NACKs received and retransmissions, key-frame requests received
against those relayed to the publisher (the rest were throttled).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import report, server_metrics
from .processes import BotGroup
from .runner import PUBLISH_TIMEOUT, Run, RunSpec, Sample, measure_kernel_send

STALL_WATCH = 60.0  # seconds after the window to wait for the stalled viewer's bye
BAD_PORTS = (35000, 39999)  # between the SFU's range and the other bots'
# Counters read at the window's edges, summed over labels and workers, by short name.
COUNTERS = {
    "stage_sfu_rtp_packets_sent_total": "rtp_sent",
    "stage_sfu_rtp_packets_dropped_total": "rtp_dropped",
    "stage_sfu_socket_packets_dropped_total": "socket_dropped",
    "stage_sfu_rtcp_packets_received_total": "rtcp_received",
    "stage_sfu_nacks_received_total": "nacks_received",
    "stage_sfu_retransmissions_sent_total": "retransmissions_sent",
    "stage_sfu_retransmission_misses_total": "retransmission_misses",
    "stage_sfu_key_frame_requests_received_total": "key_frame_requests_received",
    "stage_sfu_key_frame_requests_sent_total": "key_frame_requests_relayed",
    "stage_sfu_key_frames_received_total": "key_frames_received",
}
GAUGES = {
    "stage_sfu_participants": "participants",
    "stage_sfu_transports": "transports",
    "stage_sfu_consumers": "consumers",
}
LOST_OUT = "viewer_reported_lost"  # stage_sfu_rtp_packets_lost_total{direction="out"}


@dataclass(frozen=True, slots=True, kw_only=True)
class BadSpec:
    stalled: bool = True
    lossy: bool = True
    loss: float = 0.3
    stall_after: float = 1.0


def counters(text: str) -> dict[str, float]:
    """The COUNTERS and GAUGES of a /metrics text by short name, and viewer-reported loss."""
    values = server_metrics.totals(text, [*COUNTERS, *GAUGES])
    out = {short: values.get(name, 0.0) for name, short in (COUNTERS | GAUGES).items()}
    lost = server_metrics.by_label(text, "stage_sfu_rtp_packets_lost_total", "direction")
    out[LOST_OUT] = lost.get("out", 0.0)
    return out


def window_deltas(
    first: dict[str, float], last: dict[str, float], seconds: float
) -> dict[str, dict[str, float | None]]:
    """Per counter: its increase in the window and per second; gauges as at the end."""
    out: dict[str, dict[str, float | None]] = {}
    for short in (*COUNTERS.values(), LOST_OUT):
        delta = last.get(short, 0.0) - first.get(short, 0.0)
        out[short] = {
            "total": round(delta),
            "per_s": round(delta / seconds, 2) if seconds > 0 else None,
        }
    for short in GAUGES.values():
        out[short] = {"total": last.get(short), "per_s": None}
    return out


class BadViewersRun(Run):
    """A stage-av run, plus (unless `bad` is None) the bad viewers in processes of their own."""

    def __init__(
        self, spec: RunSpec, workdir: Path, bad: BadSpec | None, *, stall_watch: float = STALL_WATCH
    ) -> None:
        super().__init__(spec, workdir)
        self.bad = bad
        self.stall_watch = stall_watch
        self.bad_groups: list[BotGroup] = []
        self.edge_metrics: list[tuple[float, dict[str, float] | None]] = []
        self.edge_bad: list[dict[str, dict[str, Any]]] = []
        self.stalled_fate: dict[str, Any] | None = None

    async def _steady(self, start_at: float, join_phase: float) -> tuple[Sample, Sample]:
        if self.bad is not None:
            await self._start_bad(start_at, join_phase)
        return await super()._steady(start_at, join_phase)

    async def _start_bad(self, start_at: float, join_phase: float) -> None:
        assert self.bad is not None
        spec = self.spec
        budget = PUBLISH_TIMEOUT + spec.publishers + join_phase + spec.warmup + spec.seconds + 30
        modes = [m for m, on in (("stalled", self.bad.stalled), ("lossy", self.bad.lossy)) if on]
        span = (BAD_PORTS[1] - BAD_PORTS[0] + 1) // max(1, len(modes))
        for i, mode in enumerate(modes):
            config = self._bot_config(
                publisher=False,
                indexes=[spec.viewers + i],  # after every normal viewer
                ports=(BAD_PORTS[0] + i * span, BAD_PORTS[0] + (i + 1) * span - 1),
                start_at=start_at,
                max_seconds=budget,
            ) | {"mode": mode, "loss": self.bad.loss, "stall_after": self.bad.stall_after}
            group = BotGroup(mode, config, workdir=self.workdir, module="benchmarks.bad_bots")
            self.bad_groups.append(group)
            await group.start()

    async def _poll(self, *, edge: bool = False) -> Sample:
        if edge:
            text = await server_metrics.scrape_text(self.server.port)
            now = asyncio.get_running_loop().time()
            self.edge_metrics.append((now, counters(text) if text is not None else None))
            replies = await asyncio.gather(*(g.stats() for g in self.bad_groups))
            self.edge_bad.append({g.name: r for g, r in zip(self.bad_groups, replies, strict=True)})
        return await super()._poll(edge=edge)

    async def _stop(self) -> None:
        await self._watch_stalled()
        await asyncio.gather(*(g.stop() for g in self.bad_groups), return_exceptions=True)
        await super()._stop()

    async def _watch_stalled(self) -> None:
        """After the window: how long the server keeps a viewer that reads nothing (ICE
        consent, RFC 7675, expires after 30 s). Waits up to `stall_watch` seconds for its
        `bye`; nothing is measured meanwhile."""
        group = next((g for g in self.bad_groups if g.name == "stalled"), None)
        if group is None or not self.edge_bad:
            return
        deadline = asyncio.get_running_loop().time() + self.stall_watch
        while asyncio.get_running_loop().time() < deadline:
            reply = await group.stats()
            if reply.get("bye_reason") or not reply.get("stalled") or not group.alive:
                break
            self.progress.update(1.0, "waiting for the server to send the stalled viewer away")
            await asyncio.sleep(1.0)
        self.stalled_fate = {
            key: group.last.get(key) for key in ("bye_reason", "bye_after_stall_s", "failed")
        }

    def _result(self, first: Sample, last: Sample) -> dict[str, Any]:
        result = super()._result(first, last)
        result["variant"] = "baseline" if self.bad is None else "bad"
        (t0, m0), (t1, m1) = self.edge_metrics[0], self.edge_metrics[-1]
        result["server_window"] = (
            window_deltas(m0, m1, t1 - t0) if m0 is not None and m1 is not None else None
        )
        bad: dict[str, Any] = {}
        if self.edge_bad:
            start, end = self.edge_bad[0], self.edge_bad[-1]
            for name, reply in end.items():
                before = start.get(name, {})
                received = int(reply.get("received", 0)) - int(before.get("received", 0))
                expected = int(reply.get("expected", 0)) - int(before.get("expected", 0))
                kinds = {}
                for kind in ("video", "audio"):
                    r1, e1 = reply.get("by_kind", {}).get(kind, (0, 0))
                    r0, e0 = before.get("by_kind", {}).get(kind, (0, 0))
                    kinds[f"{kind}_loss_pct_in_window"] = (
                        round(max(0, (e1 - e0) - (r1 - r0)) * 100 / (e1 - e0), 2)
                        if e1 > e0
                        else None
                    )
                bad[name] = {
                    "received_in_window": received,
                    **kinds,
                    "loss_pct_in_window": round(max(0, expected - received) * 100 / expected, 2)
                    if expected > 0
                    else None,
                    **{
                        key: reply.get(key)
                        for key in (
                            "with_media",
                            "failed",
                            "stalled",
                            "filtered",
                            "still_connected",
                            "nacks_sent",
                            "nacked_packets",
                            "recovered_packets",
                            "given_up_packets",
                            "plis_sent",
                            "bye_reason",
                            "bye_after_stall_s",
                        )
                    },
                    "errors": reply.get("errors", [])[:5],
                }
        if "stalled" in bad and self.stalled_fate is not None:
            bad["stalled"]["after_the_window"] = self.stalled_fate
        result["bad_viewers"] = bad
        return result


def _specs(args: Any) -> list[RunSpec]:
    return [
        RunSpec(
            scenario="bad-viewers",
            target="sfu",
            publishers=args.publishers,
            publish_audio=True,
            publish_video=True,
            viewers=args.viewers,
            seconds=args.seconds,
            join_rate=args.rate,
            warmup=args.warmup,
            processes=args.procs,
            sfu_log_level=args.sfu_log_level,
            sfu_options=tuple(args.sfu_option),
            viewers_nice=args.viewers_nice,
        )
    ]


def add_parser(scenarios: Any) -> None:
    sub = scenarios.add_parser(
        "bad-viewers", help="a stalled and a lossy viewer against the same room without them"
    )
    sub.add_argument("--publishers", type=int, default=1, help="A/V on stage (%(default)s)")
    sub.add_argument("--viewers", type=int, default=20, help="normal viewers (%(default)s)")
    sub.add_argument("--seconds", type=float, default=30.0, help="measured window")
    sub.add_argument("--warmup", type=float, default=2.0)
    sub.add_argument("--rate", type=float, default=20.0, help="viewer joins per second")
    sub.add_argument("--procs", type=int, default=0, help="normal viewer bot processes")
    sub.add_argument("--viewers-nice", type=int, default=19)
    sub.add_argument("--loss", type=float, default=0.3, help="the lossy viewer's RTP loss")
    sub.add_argument("--stall-after", type=float, default=1.0, help="s of media before the stall")
    sub.add_argument(
        "--stall-watch",
        type=float,
        default=STALL_WATCH,
        help="s after the window to wait for the server to send the stalled viewer away",
    )
    sub.add_argument("--no-stalled", action="store_true", help="only the lossy viewer")
    sub.add_argument("--no-lossy", action="store_true", help="only the stalled viewer")
    sub.add_argument("--pairs", type=int, default=1, help="baseline/bad pairs, alternating")
    sub.add_argument("--sfu-log-level", default="warning")
    sub.add_argument("--sfu-option", action="append", default=[], metavar="SECTION.KEY=VALUE")
    sub.add_argument("--out", type=Path, help="output directory")


def compare(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The normal viewers' figures per variant (mean over pairs, and every value), and the
    server's counters per second: bad minus baseline is what the bad viewers cost."""
    out: dict[str, Any] = {}
    fields = ("loss_pct", "latency_p50_ms", "latency_p99_ms", "bot_latency_p99_ms", "video_fps")
    for variant in ("baseline", "bad"):
        rows = [r for r in runs if r.get("variant") == variant]
        out[variant] = {
            f: {
                "values": [r.get(f) for r in rows],
                "mean": round(statistics.fmean(v), 3)
                if (v := [r[f] for r in rows if r.get(f) is not None])
                else None,
            }
            for f in fields
        }
    server: dict[str, dict[str, float | None]] = {}
    for short in (*COUNTERS.values(), LOST_OUT):
        rates = {}
        for variant in ("baseline", "bad"):
            values = [
                r["server_window"][short]["per_s"]
                for r in runs
                if r.get("variant") == variant and r.get("server_window")
            ]
            rates[variant] = round(statistics.fmean(values), 2) if values else None
        base, bad = rates["baseline"], rates["bad"]
        rates["difference"] = round(bad - base, 2) if base is not None and bad is not None else None
        server[short] = rates
    out["server_per_s"] = server
    return out


def tables(runs: list[dict[str, Any]], comparison: dict[str, Any]) -> str:
    lines = ["normal viewers (each run):"]
    head = (
        f"{'variant':>9} {'loss %':>7} {'p50 ms':>7} {'p99 ms':>7} {'bot p99':>8} {'fps':>6} "
        f"{'egress pkt/s':>12} {'server CPU':>10} {'rcvbuf drops':>12}"
    )
    lines.append(head)
    for r in runs:

        def f(key: str, run: dict[str, Any] = r) -> str:
            value = run.get(key)
            return "-" if value is None else f"{value:.3f}" if key == "loss_pct" else f"{value:.2f}"

        lines.append(
            f"{r['variant']:>9} {f('loss_pct'):>7} {f('latency_p50_ms'):>7} "
            f"{f('latency_p99_ms'):>7} {f('bot_latency_p99_ms'):>8} {f('video_fps'):>6} "
            f"{f('egress_pps'):>12} {f('sfu_cpu_util'):>10} {r.get('udp_rcvbuf_errors', '-')!s:>12}"
        )
    lines.append("")
    lines.append("server, per second in the window (bad - baseline = the bad viewers' share):")
    lines.append(f"{'counter':>28} {'baseline':>10} {'bad':>10} {'difference':>11}")
    for short, rates in comparison["server_per_s"].items():
        cells = [
            "-" if rates[k] is None else f"{rates[k]:.2f}"
            for k in ("baseline", "bad", "difference")
        ]
        lines.append(f"{short:>28} {cells[0]:>10} {cells[1]:>10} {cells[2]:>11}")
    for r in runs:
        for name, state in r.get("bad_viewers", {}).items():
            lines.append(f"{name} viewer: " + ", ".join(f"{k}={v}" for k, v in state.items()))
    return "\n".join(lines)


async def main(args: Any, out: Path, payload: dict[str, Any]) -> int:
    """Run the pairs, write results.json, print the tables; 1 if a run failed."""
    if args.no_stalled and args.no_lossy:
        sys.stderr.write("nothing bad to add: drop --no-stalled or --no-lossy\n")
        return 2
    bad = BadSpec(
        stalled=not args.no_stalled,
        lossy=not args.no_lossy,
        loss=args.loss,
        stall_after=args.stall_after,
    )
    runs: list[dict[str, Any]] = []
    payload |= {"runs": runs, "comparison": None}
    status = 0
    (spec,) = _specs(args)
    for pair in range(max(1, args.pairs)):
        for variant, extra in (("baseline", None), ("bad", bad)):
            name = f"{pair:02d}-{variant}-{spec.viewers}v"
            measured = BadViewersRun(spec, out / "logs" / name, extra, stall_watch=args.stall_watch)
            try:
                result = await measured.execute()
            except RuntimeError as exc:
                sys.stderr.write(f"\nrun {name} failed: {exc}\n")
                status = 1
                continue
            measured.progress.done(
                f"{variant}: {result['viewers_receiving']}/{spec.viewers} receiving, "
                f"loss {result['loss_pct']}%, p99 {result['latency_p99_ms']} ms"
            )
            runs.append(result)
            report.write_json(out / "results.json", payload)
    payload["comparison"] = comparison = compare(runs)
    if runs:
        size = round(runs[0]["mean_packet_bytes"] or 1000)
        kernel = await measure_kernel_send(size)
        payload["kernel_send"] = kernel
    report.write_json(out / "results.json", payload)
    if runs:
        try:
            report.plot(out, runs)
        except ImportError:
            sys.stderr.write("matplotlib is not installed: no plots (pip install -e .[bench])\n")
    print(tables(runs, comparison))  # noqa: T201
    for r in runs:
        for error in r["errors"][:5]:
            print(f"  ! {r['variant']}: {error[:300]}")  # noqa: T201
    print(f"results: {out}")  # noqa: T201
    return status
