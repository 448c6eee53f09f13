"""Worker-count comparisons and the printed table, from made-up runs."""

from __future__ import annotations

from typing import Any

from benchmarks import report


def _run(viewers: int, workers: int, egress_pps: float, *, kept_up: bool = True) -> dict[str, Any]:
    return {
        "scenario": "stage-av",
        "target": "sfu",
        "params": {"viewers": viewers, "rooms": 2, "workers": workers, "viewer_processes": 1},
        "rooms": 2,
        "workers": workers,
        "thin_viewers": 8,
        "egress_pps": egress_pps,
        "egress_ratio": None,
        "server_kept_up": kept_up,
        "server_processes": [
            {"pid": 1, "role": "front" if workers > 1 else "server", "cpu_util": 0.01},
            *(
                {"pid": 10 + i, "role": f"worker{i}", "cpu_util": 0.5}
                for i in range(workers if workers > 1 else 0)
            ),
        ],
    }


def test_each_point_gets_its_egress_ratio_against_one_worker() -> None:
    runs = [_run(10, 1, 1000.0), _run(10, 2, 1500.0), _run(20, 1, 1800.0), _run(20, 2, 3600.0)]
    comparisons = report.compare_workers(runs)
    assert [r["egress_ratio"] for r in runs] == [1.0, 1.5, 1.0, 2.0]
    assert [c["viewers"] for c in comparisons] == [10, 20]
    assert comparisons[1]["runs"][1]["worker_cpu_util"] == [0.5, 0.5]
    assert comparisons[1]["runs"][0]["worker_cpu_util"] == [0.01]


def test_sustained_capacity_counts_only_runs_the_server_kept_up_with() -> None:
    runs = [
        _run(10, 1, 1000.0),
        _run(20, 1, 300.0, kept_up=False),  # overloaded: collapsed, not a ceiling
        _run(10, 2, 1000.0),
        _run(20, 2, 1900.0),
    ]
    (capacity,) = report.worker_capacity(runs)
    one, two = capacity["by_workers"]["1"], capacity["by_workers"]["2"]
    assert one["sustained"]["egress_pps"] == 1000.0 and one["highest_viewers_run"] == 20
    assert two["sustained"]["ratio"] == 1.9 and two["sustained"]["viewers"] == 20
    # The peak is the highest run whatever happened in it: here the same.
    assert one["peak"]["egress_pps"] == 1000.0 and two["peak"]["ratio"] == 1.9
    runs.append(_run(30, 1, 1200.0, kept_up=False))  # saturated, not collapsed
    (with_peak,) = report.worker_capacity(runs)
    assert with_peak["by_workers"]["1"]["peak"]["egress_pps"] == 1200.0
    assert with_peak["by_workers"]["2"]["peak"]["ratio"] == round(1900 / 1200, 3)
    assert with_peak["by_workers"]["1"]["sustained"]["egress_pps"] == 1000.0


def test_a_single_worker_count_is_no_comparison() -> None:
    runs = [_run(10, 2, 1000.0), _run(20, 2, 2000.0)]
    assert report.compare_workers(runs) == []
    assert report.worker_capacity(runs) == []
    assert runs[0]["egress_ratio"] is None


def test_the_table_shows_rooms_workers_and_thin_only_when_used() -> None:
    runs = [_run(10, 1, 1000.0), _run(10, 2, 1500.0)]
    report.compare_workers(runs)
    header, first, second = report.table(runs).splitlines()
    for title in ("rooms", "workers", "thin", "egress x", "worker cpu %", "kept up"):
        assert title in header
    assert "1/8" in first and "50/50" in second
    plain = {**runs[0], "rooms": 1, "thin_viewers": 0, "egress_ratio": None, "workers": None}
    plain.pop("server_kept_up")
    header = report.table([plain]).splitlines()[0]
    for title in ("rooms", "workers", "thin", "egress x", "kept up"):
        assert title not in header.split("  ")
