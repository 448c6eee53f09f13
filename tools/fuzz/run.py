"""One fuzzing run: start the server, fuzz WebSocket frames then UDP datagrams within the
budget, check the server's health, its workers and its log, and stop it."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from signaling.client import use_ice_addresses

from . import health
from .budget import Budget
from .findings import Findings, ProblemKind
from .server import ServerProcess
from .server_log import ServerLog
from .udp_campaign import UdpCampaign
from .ws_campaign import WsCampaign
from .ws_mutations import DEFAULT_MAX_MESSAGE_BYTES

# What the session logs when it answers "internal": the same defect as the reply.
INTERNAL_REPLY_LOG = "internal error handling a request"
PROGRESS_EVERY = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunConfig:
    workers: int = 2
    inputs: int = 20_000
    seconds: float = 600.0
    seed: int = 1
    ws_share: float = 0.5  # of the inputs (and of the time) for WebSocket frames
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    workdir: Path | None = None  # where the server's log goes; a temporary directory if None

    def __post_init__(self) -> None:
        if self.workers < 1 or self.inputs < 0 or self.seconds <= 0:
            raise ValueError("workers >= 1, inputs >= 0 and seconds > 0 are required")
        if not 0.0 <= self.ws_share <= 1.0:
            raise ValueError("ws_share is a fraction between 0 and 1")


@dataclass(slots=True)
class RunResult:
    config: RunConfig
    findings: Findings
    fuzz_seconds: float = 0.0
    rss_before_kib: dict[int, int] = field(default_factory=dict)
    rss_after_kib: dict[int, int] = field(default_factory=dict)
    crashes: list[str] = field(default_factory=list)
    health: health.HealthResult | None = None
    healthz_after: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    forwarded_to_viewer: int = 0
    media_sessions: int = 0
    log_path: str = ""

    @property
    def internal_replies(self) -> int:
        return self.findings.count(ProblemKind.INTERNAL)

    @property
    def log_problems(self) -> int:
        return self.findings.count(ProblemKind.SERVER_LOG)

    @property
    def internal_errors(self) -> int:
        """Internal replies, plus log problems that are not the log side of one."""
        unanswered = sum(
            p.count
            for p in self.findings.problems.values()
            if p.kind is ProblemKind.SERVER_LOG and INTERNAL_REPLY_LOG not in p.signature
        )
        return self.internal_replies + unanswered

    @property
    def anomalies(self) -> int:
        return sum(
            self.findings.count(kind)
            for kind in (
                ProblemKind.UNEXPECTED_CLOSE,
                ProblemKind.UNANSWERED,
                ProblemKind.MEDIA_LOST,
            )
        )

    @property
    def passed(self) -> bool:
        return (
            not self.crashes
            and self.internal_errors == 0
            and self.anomalies == 0
            and self.health is not None
            and self.health.passed
        )


async def run(config: RunConfig) -> RunResult:
    use_ice_addresses(["127.0.0.1"])  # aioice skips loopback unless told
    with tempfile.TemporaryDirectory(prefix="stage-sfu-fuzz-") as scratch:
        workdir = config.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        server = ServerProcess(workers=config.workers, log_path=workdir / "server.log")
        result = RunResult(config=config, findings=Findings(), log_path=str(server.log_path))
        log = ServerLog(server.log_path)
        await server.start()
        try:
            await _fuzz_and_check(server, log, config, result)
        finally:
            await server.stop()
            result.exit_code = server.returncode
            _late_log_problems(log, result, final=True)
            if config.workdir is None:
                result.log_path = "(temporary, removed)"
    return result


async def _fuzz_and_check(
    server: ServerProcess, log: ServerLog, config: RunConfig, result: RunResult
) -> None:
    async with aiohttp.ClientSession() as http:
        _, healthz_before = await server.health(http)
    result.rss_before_kib = server.rss_kib()
    started = time.monotonic()
    progress = asyncio.get_running_loop().create_task(_progress(result.findings, started))
    ws_inputs = round(config.inputs * config.ws_share)
    ws = WsCampaign(
        url=server.ws_url,
        seed=config.seed,
        findings=result.findings,
        log=log,
        budget=Budget(ws_inputs, config.seconds * config.ws_share),
        max_message_bytes=config.max_message_bytes,
    )
    await ws.run()
    udp = UdpCampaign(
        ws_url=server.ws_url,
        seed=config.seed,
        findings=result.findings,
        log=log,
        budget=Budget(
            config.inputs - ws_inputs, max(1.0, config.seconds - (time.monotonic() - started))
        ),
    )
    await udp.run()
    result.fuzz_seconds = time.monotonic() - started
    progress.cancel()
    result.forwarded_to_viewer, result.media_sessions = udp.forwarded, udp.sessions
    result.rss_after_kib = server.rss_kib()
    result.health = await health.check(server.ws_url, f"health-{config.seed}")
    async with aiohttp.ClientSession() as http:
        status, result.healthz_after = await server.health(http)
    result.crashes = _crashes(server, healthz_before, result.healthz_after, status)
    _late_log_problems(log, result, final=False)


async def _progress(findings: Findings, started: float) -> None:
    """A line on stderr every PROGRESS_EVERY seconds, for long runs."""
    while True:
        await asyncio.sleep(PROGRESS_EVERY)
        elapsed = time.monotonic() - started
        sent = findings.total_sent
        sys.stderr.write(
            f"[fuzz] {elapsed:.0f} s: {sent} inputs ({sent / elapsed:.0f}/s), "
            f"{len(findings.problems)} distinct problems\n"
        )


def _late_log_problems(log: ServerLog, result: RunResult, *, final: bool) -> None:
    for problem in log.new_problems(final=final):
        result.findings.add(
            ProblemKind.SERVER_LOG,
            problem.signature,
            problem.excerpt,
            "after the fuzzing (during the health check or the shutdown)",
        )


def _crashes(
    server: ServerProcess, before: dict[str, Any], after: dict[str, Any], status: int
) -> list[str]:
    """The server process died, or (with several workers) a worker restarted or hung."""
    if not server.alive:
        return [f"server process exited with {server.returncode}"]
    found = []
    if status != 200:
        found.append(f"/healthz answered {status}: {after}")
    previous = {w.get("index"): w for w in before.get("workers", [])}
    for worker in after.get("workers", []):
        old = previous.get(worker.get("index"), {})
        grown = [
            f"{int(worker.get(c, 0)) - int(old.get(c, 0))} {c}"
            for c in ("restarts", "hangs")
            if int(worker.get(c, 0)) > int(old.get(c, 0))
        ]
        if not grown and old.get("pid") not in (None, worker.get("pid")):
            grown.append(f"pid {old.get('pid')} -> {worker.get('pid')}")
        found.extend(f"worker {worker.get('index')}: {what}" for what in grown)
    return found
