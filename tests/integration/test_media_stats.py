"""`get_media_stats`: a viewer asks what it receives and why at that quality, and the
answer follows what the server really forwards to it: with one worker, with the default
front and workers, and with the viewer's media on another worker than its room."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from benchmarks.media import load_simulcast_clips
from signaling.client import StageClient
from signaling.settings import load_settings
from tests.integration.front import front, worker_samples
from tests.integration.test_simulcast import SimulcastPublisher, Viewer, simulcast_stage
from tests.server import Endpoint, FrontServer, running_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

WAIT = 10.0
SPREAD_FROM_THE_FIRST = {"STAGE_SFU_ROOMS_SPREAD_AFTER": "0"}


@pytest.fixture(scope="module", autouse=True)
def _clips() -> None:
    load_simulcast_clips()  # encoded once, then cached for every run


@dataclass
class Deployment:
    endpoint: Endpoint
    spread: bool  # every subscriber after the first goes to the other worker


@pytest.fixture(params=["1-worker", "2-workers", "2-workers-spread"])
async def deployment(request: pytest.FixtureRequest) -> AsyncIterator[Deployment]:
    """One worker; the default front and two workers; and the same with every room
    spread from its first subscriber on, so the viewer's media lives on the worker that
    does not hold its room (its stats come over the link between them)."""
    if request.param == "1-worker":
        async with running_server() as running:
            yield Deployment(running, spread=False)
        return
    spread = request.param.endswith("spread")
    async with front(2, SPREAD_FROM_THE_FIRST if spread else None) as (port, _):
        settings = load_settings(overrides={"server.port": port}, env={})
        yield Deployment(FrontServer(settings=settings, port=port, workers=2), spread=spread)


async def _stats(client: StageClient) -> dict[str, Any]:
    reply = await client.media_stats()
    assert reply["type"] == "media_stats"
    return reply


def _video(stats: dict[str, Any], publisher: SimulcastPublisher) -> dict[str, Any]:
    video: dict[str, Any]
    (video,) = [
        t
        for t in stats["tracks"]
        if t["participant_id"] == publisher.participant_id and t["kind"] == "video"
    ]
    return video


async def _stats_until(
    client: StageClient, holds: Callable[[dict[str, Any]], bool], timeout: float = WAIT
) -> dict[str, Any]:
    """Ask again, every 0.2 s for at most `timeout` seconds, until the answer satisfies
    `holds` (measured rates appear once a second; nothing announces them)."""
    last: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        last = await _stats(client)
        if holds(last):
            return last
        if loop.time() >= deadline:
            pytest.fail(f"media_stats did not get there in {timeout:g} s; last answer {last}")
        await asyncio.sleep(0.2)


async def _view(viewer: Viewer, height: int) -> None:
    view = {"track_id": viewer.track_id, "visible": True, "height": height}
    await viewer.client.request({"type": "view_tracks", "tracks": [view]})


async def test_a_viewer_receiving_nothing_gets_an_empty_list(any_server: Endpoint) -> None:
    client = await StageClient.connect(any_server.ws_url, any_server.token("alone"))
    try:
        reply = await client.request({"type": "get_media_stats"})
        assert reply["type"] == "media_stats"
        assert (reply["downlink_bps"], reply["tracks"]) == (None, [])
    finally:
        await client.close()


def _measured(stats: dict[str, Any], publisher: SimulcastPublisher) -> bool:
    video = _video(stats, publisher)
    return video["layer"] == 2 and all(e["bitrate"] and e["height"] for e in video["encodings"])


async def test_a_viewer_sees_its_own_layer_follow_its_tile_and_its_switches_grow(
    deployment: Deployment,
) -> None:
    async with simulcast_stage(deployment.endpoint) as (publisher, (viewer,)):
        if deployment.spread:
            # The room's worker holds the publisher's two connections, the other one the
            # viewer's: its stats come over the link.
            port = deployment.endpoint.port
            transports = await worker_samples(port, "stage_sfu_transports")
            assert sorted(transports.values()) == [1.0, 2.0]
        await viewer.frames.until((640, 360))
        top = await _stats_until(viewer.client, lambda s: _measured(s, publisher))
        video = _video(top, publisher)
        assert (video["target_layer"], video["limited_by"]) == (2, None)
        assert video["track_id"] == viewer.track_id
        encodings = video["encodings"]
        assert [e["rid"] for e in encodings] == ["q", "h", "f"]
        assert [(e["width"], e["height"]) for e in encodings] == [(160, 90), (320, 180),
                                                                   (640, 360)]  # fmt: skip
        assert all(e["active"] and e["frame_rate"] > 0 for e in encodings)
        assert encodings[0]["bitrate"] < encodings[1]["bitrate"] < encodings[2]["bitrate"]
        (audio,) = [t for t in top["tracks"] if t["kind"] == "audio"]
        assert (audio["participant_id"], audio["limited_by"]) == (publisher.participant_id, None)
        assert top["downlink_bps"] is None  # aiortc sends no transport-cc feedback
        switches = video["layer_switches"]

        await _view(viewer, height=90)
        await viewer.frames.until((160, 90))
        small = _video(await _stats(viewer.client), publisher)
        assert (small["layer"], small["target_layer"], small["limited_by"]) == (0, 0, "tile_size")
        assert small["layer_switches"] > switches

        await _view(viewer, height=0)
        await viewer.frames.until((640, 360))
        back = _video(await _stats(viewer.client), publisher)
        assert (back["layer"], back["target_layer"], back["limited_by"]) == (2, 2, None)
        assert back["layer_switches"] > small["layer_switches"]


async def test_each_viewer_is_told_about_its_own_tiles_only(any_server: Endpoint) -> None:
    async with simulcast_stage(any_server, viewers=2) as (publisher, (small, large)):
        await _view(small, height=90)
        await small.frames.until((160, 90))
        await large.frames.until((640, 360))

        theirs = _video(await _stats(small.client), publisher)
        mine = _video(await _stats(large.client), publisher)

        assert (theirs["layer"], theirs["limited_by"]) == (0, "tile_size")
        assert (mine["layer"], mine["limited_by"]) == (2, None)


async def test_stats_requests_are_charged_to_the_command_budget(any_server: Endpoint) -> None:
    client = await StageClient.connect(any_server.ws_url, any_server.token("eager"))
    try:
        count = 2 * any_server.settings.rooms.command_burst
        answers = await asyncio.gather(
            *(client.request({"type": "get_media_stats"}) for _ in range(count)),
            return_exceptions=True,
        )
        refused = [a for a in answers if getattr(a, "code", None) == "rate_limited"]
        assert refused, answers[-1]
        assert sum(1 for a in answers if isinstance(a, dict)) < count
    finally:
        await client.close()
