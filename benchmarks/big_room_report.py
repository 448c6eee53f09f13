"""The big room's goals (pass/fail, reported, never asserted) and its printed summary."""

from __future__ import annotations

from typing import Any

FLAT_RATIO = 2.0  # per-join and per-command cost within 2x from the first size to the last
STALL_MS = 5.0  # no event-loop stall over 5 ms in the room's worker
MEDIA_MS = 1.0  # the stage's media p99 within 1 ms of before while the room fills
# CPU per command is a difference of /proc ticks (10 ms) over a batch; below this it is
# noise, so ratios use at least this much.
CPU_FLOOR_MS = 0.05


def _ratio(first: float | None, last: float | None, floor: float = 0.0) -> float | None:
    if first is None or last is None:
        return None
    return round(max(last, floor) / max(first, floor, 1e-9), 2)


def _goal(name: str, value: Any, passed: bool | None, detail: str) -> dict[str, Any]:
    return {"goal": name, "value": value, "pass": passed, "detail": detail}


def goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    segments = result["segments"]
    if len(segments) >= 2:
        first, last = segments[0], segments[-1]
        server = _ratio(first["server_join_mean_ms"], last["server_join_mean_ms"])
        client = _ratio(first["join_ms"]["median"], last["join_ms"]["median"])
        ratio = server if server is not None else client
        out.append(
            _goal(
                "join cost flat within 2x",
                ratio,
                None if ratio is None else ratio <= FLAT_RATIO,
                f"server mean to admit a join {first['server_join_mean_ms']} ms "
                f"({first['from']}-{first['to']}) -> {last['server_join_mean_ms']} ms "
                f"({last['from']}-{last['to']}), x{server}; round-trip median "
                f"{first['join_ms']['median']} -> {last['join_ms']['median']} ms, x{client}",
            )
        )
    batches = result["commands"]
    sizes = sorted({b["size"] for b in batches})
    if len(sizes) >= 2:
        for kind in dict.fromkeys(b["kind"] for b in batches):
            by_size = {b["size"]: b for b in batches if b["kind"] == kind}
            a, b = by_size.get(sizes[0]), by_size.get(sizes[-1])
            if a is None or b is None:
                continue
            cpu = _ratio(
                a["server_cpu_ms_per_command"], b["server_cpu_ms_per_command"], CPU_FLOOR_MS
            )
            rtt = _ratio(a["rtt_median_ms"], b["rtt_median_ms"])
            out.append(
                _goal(
                    f"{kind} command cost flat within 2x",
                    cpu,
                    None if cpu is None else cpu <= FLAT_RATIO,
                    f"server CPU per command {a['server_cpu_ms_per_command']} -> "
                    f"{b['server_cpu_ms_per_command']} ms ({sizes[0]} -> {sizes[-1]} members), "
                    f"round-trip median {a['rtt_median_ms']} -> {b['rtt_median_ms']} ms (x{rtt})",
                )
            )
    stalls = [s["stalls"] for s in segments] + [b["stalls"] for b in batches]
    known = [s for s in stalls if s["longest_ms"] is not None]
    if known:
        longest = max(s["longest_ms"] for s in known)
        over = sum(s["over_5ms"] for s in known)
        exact = any(s["longest_exact"] and s["longest_ms"] == longest for s in known)
        out.append(
            _goal(
                "no event-loop stall over 5 ms",
                longest,
                longest <= STALL_MS and over == 0,
                f"longest {'' if exact else '<= '}{longest} ms in the room's worker while "
                f"filling and running commands; {over} wake-ups of a 5 ms sleep more than "
                "5 ms late",
            )
        )
    media = result["media"]
    before, fill = media["before"]["latency_p99_ms"], media["fill"]["latency_p99_ms"]
    if before is not None and fill is not None:
        change = round(fill - before, 3)
        out.append(
            _goal(
                "stage media p99 unchanged within 1 ms while the room fills",
                change,
                abs(change) <= MEDIA_MS,
                f"p99 {before} ms before, {fill} ms while filling, "
                f"{media['after']['latency_p99_ms']} ms after",
            )
        )
    return out


def _num(value: Any) -> str:
    return "-" if value is None else str(value)


def summary(result: dict[str, Any]) -> str:
    lines = [
        f"big room: {result['joins']} joins in {result['fill_seconds']} s "
        f"({result['join_failures']} failed, {result['crowd_disconnected']} disconnected)",
        "",
        "joins by room size    count  rtt median   rtt p99  server mean  seconds  joins/s  "
        "longest stall ms  stalls>5ms",
    ]
    for s in result["segments"]:
        stalls = s["stalls"]
        bound = "" if stalls["longest_exact"] else "<="
        lines.append(
            f"{s['from']:>6}-{s['to']:<6}      {s['joins']:>6} {_num(s['join_ms']['median']):>11} "
            f"{_num(s['join_ms']['p99']):>9} {_num(s['server_join_mean_ms']):>12} "
            f"{s['seconds']:>8} {_num(s['joins_per_s']):>8} "
            f"{bound + _num(stalls['longest_ms']):>17} {_num(stalls['over_5ms']):>11}"
        )
    lines += [
        "",
        "commands at size  kind     n  rtt median  rtt p99  server CPU ms/cmd  msgs out/cmd  "
        "longest stall ms",
    ]
    for b in result["commands"]:
        p99 = max((v["p99"] or 0 for v in b["rtt_ms"].values()), default=None)
        stalls = b["stalls"]
        bound = "" if stalls["longest_exact"] else "<="
        lines.append(
            f"{b['size']:>16}  {b['kind']:<6} {b['commands']:>3} {_num(b['rtt_median_ms']):>11} "
            f"{_num(p99):>8} {b['server_cpu_ms_per_command']:>18} "
            f"{_num(b['messages_out_per_command']):>13} {bound + _num(stalls['longest_ms']):>17}"
        )
    lines += ["", "stage media      samples  p50 ms  p99 ms"]
    for phase, m in result["media"].items():
        lines.append(
            f"{phase:<16} {m['latency_samples']:>7} {_num(m['latency_p50_ms']):>7} "
            f"{_num(m['latency_p99_ms']):>7}"
        )
    lines.append("")
    for goal in result["goals"]:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[goal["pass"]]
        lines.append(f"{verdict}  {goal['goal']}: {goal['detail']}")
    for error in result["errors"][:10]:
        lines.append(f"  ! {error[:300]}")
    return "\n".join(lines)
