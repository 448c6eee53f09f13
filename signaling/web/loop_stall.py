"""Event-loop stalls: how long the worker's loop was blocked, to within a few milliseconds.

`stage_sfu_event_loop_lag_seconds` samples one 0.25 s sleep at a time, so a stall that
ends before that sleep is due goes unseen: a 20 ms stall shows with a chance of about
one in twelve. This probe sleeps `STALL_INTERVAL` (5 ms) at a time, so every stall
longer than that delays one of its wake-ups, by the stall's length minus at most the
interval. Two metrics come of it: `stage_sfu_event_loop_stall_seconds`, every wake-up's
delay (a histogram, so the stalls over a threshold in any window are the difference of
two scrapes), and `stage_sfu_event_loop_stall_max_seconds`, the longest delay since the
worker started. About 200 wake-ups a second cost the loop a fraction of a percent.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge, Histogram

__all__ = ["STALL_BUCKETS", "STALL_INTERVAL", "stall_recorder"]

STALL_INTERVAL = 0.005
STALL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def stall_recorder(registry: CollectorRegistry) -> Callable[[float], None]:
    """Register the two stall metrics in `registry`; returns what observes one delay."""
    histogram = Histogram(
        "stage_sfu_event_loop_stall_seconds",
        f"How late the event loop woke a {STALL_INTERVAL} s sleep, every such sleep "
        "(a stall of the loop delays a wake-up by its length less at most the sleep).",
        buckets=STALL_BUCKETS,
        registry=registry,
    )
    longest = [0.0]
    gauge = Gauge(
        "stage_sfu_event_loop_stall_max_seconds",
        f"The longest delay of a {STALL_INTERVAL} s sleep since this worker started "
        "(its longest event-loop stall, less at most the sleep).",
        registry=registry,
    )
    gauge.set_function(lambda: longest[0])

    def observe(seconds: float) -> None:
        histogram.observe(seconds)
        if seconds > longest[0]:
            longest[0] = seconds

    return observe
