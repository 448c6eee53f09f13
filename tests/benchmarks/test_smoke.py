"""The benchmark harness end to end, small: real server, real bots, real relay.

Checks that a run reports every field with plausible values; it asserts nothing about
speed (the machine may be busy), only that media flowed and was measured: paced
publishers, several rooms, several worker counts side by side, and thin viewers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.media import load_clip
from benchmarks.pacer import burst_bound
from benchmarks.report import REQUIRED_FIELDS

REPO = Path(__file__).resolve().parents[2]
THIN = 4

Results = dict[str, Any]


def _bench(out: Path, *options: str) -> Results:
    command = [sys.executable, "-m", "benchmarks", "stage-av", *options, "--out", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    results: Results = json.loads((out / "results.json").read_text())
    return results


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Results:
    return _bench(
        tmp_path_factory.mktemp("bench"),
        *("--publishers", "1", "--viewers", "3", "--seconds", "4", "--warmup", "0"),
        *("--compare-relay", "--relay-viewers", "1"),
    )


@pytest.fixture(scope="module")
def spread(tmp_path_factory: pytest.TempPathFactory) -> Results:
    """Two rooms of two publishers, once on one worker and once on two, thin viewers,
    publishers that send each frame as one burst (no pacing) and chat a line a second."""
    return _bench(
        tmp_path_factory.mktemp("spread"),
        *("--publishers", "2", "--rooms", "2", "--viewers", "4", "--workers", "1,2"),
        *("--thin-viewers", str(THIN), "--pacing-factor", "0", "--chat-rate", "1"),
        *("--seconds", "3", "--warmup", "0.5"),
    )


def _run(results: Results, target: str) -> Results:
    return next(run for run in results["runs"] if run["target"] == target)


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_an_sfu_run_reports_every_field_with_media_flowing(results: Results) -> None:
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
    # Not thin: the bots' count is the egress, and the server counted at least as much.
    assert run["egress_source"] == "bots" and run["thin_viewers"] == 0
    assert run["server_egress_packets"] >= run["egress_packets"] * 0.9
    assert run["rooms"] == 1 and run["egress_ratio"] is None


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_publishers_pace_video_by_default(results: Results) -> None:
    run = _run(results, "sfu")
    clip = load_clip(create=False)
    smallest = min(len(p) for frame in clip.video for p in frame.payloads)
    largest_frame = max(len(frame.payloads) for frame in clip.video)
    assert run["pacing_factor"] == 2.5 and run["params"]["pacing_factor"] == 2.5
    # The 25-packet key frame the replay starts with left a few packets at a time.
    assert 0 < run["video_max_burst"] <= burst_bound(2.5 * clip.video_bitrate, smallest)
    assert run["video_max_burst"] < largest_frame
    assert run["pacer_max_delay_ms"] > 0


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_the_naive_relay_is_measured_beside_it(results: Results) -> None:
    run = _run(results, "relay")
    assert run["viewers_receiving"] == 1
    assert run["egress_packets"] > 0
    assert run["loss_pct"] is not None and run["loss_pct"] < 5
    assert run["latency_p50_ms"] is None  # the relay re-encodes: no send-time stamp survives
    (comparison,) = results["comparisons"]
    assert comparison["cpu_us_per_egress_packet"]["ratio"] > 0
    assert comparison["viewers_per_cpu_second"]["ratio"] > 0


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_one_point_runs_once_per_worker_count_with_egress_ratios(spread: Results) -> None:
    runs = spread["runs"]
    assert [run["workers"] for run in runs] == [1, 2]
    for run in runs:
        assert run["rooms"] == 2 and run["params"]["rooms"] == 2
        assert run["viewers_receiving"] == 4 and not run["errors"]
        assert run["egress_ratio"] > 0
        # A line a second in each room, each a broadcast to its 4 members.
        assert run["chat_rate"] == 1.0 and run["chat_lines_per_s"] > 0
        assert 3 <= run["chat_deliveries_per_s"] / run["chat_lines_per_s"] <= 5
        roles = sorted(p["role"] for p in run["server_processes"])
        assert roles == (["server"] if run["workers"] == 1 else ["front", "worker0", "worker1"])
    assert runs[0]["egress_ratio"] == 1.0
    (comparison,) = spread["worker_comparisons"]
    assert comparison["base_workers"] == 1
    assert [r["workers"] for r in comparison["runs"]] == [1, 2]
    assert comparison["runs"][1]["egress_ratio"] == runs[1]["egress_ratio"]
    assert all(len(r["worker_cpu_util"]) == r["workers"] for r in comparison["runs"])
    (capacity,) = spread["worker_capacity"]
    assert sorted(capacity["by_workers"]) == ["1", "2"]
    assert all(best["highest_viewers_run"] == 4 for best in capacity["by_workers"].values())


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_thin_bots_receive_only_every_nth_packet_and_egress_is_the_servers(
    spread: Results,
) -> None:
    for run in spread["runs"]:
        # Every subscribe connection is thin, publishers' (2 per room) included.
        assert run["thin_viewers"] == THIN and run["thin_connections"] == 4 + 4
        # The kernel filter was on for the whole window: nothing off the subsequence came.
        assert run["off_sample_packets"] == 0
        assert run["bots_received_packets"] > 0
        assert run["loss_pct"] == 0  # on the sampled subsequence, on loopback at tiny load
        assert run["egress_source"] == "server_metrics"
        assert run["egress_packets"] == run["server_egress_packets"]
        assert run["server_ingress_packets"] > 0 and run["server_ingress_loss_pct"] is not None
        # The bots saw one packet in THIN of what the server sent; the window's edges are
        # read a moment apart, hence "about".
        estimate = run["bots_received_packets"] * THIN
        assert estimate == pytest.approx(run["server_egress_packets"], rel=0.1)
        assert run["publishers_received_packets"] > 0


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_publishers_without_pacing_send_a_frame_as_one_burst(spread: Results) -> None:
    clip = load_clip(create=False)
    for run in spread["runs"]:
        assert run["pacing_factor"] == 0
        # The replay starts on its largest frame, the first key frame: all of it at once.
        assert run["video_max_burst"] == max(len(frame.payloads) for frame in clip.video)
