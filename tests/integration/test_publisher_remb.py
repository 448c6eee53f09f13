"""What a simulcast publisher is asked for (REMB) follows what its viewers' tiles need,
with real peers: the benchmarks' simulcast bot publishes three encodings through the
real signaling, ICE, DTLS and SRTP, and the REMB is read as the bot receives it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from benchmarks.media import load_simulcast_clips
from sfu.aiortc_bridge import PeerConnection
from sfu.rtp import rtcp
from sfu.upstream_rate import HOLD, WARM_UP
from signaling.settings import load_settings
from tests.integration.front import front, worker_samples
from tests.integration.helpers import poll_until
from tests.integration.test_metrics import scrape, value
from tests.integration.test_simulcast import (
    Viewer,
    simulcast_stage,
    video_consumer,
    video_producer,
)
from tests.server import FrontServer, RunningServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

# Long enough for the rates to be measured and a lower need to be held, with room for
# a loaded machine; every wait below ends as soon as its condition holds.
SETTLE = WARM_UP + 2 * HOLD + 10.0
PROMPT = 5.0  # the next tick after the change, with room for a loaded machine


@pytest.fixture(scope="module", autouse=True)
def _clips() -> None:
    load_simulcast_clips()  # encoded once (a few seconds), then cached for every run


class ReceivedRembs:
    """The REMBs a peer receives, in order, beside what it already does with RTCP."""

    def __init__(self, peer: PeerConnection) -> None:
        self.rembs: list[rtcp.Remb] = []
        self._inner = peer.on_rtcp
        peer.on_rtcp = self._on_rtcp

    def _on_rtcp(self, data: bytes) -> None:
        self.rembs.extend(p for p in rtcp.parse_compound(data) if isinstance(p, rtcp.Remb))
        self._inner(data)

    @property
    def last(self) -> rtcp.Remb | None:
        return self.rembs[-1] if self.rembs else None

    async def until(self, holds: Callable[[rtcp.Remb], bool], timeout: float) -> rtcp.Remb:
        """Wait until the last REMB received is one for which `holds`."""
        await poll_until(lambda: self.last is not None and holds(self.last), timeout=timeout)
        assert self.last is not None
        return self.last


async def _view(viewer: Viewer, height: int) -> None:
    view = {"track_id": viewer.track_id, "visible": True, "height": height}
    await viewer.client.request({"type": "view_tracks", "tracks": [view]})


async def test_small_tiles_lower_the_request_and_a_large_one_raises_it_at_once(
    server: RunningServer,
) -> None:
    ceiling = server.settings.media.publisher_max_bitrate
    async with simulcast_stage(server, viewers=2) as (publisher, viewers):
        received = ReceivedRembs(publisher.peer)
        producer = video_producer(server, publisher)
        ssrcs = tuple(publisher.publisher.video_ssrcs[rid] for rid in ("q", "h", "f"))
        for viewer in viewers:
            await _view(viewer, height=90)

        # Every tile small: the publisher is asked for the lowest encoding only.
        low = await received.until(lambda r: r.bitrate_bps < ceiling, timeout=SETTLE)
        assert low.ssrcs == ssrcs[:1]
        q, h, _ = (stream.bitrate for stream in producer.streams)
        assert low.bitrate_bps < q + h  # not even enough for the middle encoding
        assert low.bitrate_bps > q  # but enough for the lowest

        raises = producer.remb_raises
        await _view(viewers[0], height=360)
        high = await received.until(lambda r: r.bitrate_bps == ceiling, timeout=PROMPT)
        assert high.ssrcs == ssrcs
        assert producer.remb_raises == raises + 1  # sent on the change, not at a report
        samples = await scrape(server)
        assert value(samples, "stage_sfu_publisher_rate_raises_total") == raises + 1
        requested = value(samples, "stage_sfu_publisher_bitrate_requested_bps", quantile="1")
        assert requested == producer.requested_bitrate == high.bitrate_bps


async def test_a_viewer_on_a_short_downlink_does_not_lower_what_the_others_get(
    server: RunningServer,
) -> None:
    ceiling = server.settings.media.publisher_max_bitrate
    async with simulcast_stage(server, viewers=2) as (publisher, (large, small)):
        received = ReceivedRembs(publisher.peer)
        producer = video_producer(server, publisher)
        await _view(small, height=90)
        await _view(large, height=360)
        # The large tile's viewer can carry only the lowest encoding (as its downlink
        # estimate would say): it is forwarded that, but the tile still wants the top.
        consumer = video_consumer(server, large, producer)
        consumer.set_bandwidth_layer(0)
        await poll_until(lambda: consumer.layer == 0, timeout=PROMPT)

        await poll_until(lambda: len(received.rembs) >= WARM_UP + HOLD + 3, timeout=SETTLE)
        assert all(remb.bitrate_bps == ceiling for remb in received.rembs)


@pytest.mark.timeout(150)
async def test_in_a_spread_room_a_far_viewers_tile_reaches_the_publisher() -> None:
    # Spread from the first viewer: the viewers are on the other worker, which mirrors
    # the publisher's encodings; their need reaches the publisher through the pipe (the
    # mirror's REMB names the encodings they want).
    async with front(2, {"STAGE_SFU_ROOMS_SPREAD_AFTER": "0"}) as (port, _):
        server = FrontServer(
            settings=load_settings(overrides={"server.port": port}, env={}), port=port, workers=2
        )
        ceiling = server.settings.media.publisher_max_bitrate
        async with simulcast_stage(server, viewers=2) as (publisher, viewers):
            received = ReceivedRembs(publisher.peer)
            ssrcs = tuple(publisher.publisher.video_ssrcs[rid] for rid in ("q", "h", "f"))
            for viewer in viewers:
                await viewer.frames.until((640, 360))
            viewing = await worker_samples(port, "stage_sfu_simulcast_consumers")
            publishing = await worker_samples(port, "stage_sfu_simulcast_encodings")
            far = {worker for (worker, _), value in viewing.items() if value}
            home = {worker for (worker, _), value in publishing.items() if value}
            assert far and home and not far & home, f"not spread: {viewing} {publishing}"
            for viewer in viewers:
                await _view(viewer, height=90)
            low = await received.until(lambda r: r.bitrate_bps < ceiling, timeout=SETTLE)
            assert low.ssrcs == ssrcs[:1]

            await _view(viewers[1], height=360)
            high = await received.until(lambda r: r.bitrate_bps == ceiling, timeout=PROMPT)
            assert high.ssrcs == ssrcs
            await _view(viewers[1], height=90)
            await received.until(lambda r: r.bitrate_bps < ceiling, timeout=SETTLE)
