"""A Chromium viewer's downlink estimate, from its own transport-cc feedback, fitted to
its tracks (media.downlink_estimation)."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
import pytest

from sfu.consumer import Consumer
from sfu.webrtc_transport import WebRtcTransport
from tests.e2e.conftest import Join, now, poll
from tests.integration.helpers import member
from tests.server import RunningServer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

TIMEOUT = 30.0


@pytest.fixture
def server_overrides() -> Mapping[str, object]:
    return {"media.downlink_estimation": True}


@pytest.mark.timeout(90)
async def test_a_browser_viewers_feedback_feeds_its_estimate_and_its_tracks_fit_it(
    join: Join, server: RunningServer
) -> None:
    publisher = await join("alice", "stage")
    viewer = await join("bob", "viewer")
    await viewer.wait_for_stats(
        lambda s: s["framesDecoded"] > 0, timeout=TIMEOUT, what="the viewer decoding video"
    )
    transport = member(server, await viewer.participant_id()).recv_transport
    assert isinstance(transport, WebRtcTransport) and transport.transport_cc
    downlink = transport.downlink
    assert downlink is not None
    await poll(
        lambda: now(lambda: (downlink.feedbacks, downlink.allocations)),
        lambda counts: counts[0] >= 20 and counts[1] >= 2,
        timeout=TIMEOUT,
        what="feedback from the viewer and allocations of its estimate",
    )
    assert downlink.feedbacks_malformed == 0
    assert downlink.estimator.estimate_bps >= 50_000
    assert downlink.estimator.acknowledged_bps is not None
    video = next(c for c in transport.consumers.values() if c.kind == "video")
    assert isinstance(video, Consumer)
    assert video.bandwidth_layer is not None and not video.starved
    async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/metrics") as got:
        metrics = await got.text()
    assert 'stage_sfu_downlink_estimate_bps{quantile="0.5"}' in metrics
    # The page keeps playing under the allocation.
    frames = (await viewer.stats())["framesDecoded"]
    await viewer.wait_for_stats(
        lambda s: s["framesDecoded"] > frames + 30, timeout=TIMEOUT, what="video still playing"
    )
    assert publisher.console == [] or all("error" not in line for line in publisher.console)
