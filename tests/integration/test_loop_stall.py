"""A blocked event loop shows in /metrics as a stall of about the time it was blocked."""

from __future__ import annotations

import asyncio
import time

from tests.integration.test_metrics import scrape, scrape_until, value
from tests.server import RunningServer

STALL = "stage_sfu_event_loop_stall_seconds"
LONGEST = "stage_sfu_event_loop_stall_max_seconds"


async def test_a_blocked_loop_is_observed_as_a_stall_of_its_length(
    server: RunningServer,
) -> None:
    # The probe is running: it has woken up a few times (every 5 ms).
    before = await scrape_until(server, lambda s: value(s, f"{STALL}_count") >= 3)
    over_25ms = value(before, f"{STALL}_count") - value(before, f"{STALL}_bucket", le="0.025")
    time.sleep(0.08)  # noqa: ASYNC251 - blocking the loop is the point
    await asyncio.sleep(0.02)  # the probe wakes (late) and records it
    after = await scrape(server)
    longest = value(after, LONGEST)
    assert 0.07 <= longest < 1.0, longest
    assert value(after, f"{STALL}_count") - value(after, f"{STALL}_bucket", le="0.025") >= (
        over_25ms + 1
    )
