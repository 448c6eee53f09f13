"""One room over two media workers: viewers' media is placed on both, the
publisher's streams are piped once to the other worker, and everything a
viewer does (decode, ask for a key frame, see tracks go) works the same
wherever its media lives."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

import aiohttp
import pytest

from signaling.client import StageClient
from tests.impaired_client import request_key_frame
from tests.integration.front import Samples, front, token, worker_samples
from tests.integration.helpers import receive, remote_track, wait_for_tracks
from tests.media import PatternTrack, ToneTrack

SPREAD_FROM_THE_FIRST = {"STAGE_SFU_ROOMS_SPREAD_AFTER": "0"}


def _by_worker(samples: Samples, **labels: str) -> dict[str, float]:
    wanted = tuple(sorted(labels.items()))
    totals: dict[str, float] = {}
    for (worker, sample_labels), value in samples.items():
        if all(item in sample_labels for item in wanted):
            totals[worker] = totals.get(worker, 0.0) + value
    return totals


async def _until(
    port: int, name: str, predicate: Callable[[dict[str, float]], bool], **labels: str
) -> None:
    """Bounded wait until the per-worker totals of a metric satisfy `predicate`."""
    async with asyncio.timeout(20):
        while not predicate(_by_worker(await worker_samples(port, name), **labels)):  # noqa: ASYNC110 - metrics announce nothing
            await asyncio.sleep(0.2)


@pytest.mark.timeout(120)
async def test_a_room_spreads_its_viewers_over_workers_and_every_viewer_decodes() -> None:
    async with front(2, SPREAD_FROM_THE_FIRST) as (port, _):
        url = f"ws://127.0.0.1:{port}/ws"
        publisher = await StageClient.connect(url, token("big", "pub"), entry="stage")
        viewers: list[StageClient] = []
        try:
            for i in range(4):
                viewers.append(await StageClient.connect(url, token("big", f"viewer{i}")))
            await publisher.publish([ToneTrack(0.2), PatternTrack()])
            for viewer in viewers:
                await wait_for_tracks(viewer, publisher.participant_id)
                await receive(remote_track(viewer, publisher.participant_id, "video").track, 5)
                await receive(remote_track(viewer, publisher.participant_id, "audio").track, 5)

            transports = _by_worker(await worker_samples(port, "stage_sfu_transports"))
            # home: publisher's two connections + 2 viewers; the other worker: 2 viewers
            assert sorted(transports.values()) == [2.0, 4.0]
            home = max(transports, key=lambda w: transports[w])
            edge = min(transports, key=lambda w: transports[w])
            consumers = _by_worker(await worker_samples(port, "stage_sfu_consumers"))
            assert consumers[edge] == 4  # audio + video for each of its two viewers
            # Each stream crosses once, whatever the number of viewers over there.
            await _until(port, "stage_sfu_pipe_rtp_packets_total",
                         lambda out: out.get(home, 0) > 100, direction="out")  # fmt: skip
            piped_in = _by_worker(
                await worker_samples(port, "stage_sfu_pipe_rtp_packets_total"), direction="in"
            )
            assert piped_in.get(edge, 0) > 100 and piped_in.get(home, 0) == 0
        finally:
            for client in (publisher, *viewers):
                await client.close()


@pytest.mark.timeout(120)
async def test_far_viewers_ask_for_key_frames_and_the_far_side_follows_the_room() -> None:
    async with front(2, SPREAD_FROM_THE_FIRST) as (port, _):
        url = f"ws://127.0.0.1:{port}/ws"
        publisher = await StageClient.connect(url, token("big", "pub"), entry="stage")
        viewers: list[StageClient] = []
        try:
            # Placement alternates from the home worker: the publisher's own subscribe
            # connection stays home, the first viewer goes to the other worker.
            viewers.append(await StageClient.connect(url, token("big", "far")))
            viewers.append(await StageClient.connect(url, token("big", "near")))
            await publisher.publish([ToneTrack(0.2), PatternTrack()])
            far, near = viewers
            for viewer in viewers:
                await wait_for_tracks(viewer, publisher.participant_id)
                await receive(remote_track(viewer, publisher.participant_id, "video").track, 3)
            transports = _by_worker(await worker_samples(port, "stage_sfu_transports"))
            home = max(transports, key=lambda w: transports[w])
            edge = min(transports, key=lambda w: transports[w])
            assert transports[edge] == 1

            received = "stage_sfu_key_frame_requests_received_total"
            sent = "stage_sfu_key_frame_requests_sent_total"
            asked = _by_worker(await worker_samples(port, received)).get(edge, 0)
            relayed = _by_worker(await worker_samples(port, sent)).get(home, 0)
            await request_key_frame(far, remote_track(far, publisher.participant_id, "video"))
            # The far viewer's PLI arrives on its worker, crosses the pipe, and the
            # home worker sends it on to the publisher.
            await _until(port, received, lambda t: t.get(edge, 0) == asked + 1)
            await _until(port, sent, lambda t: t.get(home, 0) >= relayed + 1)

            await far.leave()  # its connection closes over there
            await _until(port, "stage_sfu_transports", lambda t: t.get(edge, 0) == 0)
            await publisher.leave()  # and the piped streams with it
            await _until(port, "stage_sfu_producers", lambda t: sum(t.values()) == 0)
            await _until(port, "stage_sfu_consumers", lambda t: sum(t.values()) == 0)
            await near.wait_event(lambda e: e["type"] == "participant_left", timeout=10)
        finally:
            for client in (publisher, *viewers):
                await client.close()


@pytest.mark.timeout(120)
async def test_when_a_worker_holding_viewers_dies_they_are_told_and_the_rest_carry_on() -> None:
    async with front(2, SPREAD_FROM_THE_FIRST) as (port, _):
        url = f"ws://127.0.0.1:{port}/ws"
        publisher = await StageClient.connect(url, token("big", "pub"), entry="stage")
        far = await StageClient.connect(url, token("big", "far"))
        near = await StageClient.connect(url, token("big", "near"))
        try:
            await publisher.publish([ToneTrack(0.2), PatternTrack()])
            for viewer in (far, near):
                await wait_for_tracks(viewer, publisher.participant_id)
            transports = _by_worker(await worker_samples(port, "stage_sfu_transports"))
            edge = min(transports, key=lambda w: transports[w])
            health_url = f"http://127.0.0.1:{port}/healthz"
            async with aiohttp.ClientSession() as http, http.get(health_url) as response:
                health = await response.json()
            pid = next(w["pid"] for w in health["workers"] if str(w["index"]) == edge)

            os.kill(pid, signal.SIGKILL)

            bye = await far.wait_event(lambda e: e["type"] == "bye", timeout=20)
            assert bye["reason"] == "transport_failed"
            # The room, its publisher and the viewers on the surviving worker are unaffected.
            await receive(remote_track(near, publisher.participant_id, "video").track, 10)
            assert near.close_code is None and publisher.close_code is None
            # New rooms go to the live worker, not to the dead one that holds nobody.
            newcomer = await StageClient.connect(url, token("fresh", "newcomer"))
            await newcomer.close()
        finally:
            for client in (publisher, far, near):
                await client.close()


@pytest.mark.timeout(120)
async def test_spreading_counts_the_audience_not_the_stage() -> None:
    async with front(2, {"STAGE_SFU_ROOMS_SPREAD_AFTER": "2"}) as (port, _):
        url = f"ws://127.0.0.1:{port}/ws"
        host = await StageClient.connect(url, token("panel", "host"), entry="stage")
        viewers: list[StageClient] = []
        try:
            for i in range(2):
                viewers.append(await StageClient.connect(url, token("panel", f"viewer{i}")))
            transports = _by_worker(await worker_samples(port, "stage_sfu_transports"))
            assert sorted(transports.values()) == [0.0, 3.0]  # the host's and two viewers'

            viewers.append(await StageClient.connect(url, token("panel", "viewer2")))

            transports = _by_worker(await worker_samples(port, "stage_sfu_transports"))
            assert sorted(transports.values()) == [1.0, 3.0]  # the third viewer went over
        finally:
            for client in (host, *viewers):
                await client.close()
