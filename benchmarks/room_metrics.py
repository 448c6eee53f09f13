"""What the big-room scenario reads from the server's /metrics, per media worker.

Each scrape becomes `{worker: {key: value}}` (worker "" for a single-process server,
otherwise the front's `worker` label). Differences of two scrapes give, for the worker
that holds the room (the one counting the most participants):

* its event-loop stalls in between, from `stage_sfu_event_loop_stall_seconds` (a 5 ms
  sleep's wake-up delay, every 5 ms) and `stage_sfu_event_loop_stall_max_seconds` (the
  longest since start): how many wake-ups were more than 5 ms late, and the longest
  delay, exact when the worker's record rose in between (the new record), otherwise the
  upper edge of the highest histogram bucket that grew (`longest_exact` false). A delay
  is a stall's length less at most 5 ms;
* the server's own time to admit a join (`stage_sfu_join_duration_seconds`, kind
  `join`): mean over the joins in between;
* the messages it sent to clients (`stage_sfu_signaling_messages_total`, out);
* its cycle-collector pauses (`stage_sfu_gc_pause_seconds`), which stall the loop too.
"""

from __future__ import annotations

import math
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

STALL = "stage_sfu_event_loop_stall_seconds"
STALL_MAX = "stage_sfu_event_loop_stall_max_seconds"
JOIN = "stage_sfu_join_duration_seconds"
MESSAGES = "stage_sfu_signaling_messages_total"
PARTICIPANTS = "stage_sfu_participants"
GC = "stage_sfu_gc_pause_seconds"
OVER = 0.005  # the goal: no stall over 5 ms

Scrape = dict[str, dict[str, float]]


def parse(text: str) -> Scrape:
    """The samples the scenario uses, by worker."""
    out: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels = sample.name, sample.labels
            key = None
            if name == f"{STALL}_count":
                key = "stall_count"
            elif name == f"{STALL}_bucket":
                key = f"stall_le:{labels.get('le')}"
            elif name == STALL_MAX:
                key = "stall_max"
            elif name in (f"{JOIN}_sum", f"{JOIN}_count") and labels.get("kind") == "join":
                key = "join_" + name.rsplit("_", 1)[1]
            elif name == MESSAGES and labels.get("direction") == "out":
                key = "messages_out"
            elif name == PARTICIPANTS:
                key = "participants"
            elif name == f"{GC}_sum":
                key = "gc_sum"
            if key is not None:
                values = out.setdefault(labels.get("worker", ""), {})
                values[key] = values.get(key, 0.0) + sample.value
    return out


def home(scrape: Scrape) -> str:
    """The worker holding the room: the one with the most participants."""
    workers = {w: v for w, v in scrape.items() if w != "front"} or scrape
    return max(workers, key=lambda w: workers[w].get("participants", 0.0), default="")


def _delta(first: Scrape, last: Scrape, worker: str, key: str) -> float | None:
    a, b = first.get(worker, {}), last.get(worker, {})
    if key not in a or key not in b:
        return None
    return b[key] - a[key]


def stalls_between(first: Scrape, last: Scrape, worker: str) -> dict[str, Any]:
    """The worker's event-loop stalls between two scrapes (None where not exported)."""
    probes = _delta(first, last, worker, "stall_count")
    within = _delta(first, last, worker, f"stall_le:{OVER}")
    if probes is None or within is None:
        return {"probes": None, "over_5ms": None, "longest_ms": None, "longest_exact": None}
    before = first[worker].get("stall_max", 0.0)
    after = last[worker].get("stall_max", 0.0)
    if after > before:
        longest, exact = after, True
    else:
        longest, exact = 0.0, False
        bounds = sorted(
            (float(k.split(":", 1)[1]), k)
            for k in last[worker]
            if k.startswith("stall_le:") and k != "stall_le:+Inf"
        )
        below = 0.0
        for bound, key in bounds:
            grew = _delta(first, last, worker, key) or 0.0
            if grew < probes:  # some wake-up in between was later than `bound`
                below = bound
        # The highest bound some wake-up exceeded: the longest is under the next one
        # (and never above the record so far).
        above = [b for b, _ in bounds if b > below]
        longest = min(above[0] if above else math.inf, before) if probes else 0.0
    return {
        "probes": round(probes),
        "over_5ms": round(probes - within),
        "longest_ms": round(longest * 1000, 2),
        "longest_exact": exact,
    }


def join_mean_ms(first: Scrape, last: Scrape, worker: str) -> float | None:
    """The server's mean time to admit a join between two scrapes."""
    count = _delta(first, last, worker, "join_count")
    total = _delta(first, last, worker, "join_sum")
    if not count or total is None:
        return None
    return round(total / count * 1000, 3)


def gc_pause_ms(first: Scrape, last: Scrape, worker: str) -> float | None:
    """Time the worker spent in CPython's cycle collector between two scrapes."""
    paused = _delta(first, last, worker, "gc_sum")
    return None if paused is None else round(paused * 1000, 1)


def messages_out(first: Scrape, last: Scrape, worker: str) -> int | None:
    sent = _delta(first, last, worker, "messages_out")
    return None if sent is None else round(sent)
