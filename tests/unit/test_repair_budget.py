"""A viewer's loss repair fits its link: a token bucket fed by what the estimate
leaves after the media, with a floor and a ceiling."""

from __future__ import annotations

import pytest

from sfu.repair_budget import RepairBudget, usefulness


def _drain(budget: RepairBudget, now: float, size: int = 1200) -> int:
    """How many packets of `size` bytes it admits at one instant."""
    admitted = 0
    while budget.admit(now):
        budget.spend(size)
        admitted += 1
        assert admitted < 10_000
    return admitted


def test_a_link_with_room_gets_repair_up_to_a_quarter_of_the_estimate() -> None:
    budget = RepairBudget()
    budget.set_rates(estimate_bps=2_000_000, media_bps=500_000)
    assert budget.rate_bps == 500_000  # the spare 1.5 Mbit/s, held to 25 %


def test_a_full_link_gets_only_the_floor() -> None:
    budget = RepairBudget()
    budget.set_rates(estimate_bps=700_000, media_bps=900_000)
    assert budget.rate_bps == 21_000


def test_a_burst_is_admitted_at_once_and_a_flood_only_at_the_rate() -> None:
    budget = RepairBudget()
    budget.set_rates(estimate_bps=960_000, media_bps=720_000)  # 240 kbit/s = 30 kB/s
    _drain(budget, 0.0)
    assert budget.refused == 1
    # One second later: about 30 kB more, i.e. 25 packets, and not 100.
    admitted = sum(_drain(budget, t / 100) for t in range(1, 101))
    assert 20 <= admitted <= 30
    assert budget.spent_bytes == pytest.approx(1200 * (admitted + 3), abs=3 * 1200)


def test_a_single_loss_is_repairable_even_on_a_full_link() -> None:
    budget = RepairBudget()
    budget.set_rates(estimate_bps=100_000, media_bps=200_000)
    assert _drain(budget, 0.0) >= 2


def test_a_retransmission_is_useful_for_longer_on_a_longer_round_trip() -> None:
    assert usefulness(0.02) < usefulness(0.3)
    assert usefulness(None) == usefulness(0.1)
