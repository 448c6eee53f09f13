"""The bad-viewers report: the server's counters by short name, window deltas, the
comparison of the two variants."""

from __future__ import annotations

import pytest

from benchmarks import bad_viewers, server_metrics

TEXT = """\
# HELP stage_sfu_nacks_received_total NACKs from viewers.
# TYPE stage_sfu_nacks_received_total counter
stage_sfu_nacks_received_total{kind="video",worker="0"} 30.0
stage_sfu_nacks_received_total{kind="video",worker="1"} 12.0
# HELP stage_sfu_key_frame_requests_received_total PLI/FIR from viewers.
# TYPE stage_sfu_key_frame_requests_received_total counter
stage_sfu_key_frame_requests_received_total 9.0
# HELP stage_sfu_key_frame_requests_sent_total PLIs sent to publishers.
# TYPE stage_sfu_key_frame_requests_sent_total counter
stage_sfu_key_frame_requests_sent_total 3.0
# HELP stage_sfu_rtp_packets_lost_total Lost.
# TYPE stage_sfu_rtp_packets_lost_total counter
stage_sfu_rtp_packets_lost_total{direction="in",kind="video"} 4.0
stage_sfu_rtp_packets_lost_total{direction="out",kind="video"} 70.0
stage_sfu_rtp_packets_lost_total{direction="out",kind="audio"} 5.0
# HELP stage_sfu_consumers Forwarded copies.
# TYPE stage_sfu_consumers gauge
stage_sfu_consumers{kind="audio"} 21.0
stage_sfu_consumers{kind="video"} 21.0
"""


def test_totals_sum_each_name_over_its_labels_and_leave_out_absent_names() -> None:
    totals = server_metrics.totals(
        TEXT, ["stage_sfu_nacks_received_total", "stage_sfu_consumers", "stage_sfu_nope"]
    )
    assert totals == {"stage_sfu_nacks_received_total": 42.0, "stage_sfu_consumers": 42.0}


def test_by_label_sums_per_value_of_one_label() -> None:
    lost = server_metrics.by_label(TEXT, "stage_sfu_rtp_packets_lost_total", "direction")
    assert lost == {"in": 4.0, "out": 75.0}


def test_counters_have_every_short_name_with_absent_ones_at_zero() -> None:
    values = bad_viewers.counters(TEXT)
    assert values["nacks_received"] == 42.0
    assert values["key_frame_requests_received"] == 9.0
    assert values["key_frame_requests_relayed"] == 3.0
    assert values["viewer_reported_lost"] == 75.0
    assert values["consumers"] == 42.0
    assert values["retransmissions_sent"] == 0.0
    assert set(values) == {
        *bad_viewers.COUNTERS.values(),
        *bad_viewers.GAUGES.values(),
        bad_viewers.LOST_OUT,
    }


def test_window_deltas_give_increases_per_second_and_gauges_at_the_end() -> None:
    first = bad_viewers.counters(TEXT)
    last = first | {"nacks_received": 102.0, "consumers": 44.0}
    deltas = bad_viewers.window_deltas(first, last, 20.0)
    assert deltas["nacks_received"] == {"total": 60, "per_s": 3.0}
    assert deltas["rtp_sent"] == {"total": 0, "per_s": 0.0}
    assert deltas["consumers"] == {"total": 44.0, "per_s": None}


def _run(variant: str, p99: float, nacks_per_s: float) -> dict[str, object]:
    window = {short: {"total": 0, "per_s": 0.0} for short in bad_viewers.COUNTERS.values()}
    window[bad_viewers.LOST_OUT] = {"total": 0, "per_s": 0.0}
    window["nacks_received"] = {"total": 0, "per_s": nacks_per_s}
    return {
        "variant": variant,
        "loss_pct": 0.0,
        "latency_p50_ms": 0.5,
        "latency_p99_ms": p99,
        "bot_latency_p99_ms": None,
        "video_fps": 30.0,
        "server_window": window,
    }


def test_the_comparison_averages_each_variant_and_takes_bad_minus_baseline() -> None:
    runs = [
        _run("baseline", 2.0, 0.0),
        _run("bad", 3.0, 60.0),
        _run("baseline", 4.0, 0.0),
        _run("bad", 5.0, 50.0),
    ]
    comparison = bad_viewers.compare(runs)
    assert comparison["baseline"]["latency_p99_ms"] == {"values": [2.0, 4.0], "mean": 3.0}
    assert comparison["bad"]["latency_p99_ms"]["mean"] == 4.0
    assert comparison["bad"]["bot_latency_p99_ms"] == {"values": [None, None], "mean": None}
    assert comparison["server_per_s"]["nacks_received"] == {
        "baseline": 0.0,
        "bad": 55.0,
        "difference": 55.0,
    }
    table = bad_viewers.tables(runs, comparison)
    assert "nacks_received" in table and "55.00" in table


def test_a_missing_variant_has_no_difference() -> None:
    comparison = bad_viewers.compare([_run("baseline", 2.0, 0.0)])
    assert comparison["bad"]["latency_p99_ms"]["mean"] is None
    assert comparison["server_per_s"]["nacks_received"]["difference"] is None
    assert comparison["baseline"]["latency_p99_ms"]["mean"] == pytest.approx(2.0)
