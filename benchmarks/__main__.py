"""`python -m benchmarks SCENARIO [options]`: run a load scenario and report it.

Scenarios:
  stage-av     A/V publishers on stage (Opus + VP8 640x360) -> N viewers
  stage-audio  audio-only speakers on stage -> N viewers
  join-storm   1 A/V publisher streaming while N viewers join at --rate per second

`--viewers` takes a comma-separated list for a sweep (one fresh server per point).
`--compare-relay` runs each point again against a naive aiortc MediaRelay server.
Results go to benchmarks/results/<timestamp>-<scenario>/ (results.json, runs.png,
scaling.png for sweeps, server and bot logs); see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import procstat, report
from .media import load_clip
from .processes import REPO
from .runner import RunSpec, run

RESULTS = Path(__file__).resolve().parent / "results"


def _viewer_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("viewers must be positive integers, e.g. 50,100,200")
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
            default=5,
            help="niceness added to viewer bot processes (default %(default)s), so the server "
            "and the publishers get the CPU first; 0 to compete as equals",
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
    audio_only = args.scenario == "stage-audio"
    specs = []
    for viewers in args.viewers:
        targets = (
            []
            if args.no_sfu
            else {"native": ["sfu"], "python": ["sfu-python"], "both": ["sfu", "sfu-python"]}[
                args.fanout
            ]
        )
        if args.compare_relay or args.no_sfu:
            targets.append("relay")
        for target in targets:
            count = args.relay_viewers if target == "relay" and args.relay_viewers else viewers
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
                    sfu_options=tuple(args.sfu_option),
                    viewers_nice=args.viewers_nice,
                )
            )
    return specs


async def _main(args: argparse.Namespace) -> int:
    out = args.out or RESULTS / f"{time.strftime('%Y%m%d-%H%M%S')}-{args.scenario}"
    out.mkdir(parents=True, exist_ok=True)
    load_clip()  # encode once before any process needs it
    machine = procstat.machine()
    runs: list[dict[str, Any]] = []
    payload: dict[str, Any] = {
        "command": ["python", "-m", "benchmarks", *sys.argv[1:]],
        "machine": machine,
        "source": _source(),
        "runs": runs,
        "comparisons": [],
    }
    status = 0
    for i, spec in enumerate(_specs(args)):
        try:
            runs.append(await run(spec, out / "logs" / f"{i:02d}-{spec.target}-{spec.viewers}v"))
        except RuntimeError as exc:
            sys.stderr.write(f"\nrun {i} ({spec.target}, {spec.viewers} viewers) failed: {exc}\n")
            status = 1
        report.write_json(out / "results.json", payload)
    payload["comparisons"] = report.pair_with_relay(runs)
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
    for r in runs:
        for error in r["errors"][:5]:
            print(f"  ! {r['target']}: {error[:300]}")  # noqa: T201
    print(f"results: {out}")  # noqa: T201
    return status


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    import uvloop

    return uvloop.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
