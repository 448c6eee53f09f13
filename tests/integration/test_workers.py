"""Several media worker processes behind one front: rooms are placed on workers,
media flows straight to the worker, health and metrics cover them all."""

from __future__ import annotations

import asyncio
import json
import signal

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from signaling import protocol as wire
from signaling.client import StageClient
from tests.integration.front import front, token
from tests.integration.helpers import receive, remote_track, wait_for_tracks
from tests.media import PatternTrack, ToneTrack


@pytest.mark.timeout(90)
async def test_rooms_spread_over_workers_and_media_flows_from_each() -> None:
    async with front(2) as (port, process):
        url = f"ws://127.0.0.1:{port}/ws"
        clients: list[StageClient] = []
        try:
            for room in ("alpha", "beta"):
                publisher = await StageClient.connect(
                    url, token(room, f"{room}-pub"), entry="stage"
                )
                viewer = await StageClient.connect(url, token(room, f"{room}-view"))
                clients += [publisher, viewer]
                await publisher.publish([ToneTrack(0.2), PatternTrack()])
                await wait_for_tracks(viewer, publisher.participant_id)
                await receive(remote_track(viewer, publisher.participant_id, "video").track, 5)
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    health = await response.json()
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    metrics = await response.text()
            assert health["status"] == "ok" and health["rooms"] == 2
            assert sorted(w["rooms"] for w in health["workers"]) == [1, 1]  # one room each
            pids = {w["pid"] for w in health["workers"]}
            assert len(pids) == 2 and process.pid not in pids
            sent = {
                sample.labels["worker"]
                for family in text_string_to_metric_families(metrics)
                for sample in family.samples
                if sample.name == "stage_sfu_rtp_packets_sent_total" and sample.value > 0
            }
            assert sent == {"0", "1"}  # both workers forward media

            process.send_signal(signal.SIGTERM)
            for client in clients:
                await client.wait_event(
                    lambda e: e["type"] == "bye" and e["reason"] == "shutting_down", timeout=15
                )
            assert await asyncio.wait_for(process.wait(), 20) == 0
        finally:
            for client in clients:
                await client.close()


def test_routing_reads_the_room_from_join_and_resume() -> None:
    from signaling.web.front import routing_room

    def room_of(message: dict[str, object]) -> str:
        decoded = wire.decode_client(json.dumps(message))
        assert isinstance(decoded, (wire.Join, wire.Resume))
        return routing_room(decoded)

    assert room_of({"type": "join", "token": token("alpha", "x")}) == "alpha"
    assert room_of({"type": "join", "token": "x", "room": "beta"}) == "beta"
    assert room_of({"type": "resume", "room": "gamma", "resume_token": "t"}) == "gamma"
    assert room_of({"type": "join", "token": "garbage"}) == ""
    assert room_of({"type": "join"}) == ""
