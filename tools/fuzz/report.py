"""The run's report: a printed table and a JSON document with the same figures."""

from __future__ import annotations

import json
from typing import Any

from .findings import Problem
from .run import RunResult


def as_dict(result: RunResult, command: str) -> dict[str, Any]:
    findings = result.findings
    before, after = sum(result.rss_before_kib.values()), sum(result.rss_after_kib.values())
    return {
        "command": command,
        "workers": result.config.workers,
        "seed": result.config.seed,
        "inputs_requested": result.config.inputs,
        "inputs_sent": findings.total_sent,
        "inputs_by_family": dict(sorted(findings.sent.items())),
        "fuzz_seconds": round(result.fuzz_seconds, 1),
        "inputs_per_second": round(findings.total_sent / max(result.fuzz_seconds, 1e-9)),
        "distinct_replies": len(findings.replies),
        "replies": dict(findings.replies.most_common()),
        "crashes": len(result.crashes),
        "crash_details": result.crashes,
        "internal_errors": result.internal_errors,
        "internal_replies": result.internal_replies,
        "server_log_problems": result.log_problems,
        "anomalies": result.anomalies,
        "rss_before_kib": {"total": before, "by_pid": result.rss_before_kib},
        "rss_after_kib": {"total": after, "by_pid": result.rss_after_kib},
        "rtp_forwarded_to_fuzz_viewer": result.forwarded_to_viewer,
        "media_sessions": result.media_sessions,
        "health_check": None
        if result.health is None
        else {
            "passed": result.health.passed,
            "detail": result.health.detail,
            "seconds": round(result.health.seconds, 1),
        },
        "healthz_after": result.healthz_after,
        "server_exit_code": result.exit_code,
        "server_log": result.log_path,
        "problems": [_problem(p) for p in findings.problems.values()],
        "passed": result.passed,
    }


def _problem(problem: Problem) -> dict[str, Any]:
    return {
        "kind": str(problem.kind),
        "signature": problem.signature,
        "count": problem.count,
        "detail": problem.detail,
        "reproducer": problem.reproducer,
    }


def table(report: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = [
        ("command", report["command"]),
        ("workers / seed", f"{report['workers']} / {report['seed']}"),
        (
            "inputs sent",
            f"{report['inputs_sent']} of {report['inputs_requested']} in "
            f"{report['fuzz_seconds']} s ({report['inputs_per_second']}/s)",
        ),
    ]
    rows += [(f"  {family}", str(n)) for family, n in report["inputs_by_family"].items()]
    rows.append(("distinct replies", str(report["distinct_replies"])))
    rows += [(f"  {reply}", str(n)) for reply, n in report["replies"].items()]
    health = report["health_check"] or {"passed": False, "detail": "not run"}
    rows += [
        ("crashes", f"{report['crashes']} {'; '.join(report['crash_details'])}".strip()),
        (
            "internal errors",
            f"{report['internal_errors']} ({report['internal_replies']} "
            f"'internal' replies, {report['server_log_problems']} log records)",
        ),
        ("anomalies", str(report["anomalies"])),
        ("server RSS before", _kib(report["rss_before_kib"])),
        ("server RSS after", _kib(report["rss_after_kib"])),
        ("RTP forwarded to fuzz viewer", str(report["rtp_forwarded_to_fuzz_viewer"])),
        ("health check", f"{'PASS' if health['passed'] else 'FAIL'}: {health['detail']}"),
        ("result", "PASS" if report["passed"] else "FAIL"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name.ljust(width)}  {value}" for name, value in rows]
    for problem in report["problems"]:
        lines += [
            "",
            f"[{problem['kind']}] x{problem['count']}: {problem['signature']}",
            f"  detail: {_indent(problem['detail'][:2000])}",
            f"  reproducer: {_indent(problem['reproducer'][:4000])}",
        ]
    return "\n".join(lines)


def _kib(rss: dict[str, Any]) -> str:
    parts = ", ".join(f"pid {pid}: {kib / 1024:.1f}" for pid, kib in rss["by_pid"].items())
    return f"{rss['total'] / 1024:.1f} MiB ({parts})"


def _indent(text: str) -> str:
    return text.replace("\n", "\n    ")


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, default=str)
