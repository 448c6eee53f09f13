"""Probing: when to send a cluster, how high, and what its feedback says the link
carries."""

from __future__ import annotations

import itertools

from sfu.bwe.estimator import BandwidthEstimator
from sfu.bwe.probe import CLUSTER_SECONDS, Cluster, ProbeController, ProbeEvaluator
from sfu.bwe.results import PacketResult

PACKET = 1000  # bytes


def _cluster_results(
    *, send_bps: float, arrive_bps: float, packets: int = 40, lost: int = 0
) -> list[PacketResult]:
    """`packets` sent evenly at `send_bps` from t=10, arriving at `arrive_bps` (a link
    slower than the sending queues them); every `packets // lost`-th one lost."""
    gap_send = PACKET * 8 / send_bps
    gap_arrive = PACKET * 8 / arrive_bps
    results = []
    for i in range(packets):
        dropped = lost and i % (packets // lost) == 1
        results.append(
            PacketResult(
                sequence=i,
                send_time=10 + i * gap_send,
                size=PACKET,
                arrival_time=None if dropped else 50 + i * max(gap_send, gap_arrive),
            )
        )
    return results


def _evaluate(results: list[PacketResult]) -> int | None:
    end = max(r.send_time for r in results)
    evaluator = ProbeEvaluator(Cluster(start=10, end=end, target_bps=2_000_000))
    evaluator.add(results)
    return evaluator.rate_bps()


def test_a_cluster_that_arrives_as_sent_measures_its_rate() -> None:
    rate = _evaluate(_cluster_results(send_bps=1_200_000, arrive_bps=5_000_000))
    assert rate is not None and abs(rate - 1_200_000) < 1_200_000 * 0.03


def test_a_cluster_queued_by_a_slower_link_is_not_taken_for_its_send_rate() -> None:
    # Sent at 2 Mbit/s through 1.8: arrives at 90 %, so the link carries about 1.8.
    rate = _evaluate(_cluster_results(send_bps=2_000_000, arrive_bps=1_800_000))
    assert rate is not None and abs(rate - 1_800_000) < 1_800_000 * 0.03
    # Through 1 Mbit/s: the link is full, and carries 1 Mbit/s; a little under it.
    rate = _evaluate(_cluster_results(send_bps=2_000_000, arrive_bps=1_000_000))
    assert rate is not None and abs(rate - 950_000) < 950_000 * 0.03


def test_a_cluster_with_loss_or_too_few_packets_says_nothing() -> None:
    assert _evaluate(_cluster_results(send_bps=1e6, arrive_bps=5e6, lost=8)) is None
    assert _evaluate(_cluster_results(send_bps=1e6, arrive_bps=5e6, packets=6)) is None


def test_its_verdict_waits_for_feedback_past_the_cluster_or_a_timeout() -> None:
    evaluator = ProbeEvaluator(Cluster(start=10, end=10.25, target_bps=1_000_000))
    evaluator.add(_cluster_results(send_bps=1e6, arrive_bps=5e6, packets=20))
    assert not evaluator.complete(10.4)
    evaluator.add([PacketResult(sequence=99, send_time=10.3, size=PACKET, arrival_time=60.0)])
    assert evaluator.complete(10.4)
    assert ProbeEvaluator(Cluster(start=10, end=10.25, target_bps=1)).complete(12.0)


def test_probes_go_only_while_the_viewer_wants_more_and_back_off_when_they_fail() -> None:
    controller = ProbeController()
    assert controller.next_cluster(0.0, estimate_bps=500_000, wanted_bps=400_000) is None
    cluster = controller.next_cluster(0.0, estimate_bps=500_000, wanted_bps=3_000_000)
    assert cluster is not None
    assert cluster.target_bps == 1_500_000  # at start, at most 3 times the estimate
    assert cluster.end - cluster.start == CLUSTER_SECONDS
    assert controller.next_cluster(0.05, 500_000, 3_000_000) is None  # awaiting its verdict
    controller.on_result(1.0, succeeded=True)
    cluster = controller.next_cluster(2.0, estimate_bps=1_500_000, wanted_bps=9_000_000)
    assert cluster is not None and cluster.target_bps == 4_500_000  # still 3x
    controller.on_result(2.5, succeeded=False)
    cluster = controller.next_cluster(4.5, estimate_bps=1_500_000, wanted_bps=9_000_000)
    assert cluster is not None and cluster.target_bps == 2_250_000  # once one failed, 1.5x

    starts = []
    now = 6.0
    controller.on_result(now, succeeded=False)
    while now < 40:
        now += 0.1
        if controller.next_cluster(now, 500_000, 3_000_000) is not None:
            starts.append(now)
            controller.on_result(now + 1.75, succeeded=False)
    gaps = [round(b - a, 1) for a, b in itertools.pairwise(starts)]
    assert gaps == sorted(gaps) and gaps[-1] < 10.5  # 2, 4, 8, 8 ... s after each verdict
    assert controller.probes == len(starts) + 3


def test_a_probe_result_lifts_the_estimate_at_once_and_never_lowers_it() -> None:
    estimator = BandwidthEstimator(initial_bps=300_000)
    estimator.on_probe_result(900_000)
    assert estimator.estimate_bps == 900_000
    estimator.on_probe_result(400_000)
    assert estimator.estimate_bps == 900_000
