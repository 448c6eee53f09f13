"""GET /metrics during real calls: the numbers move as the media and the rooms do."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from signaling.client import ServerError, StageClient
from signaling.roles import Role
from tests.impaired_client import request_key_frame
from tests.integration.helpers import receive, remote_track, stage_and_viewers
from tests.media import PatternTrack, ToneTrack
from tests.server import RunningServer, running_server

Samples = list[tuple[str, dict[str, str], float]]


async def scrape(server: RunningServer) -> Samples:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.http_url}/metrics") as response,
    ):
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def value(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels`."""
    return sum(v for n, found, v in samples if n == name and labels.items() <= found.items())


def present(samples: Samples, name: str, **labels: str) -> bool:
    return any(n == name and labels.items() <= found.items() for n, found, _ in samples)


def counters(samples: Samples) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (name, tuple(sorted(labels.items()))): v
        for name, labels, v in samples
        if name.startswith("stage_sfu_") and name.endswith(("_total", "_count", "_sum"))
    }


async def scrape_until(
    server: RunningServer, check: Callable[[Samples], bool], timeout: float = 20.0
) -> Samples:
    """Bounded wait for a server-side change that no message announces."""
    async with asyncio.timeout(timeout):
        while True:
            samples = await scrape(server)
            if check(samples):
                return samples
            await asyncio.sleep(0.05)


async def test_media_counters_follow_a_call_and_survive_a_viewer_leaving(
    server: RunningServer,
) -> None:
    tone = ToneTrack(amplitude=0.3)
    async with stage_and_viewers(server, [tone, PatternTrack()], viewers=2) as (
        publisher,
        viewers,
    ):
        leaving, staying = viewers
        for viewer in viewers:
            await receive(remote_track(viewer, publisher.participant_id, "video").track, 5)

        first = await scrape(server)
        assert value(first, "stage_sfu_rooms") == 1
        assert value(first, "stage_sfu_producers", kind="audio") == 1
        assert value(first, "stage_sfu_producers", kind="video") == 1
        assert value(first, "stage_sfu_consumers", kind="audio") == 2
        assert value(first, "stage_sfu_consumers", kind="video") == 2
        assert value(first, "stage_sfu_transports") == 4  # publish + subscribe, two viewers
        assert value(first, "stage_sfu_participants", status="on_stage") == 1
        assert value(first, "stage_sfu_participants", status="viewer") == 2
        assert value(first, "stage_sfu_participants", role="participant") == 3
        assert value(first, "stage_sfu_connections") == 3
        for kind in ("audio", "video"):
            for name in (
                "stage_sfu_rtp_packets_received_total",
                "stage_sfu_rtp_bytes_received_total",
                "stage_sfu_rtp_packets_sent_total",
                "stage_sfu_rtp_bytes_sent_total",
            ):
                assert value(first, name, kind=kind) > 0, (name, kind)
        # Each viewer's video started on a key frame it had to wait for.
        assert value(first, "stage_sfu_key_frame_wait_seconds_count") == 2
        assert value(first, "stage_sfu_key_frame_wait_seconds_sum") >= 0
        assert value(first, "stage_sfu_key_frames_received_total") >= 1
        assert value(first, "stage_sfu_key_frame_requests_sent_total") >= 1

        moving = await scrape_until(
            server,
            lambda s: (
                all(
                    value(s, name, kind=kind) > value(first, name, kind=kind)
                    for name in (
                        "stage_sfu_rtp_packets_received_total",
                        "stage_sfu_rtp_packets_sent_total",
                    )
                    for kind in ("audio", "video")
                )
                and value(s, "stage_sfu_speaking_changes_total") >= 1
                and all(
                    present(s, name, kind=kind, quantile=q)
                    for name in ("stage_sfu_jitter_seconds", "stage_sfu_round_trip_time_seconds")
                    for kind in ("audio", "video")
                    for q in ("0.5", "0.9", "1")
                )
            ),
        )
        for kind in ("audio", "video"):
            rtt = "stage_sfu_round_trip_time_seconds"
            assert (
                0
                <= value(moving, rtt, kind=kind, quantile="0.5")
                <= value(moving, rtt, kind=kind, quantile="1")
            )

        await leaving.leave()
        after = await scrape_until(
            server, lambda s: value(s, "stage_sfu_consumers", kind="video") == 1
        )
        assert value(after, "stage_sfu_participants", status="viewer") == 1
        assert value(after, "stage_sfu_transports") == 3
        before_leaving = counters(moving)
        now = counters(after)
        decreased = {
            key: (old, now.get(key))
            for key, old in before_leaving.items()
            if now.get(key, -1.0) < old
        }
        assert decreased == {}, "counters went backwards when a viewer left"
        # Still moving for the viewer who stayed.
        await receive(remote_track(staying, publisher.participant_id, "video").track, 3)
        await scrape_until(
            server,
            lambda s: (
                value(s, "stage_sfu_rtp_packets_sent_total", kind="video")
                > value(after, "stage_sfu_rtp_packets_sent_total", kind="video")
            ),
        )


async def test_a_viewer_pli_is_counted_received_and_forwarded_upstream(
    server: RunningServer,
) -> None:
    async with stage_and_viewers(server, [ToneTrack(), PatternTrack()]) as (publisher, viewers):
        viewer = viewers[0]
        video = remote_track(viewer, publisher.participant_id, "video")
        await receive(video.track, 5)
        before = await scrape(server)
        assert value(before, "stage_sfu_key_frame_requests_received_total") == 0

        await request_key_frame(viewer, video)

        await scrape_until(
            server,
            lambda s: (
                value(s, "stage_sfu_key_frame_requests_received_total") == 1
                and value(s, "stage_sfu_key_frame_requests_sent_total")
                == value(before, "stage_sfu_key_frame_requests_sent_total") + 1
            ),
        )


async def test_a_forbidden_command_is_counted_as_rejected_with_its_reason(
    server: RunningServer,
) -> None:
    host = await StageClient.connect(
        server.ws_url, server.token("hana", role=Role.HOST), entry="stage"
    )
    viewer = await StageClient.connect(server.ws_url, server.token("victor"))
    try:
        before = await scrape(server)
        with pytest.raises(ServerError) as refused:
            await viewer.command("mute", target=host.participant_id, device="mic")
        assert refused.value.code == "forbidden"

        after = await scrape(server)
        rejected = "stage_sfu_commands_rejected_total"
        assert value(before, rejected, command="mute", reason="forbidden") == 0
        assert value(after, rejected, command="mute", reason="forbidden") == 1
        assert value(after, rejected) == value(before, rejected) + 1
        errors = "stage_sfu_signaling_errors_total"
        assert value(after, errors, code="forbidden") == value(before, errors, code="forbidden") + 1
        messages = "stage_sfu_signaling_messages_total"
        assert value(after, messages, direction="in", type="mute") == 1
        assert value(after, messages, direction="in", type="join") == 2
        assert value(after, messages, direction="out", type="joined") == 2
    finally:
        for client in (host, viewer):
            await client.close()


async def test_join_latency_is_observed_once_per_join(server: RunningServer) -> None:
    count = "stage_sfu_join_duration_seconds_count"
    assert value(await scrape(server), count, kind="join") == 0
    clients = []
    try:
        for n in range(1, 4):
            clients.append(await StageClient.connect(server.ws_url, server.token(f"p{n}")))
            samples = await scrape(server)
            assert value(samples, count, kind="join") == n
            assert (
                value(samples, "stage_sfu_join_duration_seconds_bucket", kind="join", le="+Inf")
                == n
            )
        assert value(samples, "stage_sfu_join_duration_seconds_sum", kind="join") > 0
    finally:
        for client in clients:
            await client.close()


async def test_people_waiting_for_the_stage_are_counted_by_status() -> None:
    async with running_server({"rooms.stage_access": "request"}) as server:
        host = await StageClient.connect(
            server.ws_url, server.token("hana", role=Role.HOST), entry="stage"
        )
        alice = await StageClient.connect(server.ws_url, server.token("alice"))
        try:
            await alice.command("request_stage")
            await alice.command("raise_hand")
            samples = await scrape(server)
            participants = "stage_sfu_participants"
            assert value(samples, participants, role="host", status="on_stage") == 1
            assert value(samples, participants, role="participant", status="requested") == 1
            assert value(samples, participants, status="viewer") == 0
            assert value(samples, "stage_sfu_raised_hands") == 1
        finally:
            for client in (host, alice):
                await client.close()


async def test_process_and_event_loop_metrics_are_exposed(server: RunningServer) -> None:
    samples = await scrape_until(
        server, lambda s: value(s, "stage_sfu_event_loop_lag_seconds_count") >= 2
    )
    assert value(samples, "stage_sfu_process_resident_memory_bytes") > 0
    assert value(samples, "stage_sfu_process_cpu_seconds_total") > 0
    assert value(samples, "stage_sfu_build_info") == 1
    assert value(samples, "stage_sfu_accepting_joins") == 1
    before = value(samples, "stage_sfu_gc_pause_seconds_count", generation="2")
    gc.collect()  # a full collection is timed
    samples = await scrape(server)
    assert value(samples, "stage_sfu_gc_pause_seconds_count", generation="2") >= before + 1
