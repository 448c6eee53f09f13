"""The benchmark harness end to end, small: real server, real bots, real relay.

Checks that a run reports every field with plausible values; it asserts nothing about
speed (the machine may be busy), only that media flowed and was measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report import REQUIRED_FIELDS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    command = [
        sys.executable,
        "-m",
        "benchmarks",
        "stage-av",
        "--publishers",
        "1",
        "--viewers",
        "3",
        "--seconds",
        "4",
        "--warmup",
        "0",
        "--compare-relay",
        "--relay-viewers",
        "1",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


def _run(results: dict, target: str) -> dict:
    return next(run for run in results["runs"] if run["target"] == target)


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_an_sfu_run_reports_every_field_with_media_flowing(results: dict) -> None:
    run = _run(results, "sfu")
    missing = [name for name in REQUIRED_FIELDS if name not in run]
    assert not missing
    assert run["viewers_receiving"] == 3
    assert run["egress_packets"] > 0
    assert run["loss_pct"] is not None and run["loss_pct"] < 5
    assert run["video_fps"] > 0
    assert run["latency_p50_ms"] > 0
    assert run["latency_p99_ms"] >= run["latency_p50_ms"]
    assert run["join_p50_ms"] > 0 and run["join_p95_ms"] >= run["join_p50_ms"]
    assert run["sfu_cpu_seconds"] > 0 and run["cpu_us_per_egress_packet"] > 0
    assert run["kernel_send_us_per_packet"] > 0
    assert run["rss_mb"] > 0
    assert run["upstream_pli_per_s"] >= 0
    assert not run["errors"]
    assert results["machine"]["nproc"] >= 1 and results["machine"]["cpu_model"]


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_the_naive_relay_is_measured_beside_it(results: dict) -> None:
    run = _run(results, "relay")
    assert run["viewers_receiving"] == 1
    assert run["egress_packets"] > 0
    assert run["loss_pct"] is not None and run["loss_pct"] < 5
    assert run["latency_p50_ms"] is None  # the relay re-encodes: no send-time stamp survives
    (comparison,) = results["comparisons"]
    assert comparison["cpu_us_per_egress_packet"]["ratio"] > 0
    assert comparison["viewers_per_cpu_second"]["ratio"] > 0
