"""python -m tools.fuzz: fuzz a stage-sfu server it starts itself on loopback."""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import sys
from pathlib import Path

from . import report
from .run import RunConfig, run


def parse(argv: list[str]) -> tuple[RunConfig, Path | None]:
    parser = argparse.ArgumentParser(prog="python -m tools.fuzz", description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="server.workers (default 2)")
    parser.add_argument("--inputs", type=int, default=20_000, help="inputs to send in all")
    parser.add_argument("--seconds", type=float, default=600.0, help="bound on fuzzing time")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    parser.add_argument(
        "--ws-share",
        type=float,
        default=0.5,
        help="fraction of the inputs that are WebSocket frames (rest: UDP)",
    )
    parser.add_argument("--json", type=Path, help="write the report as JSON to this file")
    parser.add_argument("--workdir", type=Path, help="keep the server's log here")
    args = parser.parse_args(argv)
    config = RunConfig(
        workers=args.workers,
        inputs=args.inputs,
        seconds=args.seconds,
        seed=args.seed,
        ws_share=args.ws_share,
        workdir=args.workdir,
    )
    return config, args.json


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    config, json_path = parse(argv)
    # The fuzzer's own clients log every refused request and dropped packet; only the
    # server's log matters here.
    logging.basicConfig(level=logging.CRITICAL)
    result = asyncio.run(run(config))
    document = report.as_dict(result, shlex.join(["python", "-m", "tools.fuzz", *argv]))
    print(report.table(document))  # noqa: T201 - the report is this command's output
    if json_path is not None:
        json_path.write_text(report.dumps(document))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
