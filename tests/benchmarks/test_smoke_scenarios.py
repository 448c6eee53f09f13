"""bad-viewers, soak and simulcast end to end, small: real server, real bots.

Nothing about speed is asserted (the machine may be busy): only that every part ran and
was measured, and that the server let go of everything once the soak's people left.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

Results = dict[str, Any]


def _bench(out: Path, scenario: str, *options: str) -> Results:
    command = [sys.executable, "-m", "benchmarks", scenario, *options, "--out", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    results: Results = json.loads((out / "results.json").read_text())
    return results


@pytest.mark.integration
@pytest.mark.timeout(200)
def test_bad_viewers_measures_both_variants_and_the_bad_viewers(tmp_path: Path) -> None:
    results = _bench(
        tmp_path,
        "bad-viewers",
        "--viewers",
        "2",
        "--seconds",
        "3",
        "--warmup",
        "0.5",
        "--stall-watch",
        "0",
    )
    baseline, bad = results["runs"]
    assert (baseline["variant"], bad["variant"]) == ("baseline", "bad")
    for run in (baseline, bad):
        assert run["viewers_receiving"] == 2
        assert run["latency_p99_ms"] is not None
        assert run["server_window"]["rtp_sent"]["total"] > 0
    assert baseline["bad_viewers"] == {}
    stalled, lossy = bad["bad_viewers"]["stalled"], bad["bad_viewers"]["lossy"]
    assert stalled["with_media"] == 1 and stalled["stalled"] == 1
    assert lossy["with_media"] == 1 and lossy["filtered"] == 1
    assert lossy["nacks_sent"] > 0
    # The server answered the lossy viewer's NACKs.
    assert bad["server_window"]["nacks_received"]["total"] > 0
    assert bad["server_window"]["retransmissions_sent"]["total"] > 0
    assert results["comparison"]["server_per_s"]["nacks_received"]["difference"] > 0


@pytest.mark.integration
@pytest.mark.timeout(200)
def test_simulcast_runs_each_point_with_one_encoding_and_three_and_compares_them(
    tmp_path: Path,
) -> None:
    results = _bench(tmp_path, "simulcast", "--viewers", "3", "--seconds", "3", "--warmup", "0.5")
    single, simulcast = results["runs"]
    assert (single["simulcast"], simulcast["simulcast"]) == (False, True)
    for run in (single, simulcast):
        assert run["viewers_receiving"] == 3
        assert run["loss_pct"] == 0
        assert run["cpu_us_per_egress_packet"] > 0
    # The viewers' tiles (90, 180 and 360 pixels tall) put one of them on each encoding;
    # with one encoding there is nothing to choose from.
    assert simulcast["simulcast_consumers"][:3] == [1, 1, 1]
    assert not any(single["simulcast_consumers"] or [])
    # Three encodings in, fewer packets out (two viewers get the smaller ones).
    assert simulcast["server_ingress_packets"] > single["server_ingress_packets"]
    assert simulcast["egress_pps"] < single["egress_pps"]
    (comparison,) = results["simulcast_comparisons"]
    ratio = comparison["cpu_us_per_egress_packet_ratio"]
    assert ratio == round(
        simulcast["cpu_us_per_egress_packet"] / single["cpu_us_per_egress_packet"], 3
    )
    assert comparison["sfu_cpu_util_ratio"] > 0


@pytest.mark.integration
@pytest.mark.timeout(200)
def test_a_short_soak_samples_the_server_and_ends_with_nothing_left(tmp_path: Path) -> None:
    results = _bench(
        tmp_path,
        "soak",
        *("--minutes", "0.5", "--sample-seconds", "3", "--viewers", "2", "--hoppers", "1"),
        *("--quiet-hoppers", "1", "--quiet-stage-seconds", "4"),
        *("--quiet-off-stage-seconds", "2"),
        *("--churn-every", "3", "--viewer-lifetime", "6", "--stage-seconds", "6"),
        *("--off-stage-seconds", "3", "--poll-seconds", "8", "--chat-rate", "2"),
    )
    assert "partial" not in results
    samples = results["samples"]
    assert len(samples) >= 3
    last = samples[-1]
    assert last["rss_mb"] > 0 and last["fds"] > 0 and last["threads"] > 0
    assert last["rooms"] == 1 and last["participants"] >= 4 and last["consumers"] > 0
    movement = results["movement"]
    assert movement["viewer_joins"] >= 2 and movement["polls_created"] >= 1
    assert movement["stage_leaves"] >= 1 and movement["chat_sent"] >= 1
    assert results["trends"]["rss_mb"]["per_hour"] is not None
    left = results["after_everyone_left"]
    assert (left["rooms"], left["participants"], left["transports"]) == (0, 0, 0)
    assert (left["producers"], left["consumers"]) == (0, 0)
    assert not results["errors"]
