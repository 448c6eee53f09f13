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
