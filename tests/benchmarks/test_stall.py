"""The stall benchmark: what it computes from viewers' packets, and a small real run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import stall

MS = 1_000_000  # ns


def _stall(start_ms: int, length_ms: int, until_ms: int) -> stall.Stall:
    return stall.Stall(start_ms * MS, (start_ms + length_ms) * MS, float(length_ms), until_ms * MS)


def _steady(from_ms: int, to_ms: int, latency_ms: float = 1.0) -> list[tuple[int, int]]:
    return [(t * MS, int(latency_ms * MS)) for t in range(from_ms, to_ms, 20)]


def test_a_late_backlog_counts_until_latency_is_normal_again() -> None:
    # Stopped 1000-1400 ms; the backlog arrives at once at 1400, then latency falls
    # 300 -> 0 over 300 ms, then packets are on time.
    backlog = [(1400 * MS, (400 - i * 20) * MS) for i in range(20)]
    draining = [((1400 + k * 20) * MS, (300 - k * 20) * MS) for k in range(15)]
    timeline = _steady(0, 1000) + backlog + draining + _steady(1700, 3000)
    stalls = [_stall(1000, 400, 3000)]
    normal = stall.normal_latency_ms([timeline], stalls)
    assert normal == 1.0
    (effect,) = stall.stall_effects([timeline], stalls, normal)
    assert effect["max_latency_ms"] == 400.0
    # The last packet above 51 ms arrived 1400 + 12 * 20 ms (latency 60 ms).
    assert effect["recovery_ms"] == 240.0
    assert effect["burst"] == 20 + 1  # the backlog and the first draining packet
    assert effect["received"] == len(backlog) + len(draining) + len(_steady(1700, 3000))


def test_a_hiccup_after_recovery_is_not_counted_as_recovery() -> None:
    timeline = _steady(0, 1000) + _steady(1400, 2000) + [(2500 * MS, 300 * MS)]
    timeline += _steady(2520, 3000)
    stalls = [_stall(1000, 400, 3000)]
    (effect,) = stall.stall_effects([timeline], stalls, 1.0)
    assert effect["recovery_ms"] == 0.0
    assert effect["max_latency_ms"] == 300.0


def test_effects_are_grouped_by_stall_length() -> None:
    effects = [
        {"stall_ms": 200.0, "recovery_ms": 10.0, "max_latency_ms": 200.0, "burst": 40},
        {"stall_ms": 200.0, "recovery_ms": 30.0, "max_latency_ms": 210.0, "burst": 44},
        {"stall_ms": 800.0, "recovery_ms": 500.0, "max_latency_ms": 800.0, "burst": 90},
    ]
    grouped = stall.by_length(effects)
    assert grouped["200"] == {
        "recovery_ms_median": 20.0,
        "recovery_ms_max": 30.0,
        "max_latency_ms": 210.0,
        "burst_median": 42.0,
        "burst_max": 44,
    }
    assert grouped["800"]["recovery_ms_max"] == 500.0


def test_flaps_are_speaking_changes_after_each_viewers_first() -> None:
    assert stall.flaps([[(1.0, True)], [(1.0, True), (2.0, False), (2.5, True)], []]) == 2


@pytest.mark.integration
@pytest.mark.timeout(200)
def test_the_stall_scenario_measures_each_setting(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    command = [
        sys.executable,
        "-m",
        "benchmarks",
        "stall",
        "--delays",
        "0,0.25",
        "--stalls-ms",
        "400",
        "--repeat",
        "1",
        "--every",
        "1.5",
        "--viewers",
        "1",
        "--warmup",
        "0.5",
        "--out",
        str(tmp_path),
    ]
    done = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    forward_late, dropping = results["runs"]
    assert (forward_late["max_ingress_delay"], dropping["max_ingress_delay"]) == (0.0, 0.25)
    for run in (forward_late, dropping):
        assert run["stalls"] == 1
        assert run["connected_at_end"] == run["participants"] == 2
        assert run["stall_effects"][0]["received"] > 0
        assert run["speaking_flaps"] == 0
    # Forwarding late drops nothing; 400 ms stopped with a 250 ms limit drops some.
    assert forward_late["late_discarded"] == 0
    assert dropping["late_discarded"] > 0
