"""`python -m benchmarks SCENARIO [options]`: run a load scenario and report it.

Scenarios:
  stage-av     A/V publishers on stage (Opus + VP8 640x360) -> N viewers
  stage-audio  audio-only speakers on stage -> N viewers
  join-storm   1 A/V publisher streaming while N viewers join at --rate per second
  capacity     stage-av sized to saturate a media worker: 1 worker against 2, thin viewers
  simulcast    stage-av with one video encoding, then three: mixed layers, CPU per packet ratio
  bad-viewers  a stalled and a lossy viewer beside N viewers, against the same room without
               them (benchmarks/bad_viewers.py)
  soak         one room with stage changes, viewer churn, chat and polls for --minutes,
               the server's memory, descriptors and objects sampled (benchmarks/soak.py)
  stall        the server stopped for a few hundred ms, repeatedly, once per
               media.max_ingress_delay value (benchmarks/stall.py)
  big-room     one room filled to --members signaling-only members: join and stage-command
               cost by room size, event-loop stalls, stage media (benchmarks/big_room.py)

`--viewers` takes a comma-separated list for a sweep (one fresh server per point), and
`--workers` one of server.workers values (each point once per value, with egress ratios).
`--compare-relay` runs each point again against a naive aiortc MediaRelay server.
Results go to benchmarks/results/<timestamp>-<scenario>/ (results.json, runs.png,
scaling.png for sweeps, server and bot logs); see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import bad_viewers, big_room, procstat, report, soak, stall
from .media import load_clip, load_simulcast_clips
from .processes import REPO
from .runner import RunSpec, measure_kernel_send, run

RESULTS = Path(__file__).resolve().parent / "results"


def _viewer_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("viewers must be positive integers, e.g. 50,100,200")
    return values


def _worker_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or any(v < 1 for v in values) or len(set(values)) != len(values):
        raise argparse.ArgumentTypeError("workers must be distinct positive integers, e.g. 1,2")
    return values


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


# A sweep from below one media worker's ceiling (~4 us per egress packet with thin
# receivers: ~250 000 packets/s on a core) to about twice it, on 1 and on 2 workers, from
# bots cheap enough to leave the server the CPU: 2 rooms (one per worker) x 12 A/V
# publishers (2 448 packets/s to each viewer, 54 000/s among the publishers) x viewers
# keeping 1 RTP packet in 256 (still ~10 samples a second per viewer). Few viewers with
# many streams each: on a small machine a viewer's fixed cost (consent, RTCP) matters
# more than its packets. See README.md.
CAPACITY = {
    "publishers": 12,
    "viewers": "60,75,90,120,150,180",
    "seconds": 20.0,
    "rate": 40.0,
    "rooms": 2,
    "thin_viewers": 256,
    "workers": "1,2",
}


# The simulcast scenario's viewers, in turn: tiles that take the 160x90, 320x180 and
# 640x360 encodings (benchmarks/media.py), so a third of them is on each.
MIXED_VIEW_HEIGHTS = "90,180,360"
# ... all on the room's own worker: a pipe to another worker carries one encoding, so
# viewers a spread room placed there get that one whatever their tiles (see README).
UNSPREAD = "rooms.spread_after=1000000"


def _height_list(text: str) -> tuple[int, ...]:
    values = tuple(int(v) for v in text.split(",") if v.strip())
    if not values or any(not 0 <= v <= 4320 for v in values):
        raise argparse.ArgumentTypeError("heights must be 0..4320, e.g. 90,180,360")
    return values


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scenarios = parser.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    defaults = {
        "stage-av": {"publishers": 1, "viewers": "100", "seconds": 30.0, "rate": 20.0},
        "stage-audio": {"publishers": 3, "viewers": "200", "seconds": 30.0, "rate": 20.0},
        "join-storm": {"publishers": 1, "viewers": "100", "seconds": 5.0, "rate": 7.0},
        "capacity": CAPACITY,
        "simulcast": {"publishers": 1, "viewers": "100", "seconds": 30.0, "rate": 20.0},
    }
    for name, d in defaults.items():
        sub = scenarios.add_parser(name, help=__doc__.split("\n")[3 + list(defaults).index(name)])
        sub.add_argument(
            "--publishers",
            type=int,
            default=d["publishers"],
            help="participants on stage, all sending (default %(default)s)",
        )
        sub.add_argument(
            "--viewers",
            type=_viewer_list,
            default=_viewer_list(str(d["viewers"])),
            help="viewer count, or a comma-separated sweep (default %(default)s)",
        )
        sub.add_argument(
            "--seconds",
            type=float,
            default=d["seconds"],
            help="measured window; for join-storm, time after the last join",
        )
        sub.add_argument(
            "--rate",
            "--join-rate",
            dest="rate",
            type=float,
            default=d["rate"],
            help="viewer joins per second (default %(default)s)",
        )
        sub.add_argument(
            "--warmup",
            type=float,
            default=2.0,
            help="seconds between the last join and the window (steady scenarios)",
        )
        sub.add_argument(
            "--procs",
            type=int,
            default=0,
            help="viewer bot processes (default: one per 75 viewers, at most 4)",
        )
        sub.add_argument(
            "--compare-relay",
            action="store_true",
            help="also run each point against the naive aiortc MediaRelay server",
        )
        sub.add_argument(
            "--relay-viewers",
            type=int,
            default=0,
            help="viewers for the relay runs (default: the same as the SFU's)",
        )
        sub.add_argument("--no-sfu", action="store_true", help="run only the relay")
        sub.add_argument(
            "--fanout",
            choices=("native", "python", "both"),
            default="native",
            help="the SFU's fan-out: as built (native), the pure-Python reference in a "
            "single process (python, target sfu-python), or both runs per point",
        )
        sub.add_argument(
            "--viewers-nice",
            type=int,
            default=19,
            help="niceness added to viewer bot processes, which then also run SCHED_BATCH "
            "(default %(default)s): they stand in for remote browsers and take the CPU the "
            "server and the publishers leave; 0 to compete as equals",
        )
        sub.add_argument(
            "--rooms",
            type=_positive,
            default=d.get("rooms", 1),
            help="rooms, each with --publishers on stage; viewers are spread evenly "
            "over them (default %(default)s)",
        )
        sub.add_argument(
            "--workers",
            type=_worker_list,
            default=_worker_list(str(d["workers"])) if "workers" in d else None,
            metavar="LIST",
            help="server.workers for each run, e.g. 1,2: every point runs once per value "
            "and reports egress_ratio against the fewest (default %(default)s: "
            "None = the server's own setting)",
        )
        sub.add_argument(
            "--viewers-per-worker",
            action="store_true",
            help="--viewers counts per media worker: a run with N workers (--workers) has "
            "N times as many, so every worker count is offered the same load per worker",
        )
        sub.add_argument(
            "--thin-viewers",
            type=int,
            default=d.get("thin_viewers", 0),
            metavar="N",
            help="every bot's receiving socket (viewers' and publishers') keeps only RTP "
            "with sequence number %% N == 0 (a kernel filter), so bots cost little; egress "
            "then comes from the server's counters. 0 = off (default %(default)s)",
        )
        sub.add_argument(
            "--chat-rate",
            type=_non_negative,
            default=0.0,
            metavar="R",
            help="the publishers post R chat lines a second in each room, in turn, while "
            "the run lasts: every line is a broadcast to the whole room (as a speaking or "
            "active-speaker change is); SFU only (default %(default)s)",
        )
        sub.add_argument(
            "--pacing-factor",
            type=_non_negative,
            default=2.5,
            metavar="F",
            help="publishers pace video at F x the clip's bitrate, like Chromium "
            "(default %(default)s); 0 sends each frame as one burst",
        )
        sub.add_argument(
            "--no-viewer-transport-cc",
            dest="viewer_transport_cc",
            action="store_false",
            help="viewers answer without the transport-wide sequence number extension, as "
            "aiortc does; by default they keep it, as browsers do, so the SFU stamps every "
            "packet it sends them",
        )
        sub.add_argument("--out", type=Path, help="output directory")
        sub.add_argument("--sfu-log-level", default="warning")
        sub.add_argument(
            "--sfu-option",
            action="append",
            default=[],
            metavar="SECTION.KEY=VALUE",
            help="extra SFU setting for the temporary config (repeatable)",
        )
    scenarios.choices["simulcast"].add_argument(
        "--view-heights",
        type=_height_list,
        default=_height_list(MIXED_VIEW_HEIGHTS),
        metavar="LIST",
        help="viewer i shows the publishers' video in tiles LIST[i %% len] device pixels "
        "tall (view_tracks; 0 = no limit), in both runs of a point (default %(default)s: "
        "a third of the viewers on each encoding)",
    )
    bad_viewers.add_parser(scenarios)
    soak.add_parser(scenarios)
    stall.add_parser(scenarios)
    big_room.add_parser(scenarios)
    return parser


def _source() -> dict[str, Any]:
    """What was measured: the commit, files differing from it, and the native fan-out."""

    def git(*command: str) -> str:
        try:
            done = subprocess.run(
                ["git", *command], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "changed_files": git("diff-index", "--name-only", "HEAD", "--").splitlines(),
        "native_fastpath_built": importlib.util.find_spec("sfu._fastpath") is not None,
    }


def _specs(args: argparse.Namespace) -> list[RunSpec]:
    """Per point: each SFU target once per worker count, then the relay (which has none)."""
    audio_only = args.scenario == "stage-audio"
    # The simulcast scenario runs each SFU target twice, one encoding then three, with the
    # same viewers showing the same tiles, so the two are compared like for like.
    simulcast_runs = (False, True) if args.scenario == "simulcast" else (False,)
    view_heights = getattr(args, "view_heights", ())
    sfu_options = tuple(args.sfu_option)
    if args.scenario == "simulcast" and not any(
        option.startswith("rooms.spread_after=") for option in sfu_options
    ):
        sfu_options = (UNSPREAD, *sfu_options)
    specs = []
    for viewers in args.viewers:
        targets: list[tuple[str, int | None]] = []
        if not args.no_sfu:
            for workers in args.workers or [None]:
                targets.extend(
                    (target, workers)
                    for target in {
                        "native": ["sfu"],
                        "python": ["sfu-python"],
                        "both": ["sfu", "sfu-python"],
                    }[args.fanout]
                )
        if args.compare_relay or args.no_sfu:
            targets.append(("relay", None))
        for (target, workers), simulcast in itertools.product(targets, simulcast_runs):
            if simulcast and target == "relay":
                continue  # the relay decodes and re-encodes: one encoding only
            count = args.relay_viewers if target == "relay" and args.relay_viewers else viewers
            if args.viewers_per_worker and workers:
                count = viewers * workers
            specs.append(
                RunSpec(
                    scenario=args.scenario,
                    target=target,
                    publishers=args.publishers,
                    publish_audio=True,
                    publish_video=not audio_only,
                    viewers=count,
                    seconds=args.seconds,
                    join_rate=args.rate,
                    warmup=args.warmup,
                    processes=args.procs,
                    storm=args.scenario == "join-storm",
                    sfu_log_level=args.sfu_log_level,
                    sfu_options=sfu_options,
                    viewers_nice=args.viewers_nice,
                    rooms=args.rooms,
                    workers=workers,
                    thin_viewers=args.thin_viewers if target != "relay" else 0,
                    pacing_factor=args.pacing_factor,
                    chat_rate=args.chat_rate if target != "relay" else 0.0,
                    simulcast=simulcast,
                    view_heights=view_heights if target != "relay" else (),
                    viewer_transport_cc=args.viewer_transport_cc,
                )
            )
    return specs


async def _main(args: argparse.Namespace) -> int:
    # SIGTERM (and SIGINT, which a shell's background job ignores) cancel the run, so the
    # runs' cleanup stops the server and the bots instead of leaving them behind.
    task = asyncio.current_task()
    assert task is not None
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, task.cancel)
    out = args.out or RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}-{args.scenario}"
    out.mkdir(parents=True, exist_ok=True)
    load_clip()  # encode once before any process needs it
    if args.scenario == "simulcast":
        load_simulcast_clips()
    machine = procstat.machine()
    if args.scenario in ("soak", "bad-viewers", "big-room", "stall"):
        header = {
            "command": ["python", "-m", "benchmarks", *sys.argv[1:]],
            "machine": machine,
            "source": _source(),
        }
        if args.scenario == "big-room":
            return await big_room.main(args, out, header)
        if args.scenario == "stall":
            return await stall.main(args, out, header)
        if args.scenario == "soak":
            return await soak.main(args, out, header)
        return await bad_viewers.main(args, out, header)
    runs: list[dict[str, Any]] = []
    payload: dict[str, Any] = {
        "command": ["python", "-m", "benchmarks", *sys.argv[1:]],
        "machine": machine,
        "source": _source(),
        "runs": runs,
        "comparisons": [],
        "worker_comparisons": [],
        "worker_capacity": [],
        "simulcast_comparisons": [],
    }
    status = 0
    for i, spec in enumerate(_specs(args)):
        name = (
            f"{i:02d}-{spec.target}-{spec.viewers}v"
            + (f"-{spec.workers}w" if spec.workers is not None else "")
            + ("-simulcast" if spec.simulcast else "")
        )
        try:
            runs.append(await run(spec, out / "logs" / name))
        except RuntimeError as exc:
            sys.stderr.write(f"\nrun {i} ({spec.target}, {spec.viewers} viewers) failed: {exc}\n")
            status = 1
        report.write_json(out / "results.json", payload)
    payload["comparisons"] = report.pair_with_relay(runs)
    payload["worker_comparisons"] = report.compare_workers(runs)
    payload["worker_capacity"] = report.worker_capacity(runs)
    payload["simulcast_comparisons"] = report.compare_simulcast(runs)
    worker_counts = {r["workers"] for r in runs if r.get("workers")}
    most_workers = max(worker_counts, default=1)
    if len(worker_counts) > 1:  # a comparison of worker counts: show the machine's ceiling
        size = round(statistics.fmean(r["mean_packet_bytes"] or 1000 for r in runs))
        payload["machine_send_scaling"] = await measure_kernel_send(
            size, "--parallel", str(most_workers)
        )
    report.write_json(out / "results.json", payload)
    if runs:
        try:
            report.plot(out, runs)
        except ImportError:  # matplotlib is in the optional "bench" dependencies
            sys.stderr.write("matplotlib is not installed: no plots (pip install -e .[bench])\n")
    print(f"\n{args.scenario} on {machine['nproc']} x {machine['cpu_model']}")  # noqa: T201
    print(report.table(runs))  # noqa: T201
    for comparison in payload["comparisons"]:
        print(  # noqa: T201
            f"{comparison['target']} vs relay: "
            f"{comparison['cpu_us_per_egress_packet']['ratio']}x cheaper per packet, "
            f"{comparison['viewers_per_cpu_second']['ratio']}x viewers per CPU-second "
            f"(loss {comparison['loss_pct']['sfu']}% vs {comparison['loss_pct']['relay']}%, "
            f"same loss: {comparison['same_loss']})"
        )
    for comparison in payload["worker_comparisons"]:
        base = comparison["runs"][0]
        for other in comparison["runs"][1:]:
            print(  # noqa: T201
                f"{comparison['target']} {comparison['viewers']} viewers: "
                f"{other['workers']} workers vs {base['workers']}: "
                f"egress x{other['egress_ratio']} "
                f"({other['egress_pps']} vs {base['egress_pps']} pkt/s; "
                f"loss {other['loss_pct']}% vs {base['loss_pct']}%; server kept up: "
                f"{other['server_kept_up']} vs {base['server_kept_up']})"
            )
    scaling = payload.get("machine_send_scaling")
    if scaling:
        print(  # noqa: T201
            f"the machine's bare kernel send: {scaling['processes']} processes at once "
            f"x{scaling['ratio']} of one ({scaling['parallel_pps']} vs {scaling['single_pps']} "
            "pkt/s), the ceiling for the workers' ratio"
        )
    for capacity in payload["worker_capacity"]:
        for count, best in capacity["by_workers"].items():
            sustained, peak = best["sustained"], best["peak"]
            print(  # noqa: T201
                f"{capacity['target']} {count} workers: sustained {sustained['egress_pps']} "
                f"pkt/s (x{sustained['ratio']}, {sustained['viewers']} viewers), peak "
                f"{peak['egress_pps']} pkt/s (x{peak['ratio']}, {peak['viewers']} viewers, "
                f"kept up: {peak['kept_up']}) of {capacity['base_workers']} worker(s)"
            )
    for comparison in payload["simulcast_comparisons"]:
        single, simulcast = comparison["single"], comparison["simulcast"]
        print(  # noqa: T201
            f"{comparison['target']} {comparison['viewers']} viewers: simulcast vs one encoding: "
            f"x{comparison['cpu_us_per_egress_packet_ratio']} CPU per forwarded packet "
            f"({simulcast['cpu_us_per_egress_packet']} vs {single['cpu_us_per_egress_packet']} "
            f"us), x{comparison['sfu_cpu_util_ratio']} in all ({simulcast['sfu_cpu_util']} vs "
            f"{single['sfu_cpu_util']} of a core); egress {simulcast['egress_pps']} vs "
            f"{single['egress_pps']} pkt/s, ingress {simulcast['ingress_pps']} vs "
            f"{single['ingress_pps']} pkt/s; viewers by encoding "
            f"{simulcast['simulcast_consumers']}; loss {simulcast['loss_pct']}% vs "
            f"{single['loss_pct']}%"
        )
    for r in runs:
        for error in r["errors"][:5]:
            print(f"  ! {r['target']}: {error[:300]}")  # noqa: T201
    print(f"results: {out}")  # noqa: T201
    return status


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.scenario in ("soak", "bad-viewers", "big-room", "stall"):
        pass
    elif args.thin_viewers < 0:
        parser.error("--thin-viewers must be 0 (off) or a positive sample interval")
    elif args.thin_viewers and (args.compare_relay or args.no_sfu):
        parser.error("--thin-viewers measures the SFU from its own counters; the relay has none")
    import uvloop

    try:
        return uvloop.run(_main(args))
    except asyncio.CancelledError:
        sys.stderr.write("\nstopped: every process this run started was stopped\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
