"""Simulcast from a real browser: Chromium publishes its camera as several encodings,
and each viewer gets the one its tile calls for, switching as the tile changes size."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import ViewportSize

from sfu.consumer import Consumer
from sfu.producer import Producer
from tests.e2e.conftest import Join, Participant, now, poll
from tests.integration.helpers import member
from tests.server import RunningServer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MEDIA_TIMEOUT = 30.0
SWITCH_TIMEOUT = 15.0
SMALL = ViewportSize(width=320, height=240)
LARGE = ViewportSize(width=1280, height=800)
# What the page sees when its tab goes to the background and comes back.
_SET_VISIBILITY = """(state) => {
  Object.defineProperty(document, "visibilityState", { value: state, configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


async def _encodings(publisher: Participant) -> list[dict[str, Any]]:
    encodings: list[dict[str, Any]] = await publisher.page.evaluate("window.stagePublishStats()")
    return encodings


def _video_producer(server: RunningServer, participant_id: str) -> Producer:
    return next(p for p in member(server, participant_id).producers.values() if p.kind == "video")


def _video_consumer(server: RunningServer, participant_id: str) -> Consumer:
    consumers = member(server, participant_id).consumers.values()
    consumer = next(c for c in consumers if getattr(c, "kind", "") == "video")
    assert isinstance(consumer, Consumer)
    return consumer


@pytest.mark.timeout(120)
async def test_a_viewer_gets_the_encoding_its_tile_needs_and_switches_as_it_resizes(
    join: Join, server: RunningServer
) -> None:
    publisher = await join("alice", "stage")
    viewer = await join("bob", "viewer", viewport={"width": 1280, "height": 800})
    publisher_id, viewer_id = await publisher.participant_id(), await viewer.participant_id()

    sending = await poll(
        lambda: _encodings(publisher),
        lambda encodings: sum(1 for e in encodings if e["bytesSent"] > 0) >= 2,
        timeout=MEDIA_TIMEOUT,
        what="the publisher sending at least two simulcast encodings",
        describe=publisher.describe,
    )
    assert {e["rid"] for e in sending} <= {"q", "h", "f"}, sending
    producer = _video_producer(server, publisher_id)
    assert producer.simulcast and len(producer.streams) == 3
    await poll(
        lambda: now(lambda: [s.height for s in producer.streams]),
        lambda heights: sum(1 for h in heights if h) >= 2,
        timeout=MEDIA_TIMEOUT,
        what="the server learning each encoding's size from its key frames",
    )

    consumer = _video_consumer(server, viewer_id)

    def on_top() -> bool:
        """The consumer forwards the highest encoding the publisher sends, of known size."""
        active = producer.active_layers()
        layer = consumer.layer
        return bool(active) and layer == active[-1] and producer.streams[layer].width > 0

    await poll(
        lambda: now(on_top),
        bool,
        timeout=SWITCH_TIMEOUT,
        what="the large tile on the highest encoding the publisher sends",
    )
    top = consumer.layer
    top_width = producer.streams[top].width
    await viewer.wait_for_stats(
        lambda s: s["framesDecoded"] > 0 and s["width"] == top_width,
        timeout=MEDIA_TIMEOUT,
        what=f"the large viewer decoding the top encoding ({top_width} wide)",
    )

    await viewer.page.set_viewport_size(SMALL)
    small = await poll(
        lambda: now(lambda: consumer.layer),
        lambda layer: layer < top,
        timeout=SWITCH_TIMEOUT,
        what="the small tile moved to a lower encoding",
    )
    frames = (await viewer.stats())["framesDecoded"]
    narrow = await viewer.wait_for_stats(
        lambda s: 0 < s["width"] < top_width and s["framesDecoded"] > frames + 15,
        timeout=SWITCH_TIMEOUT,
        what=f"the viewer decoding the smaller encoding (layer {small}) and still playing",
    )

    await viewer.page.set_viewport_size(LARGE)
    await poll(
        lambda: now(lambda: consumer.layer > small and on_top()),
        bool,
        timeout=SWITCH_TIMEOUT,
        what="the tile back on the highest encoding once large again",
    )
    top_width = producer.streams[consumer.layer].width
    frames = narrow["framesDecoded"]
    await viewer.wait_for_stats(
        lambda s: s["width"] == top_width and s["framesDecoded"] > frames + 15,
        timeout=SWITCH_TIMEOUT,
        what="the viewer decoding the full size again",
    )
    assert consumer.layer_switches >= 2


@pytest.mark.timeout(90)
async def test_a_tile_scrolled_away_or_a_hidden_page_receives_no_video(
    join: Join, server: RunningServer
) -> None:
    publisher = await join("carol", "stage")
    viewer = await join("dave", "viewer")
    await viewer.wait_for_stats(
        lambda s: s["framesDecoded"] > 0, timeout=MEDIA_TIMEOUT, what="the viewer decoding video"
    )
    consumer = _video_consumer(server, await viewer.participant_id())
    assert consumer.active

    # The page goes to the background, as when its tab is switched away.
    await viewer.page.evaluate(_SET_VISIBILITY, "hidden")
    await poll(
        lambda: now(lambda: (consumer.hidden, consumer.active)),
        lambda state: state == (True, False),
        timeout=SWITCH_TIMEOUT,
        what="the hidden page's video paused on the server",
    )
    sent = consumer.packets_sent
    await viewer.page.evaluate(_SET_VISIBILITY, "visible")
    await poll(
        lambda: now(lambda: consumer.packets_sent),
        lambda count: count > sent,
        timeout=SWITCH_TIMEOUT,
        what="video flowing again once the page is visible",
    )
    frames = (await viewer.stats())["framesDecoded"]
    await viewer.wait_for_stats(
        lambda s: s["framesDecoded"] > frames + 15,
        timeout=SWITCH_TIMEOUT,
        what="the viewer decoding again after the pause",
    )
    assert publisher.console == [] or all("error" not in line for line in publisher.console)
