from __future__ import annotations

import json
import subprocess
import sys

from benchmarks.kernel_send import scaling


def test_scaling_reports_one_sender_against_several_at_once() -> None:
    result = scaling(size=200, processes=2, seconds=0.2)

    assert result["processes"] == 2
    assert result["single_pps"] > 0
    assert result["parallel_pps"] > 0
    expected = result["parallel_pps"] / result["single_pps"]
    assert abs(result["ratio"] - expected) < 0.01


def test_the_command_prints_the_scaling_as_json() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.kernel_send", "--size", "100", "--parallel", "2",
         "--max-seconds", "0.2"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip

    result = json.loads(done.stdout)
    assert result["processes"] == 2
    assert result["seconds"] == 0.2
