"""Plain-number histograms, JSON log lines and the event-loop lag probe."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import pytest

from signaling.logs import JsonFormatter
from signaling.stats import Buckets, SignalingStats
from signaling.web.metrics import watch_loop_lag


def test_buckets_are_cumulative_and_end_with_inf() -> None:
    buckets = Buckets((0.1, 0.5, 1.0))
    for value in (0.05, 0.1, 0.3, 0.7, 4.0):
        buckets.observe(value)
    assert buckets.cumulative() == [("0.1", 2), ("0.5", 3), ("1.0", 4), ("+Inf", 5)]
    assert buckets.count == 5
    assert buckets.total == pytest.approx(5.15)


@pytest.mark.parametrize("bounds", [(1.0, 0.5), (0.5, 0.5)])
def test_bucket_bounds_must_increase(bounds: tuple[float, ...]) -> None:
    with pytest.raises(ValueError):
        Buckets(bounds)


def test_join_latency_is_kept_per_kind() -> None:
    stats = SignalingStats()
    stats.joined("join", 0.02)
    stats.joined("join", 0.2)
    stats.joined("resume", 0.01)
    assert (stats.joins["join"].count, stats.joins["resume"].count) == (2, 1)


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "signaling.room", logging.INFO, __file__, 1, "room=%s participant=%s - left",
        ("r1", "p1"), None,
    )  # fmt: skip
    record.__dict__.update(extra)
    return record


def test_json_line_has_time_level_logger_message_and_the_ids() -> None:
    line = JsonFormatter().format(_record(room="r1", participant="p1"))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "signaling.room"
    assert entry["message"] == "room=r1 participant=p1 - left"  # %-style args applied
    assert (entry["room"], entry["participant"]) == ("r1", "p1")
    assert entry["time"].endswith("Z") and "T" in entry["time"]


def test_json_line_leaves_out_ids_it_does_not_have() -> None:
    entry = json.loads(JsonFormatter().format(_record(room="r1", participant=None)))
    assert entry["room"] == "r1" and "participant" not in entry
    assert "room" not in json.loads(JsonFormatter().format(_record()))


def test_json_line_keeps_a_traceback_on_one_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = _record(room="r1")
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "RuntimeError: boom" in json.loads(line)["exception"]


class SteppingClock:
    """Each read moves time on by the next step: how late each sleep "woke"."""

    def __init__(self, steps: list[float]) -> None:
        self._steps = steps
        self._now = 0.0

    def now(self) -> float:
        value = self._now
        if self._steps:
            self._now += self._steps.pop(0)
        return value

    def wall(self) -> float:
        return self._now


async def test_loop_lag_is_the_overshoot_of_each_sleep() -> None:
    clock = SteppingClock([0.01, 0.0, 0.16, 0.0, 0.005])
    lags: list[float] = []
    done = asyncio.Event()

    def observe(lag: float) -> None:
        lags.append(lag)
        if len(lags) == 3:
            done.set()

    probe = asyncio.get_running_loop().create_task(watch_loop_lag(clock, observe, 0.01))
    try:
        async with asyncio.timeout(5):
            await done.wait()
    finally:
        probe.cancel()
    assert lags == pytest.approx([0.0, 0.15, 0.0])  # never negative
