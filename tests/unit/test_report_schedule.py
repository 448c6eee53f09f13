from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfu.report_schedule import ReportSchedule, phase_of

STEP = 1 / 256  # tick gaps are multiples of this, so clock sums stay exact


@given(
    phases=st.lists(st.integers(0, 255).map(lambda n: n / 256 + STEP / 2), max_size=40),
    gaps=st.lists(st.integers(1, 300), min_size=1, max_size=80),
)
def test_each_member_is_due_once_each_time_the_clock_passes_its_phase(
    phases: list[float], gaps: list[int]
) -> None:
    members = tuple(range(len(phases)))
    schedule: ReportSchedule[int] = ReportSchedule(lambda m: phases[m], interval=1.0)
    now = 1000.0
    schedule.due(members, now)
    counts = [0] * len(members)
    expected = [0] * len(members)
    for gap in gaps:
        last, now = now, now + gap * STEP
        for member in schedule.due(members, now):
            counts[member] += 1
        for member, phase in enumerate(phases):
            crossings = math.floor(now - phase) - math.floor(last - phase)
            expected[member] += min(1, crossings)  # a long gap reports once, not many times

    assert counts == expected


def test_a_tick_handles_only_its_share() -> None:
    members = tuple(range(1000))
    schedule: ReportSchedule[int] = ReportSchedule(lambda m: phase_of(0x1000 + m))
    now = 0.0
    schedule.due(members, now)
    sizes = []
    for _ in range(64):
        now += 1 / 64
        sizes.append(len(schedule.due(members, now)))

    assert sum(sizes) == 1000
    assert max(sizes) <= 2 * 1000 / 64


def test_membership_changes_take_effect_on_the_next_tick() -> None:
    schedule: ReportSchedule[str] = ReportSchedule({"a": 0.25, "b": 0.75}.__getitem__)
    schedule.due(("a", "b"), 10.0)

    assert schedule.due(("a", "b"), 10.5) == ["a"]
    assert schedule.due(("b",), 11.0) == ["b"]
    assert schedule.due(("b",), 11.5) == []  # "a" left
    assert schedule.due(("a", "b"), 12.0) == ["b"]


def test_the_first_tick_and_a_clock_that_does_not_move_report_nothing() -> None:
    schedule: ReportSchedule[str] = ReportSchedule(lambda m: 0.5)

    assert schedule.due(("a",), 3.0) == []
    assert schedule.due(("a",), 3.0) == []
    assert schedule.due(("a",), 2.0) == []


@given(st.integers(0, 0xFFFF_FFFF))
def test_phases_are_in_the_unit_interval(identifier: int) -> None:
    assert 0.0 <= phase_of(identifier) < 1.0


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ReportSchedule(lambda m: 0.0, interval=0)
