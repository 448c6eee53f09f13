"""Reading the server's egress counters from its /metrics text."""

from __future__ import annotations

from benchmarks import server_metrics

BEFORE = """\
# HELP stage_sfu_rtp_packets_sent_total RTP packets sent to viewers.
# TYPE stage_sfu_rtp_packets_sent_total counter
stage_sfu_rtp_packets_sent_total{kind="audio",worker="0"} 100.0
stage_sfu_rtp_packets_sent_total{kind="video",worker="0"} 300.0
stage_sfu_rtp_packets_sent_total{kind="video",worker="1"} 600.0
# HELP stage_sfu_rtp_packets_received_total RTP packets accepted from publishers.
# TYPE stage_sfu_rtp_packets_received_total counter
stage_sfu_rtp_packets_received_total{kind="video",worker="0"} 40.0
# HELP stage_sfu_rtp_packets_dropped_total Not sent.
# TYPE stage_sfu_rtp_packets_dropped_total counter
stage_sfu_rtp_packets_dropped_total{kind="video",worker="1"} 7.0
# HELP stage_sfu_socket_packets_dropped_total Dropped at a socket.
# TYPE stage_sfu_socket_packets_dropped_total counter
stage_sfu_socket_packets_dropped_total{worker="1"} 5.0
# HELP stage_sfu_pipe_rtp_packets_total Piped between workers.
# TYPE stage_sfu_pipe_rtp_packets_total counter
stage_sfu_pipe_rtp_packets_total{direction="out",worker="0"} 50.0
stage_sfu_pipe_rtp_packets_total{direction="in",worker="1"} 50.0
"""
AFTER = (
    BEFORE.replace("} 600.0", "} 1600.0")
    .replace("} 5.0", "} 25.0")
    .replace("} 7.0", "} 37.0")
    .replace("} 40.0", "} 140.0")
    .replace('"out",worker="0"} 50.0', '"out",worker="0"} 250.0')
    .replace('"in",worker="1"} 50.0', '"in",worker="1"} 240.0')
)


def test_counters_are_summed_over_kinds_and_workers() -> None:
    first = server_metrics.egress_counters(BEFORE)
    assert first[server_metrics.SENT] == 1000.0
    last = server_metrics.egress_counters(AFTER)
    # 1000 more copies queued, 20 of them refused by the socket.
    assert server_metrics.egress_between(first, last) == 980
    assert server_metrics.ingress_between(first, last) == 100
    assert server_metrics.dropped_between(first, last) == 30
    assert server_metrics.pipe_loss_between(first, last) == (200, 10)


def test_a_server_without_pipes_or_an_unanswered_scrape_gives_none() -> None:
    plain = BEFORE.split("# HELP stage_sfu_pipe")[0]
    counters = server_metrics.egress_counters(plain)
    assert server_metrics.pipe_loss_between(counters, counters) is None
    assert server_metrics.egress_between(None, counters) is None
    assert server_metrics.egress_between(counters, counters) == 0


STALLS = """\
# HELP stage_sfu_event_loop_lag_seconds Lag.
# TYPE stage_sfu_event_loop_lag_seconds histogram
stage_sfu_event_loop_lag_seconds_bucket{le="0.001",worker="0"} {a0}
stage_sfu_event_loop_lag_seconds_bucket{le="0.005",worker="0"} {b0}
stage_sfu_event_loop_lag_seconds_bucket{le="+Inf",worker="0"} {n0}
stage_sfu_event_loop_lag_seconds_count{worker="0"} {n0}
stage_sfu_event_loop_lag_seconds_sum{worker="0"} 1.0
stage_sfu_event_loop_lag_seconds_bucket{le="0.001",worker="1"} {a1}
stage_sfu_event_loop_lag_seconds_bucket{le="0.005",worker="1"} {b1}
stage_sfu_event_loop_lag_seconds_bucket{le="+Inf",worker="1"} {n1}
stage_sfu_event_loop_lag_seconds_count{worker="1"} {n1}
stage_sfu_event_loop_lag_seconds_sum{worker="1"} 1.0
# HELP stage_sfu_gc_pause_seconds Pauses.
# TYPE stage_sfu_gc_pause_seconds histogram
stage_sfu_gc_pause_seconds_count{generation="0",worker="0"} 900.0
stage_sfu_gc_pause_seconds_sum{generation="0",worker="0"} {g0}
stage_sfu_gc_pause_seconds_count{generation="2",worker="0"} {f0}
stage_sfu_gc_pause_seconds_sum{generation="2",worker="0"} {g2}
"""


def _stalls(**values: float) -> dict[str, float]:
    text = STALLS
    for key, value in values.items():
        text = text.replace("{" + key + "}", str(value))
    return server_metrics.egress_counters(text)


def test_stalls_are_the_late_lag_probes_and_collector_pauses_in_the_window() -> None:
    first = _stalls(a0=10, b0=18, n0=20, a1=5, b1=20, n1=20, g0=0.5, f0=1, g2=0.03)
    last = _stalls(a0=80, b0=110, n0=120, a1=90, b1=118, n1=120, g0=0.6, f0=3, g2=0.09)
    stalls = server_metrics.stalls_between(first, last)
    # 200 probes in the window; 8 + 2 of them 5 ms late or more.
    assert stalls["server_loop_lag_probes"] == 200
    assert stalls["server_loop_lag_over_5ms_pct"] == 5.0
    assert stalls["server_gc_pause_ms"] == 160.0  # (0.1 + 0.06) s over all generations
    assert stalls["server_gc_full_collections"] == 2


def test_stalls_are_unknown_for_a_server_without_them() -> None:
    counters = server_metrics.egress_counters(BEFORE)
    assert set(server_metrics.stalls_between(counters, counters).values()) == {None}
