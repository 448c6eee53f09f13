"""big-room end to end, small: a real server, real media bots, a crowd of a few dozen.

Nothing about speed is asserted (the machine may be busy): only that every part ran, was
measured and reported, with values that make sense.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import room_metrics

REPO = Path(__file__).resolve().parents[2]


def _scrape(count: float, buckets: dict[str, float], longest: float) -> room_metrics.Scrape:
    values = {f"stall_le:{le}": v for le, v in buckets.items()}
    return {"": values | {"stall_count": count, "stall_max": longest, "participants": 3.0}}


def test_the_longest_stall_is_the_new_record_when_it_rose() -> None:
    first = _scrape(10, {"0.005": 10, "0.01": 10, "+Inf": 10}, 0.002)
    last = _scrape(15, {"0.005": 14, "0.01": 15, "+Inf": 15}, 0.0071)
    stalls = room_metrics.stalls_between(first, last, "")
    assert stalls == {"probes": 5, "over_5ms": 1, "longest_ms": 7.1, "longest_exact": True}


def test_the_longest_stall_is_a_bucket_bound_under_an_older_record() -> None:
    first = _scrape(10, {"0.005": 9, "0.01": 9, "0.025": 10, "+Inf": 10}, 0.02)
    last = _scrape(15, {"0.005": 13, "0.01": 15, "0.025": 15, "+Inf": 15}, 0.02)
    stalls = room_metrics.stalls_between(first, last, "")
    assert stalls == {"probes": 5, "over_5ms": 1, "longest_ms": 10.0, "longest_exact": False}


def _fields(row: dict[str, Any], *names: str) -> None:
    missing = [name for name in names if name not in row]
    assert not missing, (missing, row)


@pytest.mark.integration
@pytest.mark.timeout(200)
def test_a_small_big_room_reports_joins_commands_stalls_and_media(tmp_path: Path) -> None:
    options = ["--members", "40", "--checkpoints", "16,28", "--media-viewers", "2"]
    options += ["--media-seconds", "2", "--rounds", "2", "--idle-seconds", "0.5"]
    command = [sys.executable, "-m", "benchmarks", "big-room", *options, "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    base = results["params"]["base_members"]  # 1 publisher, 2 viewers, the host, a quiet one
    assert base == 5
    assert results["joins"] == 40 - base
    assert results["join_failures"] == 0 and results["crowd_disconnected"] == 0
    assert [(s["from"], s["to"]) for s in results["segments"]] == [(5, 16), (16, 28), (28, 40)]
    sizes = sorted(size for size, _ in results["join_samples"])
    assert sizes == list(range(base + 1, 41))  # each join saw the room one bigger
    for segment in results["segments"]:
        _fields(segment, "seconds", "joins_per_s", "server_cpu_seconds", "gc_pause_ms")
        assert segment["join_ms"]["count"] == segment["to"] - segment["from"]
        assert 0 < segment["join_ms"]["median"] <= segment["join_ms"]["p99"]
        assert segment["server_join_mean_ms"] > 0
        assert segment["stalls"]["probes"] >= 0 and segment["stalls"]["longest_ms"] >= 0
        assert 0 <= segment["machine_busy_pct"] <= 100
    batches = results["commands"]
    assert [(b["size"], b["kind"]) for b in batches] == [
        (size, kind) for size in (16, 28, 40) for kind in ("invite", "mute", "hand", "access")
    ]
    for batch in batches:
        assert batch["commands"] == 4
        assert batch["rtt_median_ms"] > 0
        _fields(batch, "server_cpu_ms_per_command", "server_idle_cpu_util", "stalls")
        # Every command reached someone: the host its ack at least.
        assert batch["messages_out_per_command"] >= 1
    # A stage change goes to the whole room; a hand only to the full view.
    mute = {b["size"]: b["messages_out_per_command"] for b in batches if b["kind"] == "mute"}
    assert mute[40] > mute[16]
    media = results["media"]
    for phase in ("before", "commands", "after"):  # a fill this small may take no sample
        assert media[phase]["latency_samples"] > 0, phase
    assert 0 < media["before"]["latency_p50_ms"] <= media["before"]["latency_p99_ms"]
    assert media["before"]["stalls"]["probes"] > 0
    goals = {goal["goal"]: goal for goal in results["goals"]}
    # Joins, four command kinds, stalls, and media while filling when the fill (a second
    # or so here) took a latency sample: without one there is nothing to compare.
    sampled = media["fill"]["latency_p99_ms"] is not None
    assert len(goals) == (7 if sampled else 6), goals.keys()
    assert ("stage media p99 unchanged within 1 ms while the room fills" in goals) == sampled
    assert all(goal["pass"] in (True, False) for goal in goals.values())
    assert "PASS" in done.stdout or "FAIL" in done.stdout
    assert results["errors"] == []
