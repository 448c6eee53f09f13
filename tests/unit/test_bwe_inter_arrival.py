from __future__ import annotations

import pytest

from sfu.bwe.inter_arrival import GroupDelta, InterArrival


def _feed(
    inter: InterArrival, packets: list[tuple[float, float]], now: float = 0.0
) -> list[GroupDelta]:
    out = []
    for send, arrival in packets:
        delta = inter.add(send, arrival, now)
        if delta is not None:
            out.append(delta)
    return out


def test_packets_sent_within_5_ms_form_one_group() -> None:
    inter = InterArrival()
    packets = [
        (0.000, 10.000),
        (0.002, 10.003),
        (0.004, 10.006),  # group 1 ends here
        (0.010, 10.012),
        (0.014, 10.016),  # group 2
        (0.020, 10.030),  # starts group 3: group 2 is compared with group 1
    ]
    (delta,) = _feed(inter, packets)
    assert delta.send_delta == pytest.approx(0.010)
    assert delta.arrival_delta == pytest.approx(0.010)
    assert delta.arrival_time == pytest.approx(10.016)


def test_the_first_group_yields_nothing() -> None:
    inter = InterArrival()
    assert _feed(inter, [(0.0, 1.0), (0.01, 1.01)]) == []


def test_a_growing_queue_shows_as_arrival_delta_above_send_delta() -> None:
    inter = InterArrival()
    packets = [(i * 0.01, 5.0 + i * 0.012) for i in range(5)]
    deltas = _feed(inter, packets)
    assert len(deltas) == 3
    for delta in deltas:
        assert delta.arrival_delta - delta.send_delta == pytest.approx(0.002)


def test_a_queued_burst_joins_the_group_whatever_its_send_time() -> None:
    # Sent 8 ms after the group's first packet, but released from a queue 1 ms
    # after it: sooner than it was sent after it, so it belongs to the burst.
    inter = InterArrival()
    packets = [(0.000, 1.000), (0.008, 1.001), (0.030, 1.040), (0.060, 1.070)]
    (delta,) = _feed(inter, packets)
    assert delta.send_delta == pytest.approx(0.022)  # 0.030 - 0.008: one group before
    assert delta.arrival_delta == pytest.approx(0.039)


def test_a_packet_sent_before_the_current_group_is_skipped() -> None:
    inter = InterArrival()
    packets = [(0.00, 1.00), (0.02, 1.02), (0.01, 1.025), (0.04, 1.04)]
    (delta,) = _feed(inter, packets)
    assert delta.send_delta == pytest.approx(0.02)
    assert delta.arrival_delta == pytest.approx(0.02)


def test_a_jump_of_the_viewer_clock_starts_over() -> None:
    inter = InterArrival()
    _feed(inter, [(0.00, 1.00), (0.01, 1.01)], now=0.1)
    assert inter.add(0.02, 6.02, 0.12) is not None  # compares the first two groups
    # The group at 6.02 moved 5 s from the one before while our clock moved 20 ms.
    assert inter.add(0.03, 6.03, 0.13) is None
    assert inter.add(0.04, 6.04, 0.14) is None  # the first group after the reset ends
    delta = inter.add(0.05, 6.05, 0.15)
    assert delta is not None
    assert delta.arrival_delta == pytest.approx(0.01)


def test_a_group_completing_before_the_previous_one_is_not_compared() -> None:
    inter = InterArrival()
    # The first group's second packet came 200 ms late; the next group, 150 ms after
    # its first packet (too late for a burst), completes before it.
    _feed(inter, [(0.000, 1.000), (0.003, 1.200), (0.010, 1.150)])
    assert inter.add(0.020, 1.160, 0.0) is None
    delta = inter.add(0.030, 1.170, 0.0)
    assert delta is not None
    assert delta.send_delta == pytest.approx(0.010)
    assert delta.arrival_delta == pytest.approx(0.010)


def test_a_packet_arriving_before_its_group_was_complete_joins_it() -> None:
    inter = InterArrival()
    packets = [(0.00, 1.00), (0.01, 1.01), (0.02, 1.005), (0.03, 1.03), (0.04, 1.04)]
    deltas = _feed(inter, packets)
    # 0.02 arrived 5 ms before 0.01: it was held with it, so they make one group.
    assert [(round(d.send_delta, 3), round(d.arrival_delta, 3)) for d in deltas] == [
        (0.02, 0.01),
        (0.01, 0.02),
    ]


def test_reset_forgets_the_groups() -> None:
    inter = InterArrival()
    _feed(inter, [(0.00, 1.00), (0.01, 1.01)])
    inter.reset()
    assert inter.add(0.02, 1.02, 0.0) is None
    assert inter.add(0.03, 1.03, 0.0) is None
    assert inter.add(0.04, 1.04, 0.0) is not None
