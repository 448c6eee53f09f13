"""What a simulcasting Chromium is asked for (REMB) follows its viewers' tiles: while
every tile is small its top encoding stops, and it comes back once a tile is large."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from playwright.async_api import ViewportSize

from sfu.producer import Producer
from tests.e2e.conftest import Join, Participant, now, poll
from tests.integration.helpers import member
from tests.server import RunningServer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MEDIA_TIMEOUT = 30.0
# Chromium's estimate falls to a lower REMB at once and climbs back once the REMB allows
# more (seconds, on an idle machine); a loaded machine adds to both.
CHANGE_TIMEOUT = 60.0
SMALL = ViewportSize(width=320, height=240)
LARGE = ViewportSize(width=1280, height=800)
TOP = 2  # the 720p camera goes out as three encodings


def _video_producer(server: RunningServer, participant_id: str) -> Producer:
    return next(p for p in member(server, participant_id).producers.values() if p.kind == "video")


async def _encoding(publisher: Participant, rid: str) -> dict[str, Any]:
    """One of the publisher's encodings as its own stats report it (bytesSent, size...)."""
    encodings: list[dict[str, Any]] = await publisher.page.evaluate("window.stagePublishStats()")
    return next((e for e in encodings if e["rid"] == rid), {"rid": rid, "bytesSent": 0})


class Growth:
    """Whether a counter grew over the last second of probes."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int]] = []

    def add(self, at: float, value: int) -> None:
        self.samples.append((at, value))

    def over_last_second(self) -> int | None:
        """How much it grew over at least the last second (None: probed for less)."""
        at, value = self.samples[-1]
        earlier = [v for t, v in self.samples if at - t >= 1.0]
        return value - earlier[-1] if earlier else None


@pytest.mark.timeout(240)
async def test_the_top_encoding_stops_while_every_tile_is_small_and_returns_for_a_large_one(
    join: Join, server: RunningServer
) -> None:
    ceiling = server.settings.media.publisher_max_bitrate
    publisher = await join("erin", "stage")
    viewer = await join("frank", "viewer", viewport={"width": 1280, "height": 800})
    producer = _video_producer(server, await publisher.participant_id())
    top = producer.streams[TOP]
    assert producer.simulcast and len(producer.streams) == TOP + 1

    await poll(
        lambda: now(lambda: (top.bitrate, producer.requested_bitrate)),
        lambda state: state[0] > 0 and state[1] == ceiling,
        timeout=MEDIA_TIMEOUT,
        what="the large tile's viewer: the top encoding sent, the publisher asked for the ceiling",
        describe=publisher.describe,
    )
    usual = await poll(
        lambda: now(lambda: top.bitrate),
        lambda bps: bps >= 300_000,
        timeout=MEDIA_TIMEOUT,
        what="the top encoding at its usual rate",
    )

    await viewer.page.set_viewport_size(SMALL)
    low = await poll(
        lambda: now(lambda: producer.requested_bitrate),
        lambda bps: 0 < bps < ceiling,
        timeout=CHANGE_TIMEOUT,
        what="the publisher asked for less once the only tile is small",
    )
    await poll(
        lambda: now(lambda: (producer.active_layers(), top.bitrate)),
        lambda state: TOP not in state[0] or state[1] < usual / 3,
        timeout=CHANGE_TIMEOUT,
        what=f"the top encoding stopped or well below its usual {usual} bit/s (asked {low})",
        describe=publisher.describe,
    )
    assert producer.requested_bitrate < ceiling  # asked for less all along

    # The browser says so too: its top encoding sends next to nothing now.
    sent = Growth()
    loop_time = asyncio.get_running_loop().time

    async def top_growth() -> int | None:
        sent.add(loop_time(), (await _encoding(publisher, "f"))["bytesSent"])
        return sent.over_last_second()

    await poll(
        top_growth,
        lambda grown: grown is not None and grown * 8 < usual / 3,
        timeout=CHANGE_TIMEOUT,
        what="the publisher's own stats: the top encoding sending well below its usual rate",
        describe=publisher.describe,
    )

    raises = producer.remb_raises
    await viewer.page.set_viewport_size(LARGE)
    await poll(
        lambda: now(lambda: producer.requested_bitrate),
        lambda bps: bps == ceiling,
        timeout=MEDIA_TIMEOUT,
        what="the publisher asked for the ceiling once the tile is large",
    )
    assert producer.remb_raises > raises  # at the change, not at the next report
    await poll(
        lambda: now(lambda: (producer.active_layers(), top.bitrate)),
        lambda state: TOP in state[0] and state[1] >= usual / 2,
        timeout=CHANGE_TIMEOUT,
        what="the top encoding back near its usual rate",
        describe=publisher.describe,
    )
    width = (await _encoding(publisher, "f"))["width"]
    await viewer.wait_for_stats(
        lambda s: s["width"] == width,
        timeout=CHANGE_TIMEOUT,
        what=f"the large tile decoding the top encoding again ({width} wide)",
    )
