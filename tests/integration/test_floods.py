"""A flooding client gets `rate_limited` and cannot get anyone else disconnected: limits
belong to the identity, and moderators receive coalesced state. One worker and two."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from sfu.events import SpeakingChanged
from sfu.types import ProducerId
from signaling.roles import Role
from signaling.room import INBOX_LIMIT
from signaling.room_commands import LeaveRoom, RateLimited
from signaling.stage.model import ParticipantId
from tests.raw_socket import RawSocket, raw_socket
from tests.server import Endpoint, RunningServer

TOGGLES = 4000


async def _join(raw: RawSocket, server: Endpoint, identity: str, role: Role) -> None:
    token = server.token(identity, role=role)
    reply = await raw.request({"type": "join", "id": "j", "token": token})
    assert reply["type"] == "joined"


async def _replies(raw: RawSocket, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Read until every request in `ids` is answered (other frames go to raw.events)."""
    answers: dict[str, dict[str, Any]] = {}
    while len(answers) < len(ids):
        frame = await raw.receive()
        if frame.get("id") in ids:
            answers[frame["id"]] = frame
        else:
            raw.events.append(frame)
    return answers


async def _metrics(server: Endpoint) -> list[Metric]:
    async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/metrics") as reply:
        return list(text_string_to_metric_families(await reply.text()))


def _total(families: list[Metric], name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in families
        if family.name == name
        for sample in family.samples
        if sample.name == name + "_total"
        and all(sample.labels.get(key) == value for key, value in labels.items())
    )


async def test_a_hand_toggling_flood_is_rate_limited_and_the_stalled_host_stays(
    any_server: Endpoint,
) -> None:
    async with raw_socket(any_server) as host, raw_socket(any_server) as flooder:
        await _join(host, any_server, "host", Role.HOST)
        await _join(flooder, any_server, "flooder", Role.PARTICIPANT)
        # The host reads nothing while the flood lasts, like a stalled browser tab.
        ids = {f"t{n}" for n in range(TOGGLES)}
        reading = asyncio.ensure_future(_replies(flooder, ids))
        for n in range(TOGGLES):
            kind = "raise_hand" if n % 2 == 0 else "lower_hand"
            await flooder.send(json.dumps({"type": kind, "id": f"t{n}"}))
        answers = await asyncio.wait_for(reading, 60)

        limited = [a for a in answers.values() if a.get("code") == "rate_limited"]
        accepted = [a for a in answers.values() if a["type"] == "ack"]
        assert limited and accepted
        assert all(a["retry_after"] > 0 for a in limited)
        assert len(accepted) < TOGGLES / 10
        # The host is still connected and hears far less than the flood.
        pong = await host.request({"type": "ping", "id": "still-here"})
        assert pong["type"] == "pong"
        updates = [e for e in host.events if e["type"] in ("participant_updated", "queues")]
        # Uncoalesced it would be two per accepted toggle; coalesced, about two keys per
        # 0.1 s window while the commands are accepted at 20 a second after a burst of 40.
        assert len(updates) < len(accepted)
    # Operators see both: the refusals and the merged updates.
    families = await _metrics(any_server)
    assert _total(families, "stage_sfu_commands_rejected", reason="rate_limited") == len(limited)
    assert _total(families, "stage_sfu_events_coalesced") > 0


async def test_a_burst_of_pipelined_pings_is_answered_in_full(any_server: Endpoint) -> None:
    """Requests read in one go must not outrun the connection's own writer: the
    client reads all along, so it is not too slow and must not be disconnected."""
    count = 1000
    async with raw_socket(any_server) as raw:
        await _join(raw, any_server, "pipeliner", Role.PARTICIPANT)
        ids = {f"p{n}" for n in range(count)}
        reading = asyncio.ensure_future(_replies(raw, ids))
        for n in range(count):
            await raw.send(json.dumps({"type": "ping", "id": f"p{n}"}))
        answers = await asyncio.wait_for(reading, 60)

        assert {a["type"] for a in answers.values()} == {"pong"}


async def test_connections_of_one_identity_share_one_chat_budget(any_server: Endpoint) -> None:
    burst = any_server.settings.rooms.chat_burst
    async with raw_socket(any_server) as first, raw_socket(any_server) as second:
        await _join(first, any_server, "same-person", Role.PARTICIPANT)
        await _join(second, any_server, "same-person", Role.PARTICIPANT)

        outcomes = []
        for n in range(burst):
            for raw in (first, second):
                reply = await raw.request({"type": "chat", "id": f"c{n}", "text": "hi"})
                outcomes.append(reply.get("code") or reply["type"])

        assert outcomes.count("rate_limited") >= burst - 2  # refill while sending: a token or two
        assert burst <= outcomes.count("ack") <= burst + 2


async def test_command_budgets_of_different_people_are_separate(any_server: Endpoint) -> None:
    burst = any_server.settings.rooms.command_burst
    async with raw_socket(any_server) as greedy, raw_socket(any_server) as other:
        await _join(greedy, any_server, "greedy", Role.PARTICIPANT)
        await _join(other, any_server, "other", Role.PARTICIPANT)
        for n in range(burst + 5):
            await greedy.send(json.dumps({"type": "raise_hand", "id": f"g{n}"}))
        answers = await _replies(greedy, {f"g{n}" for n in range(burst + 5)})
        assert any(a.get("code") == "rate_limited" for a in answers.values())

        reply = await other.request({"type": "raise_hand", "id": "mine"})

        assert reply["type"] == "ack"


async def test_a_room_far_behind_sheds_speaking_news_and_refuses_commands_with_a_retry(
    server: RunningServer,
) -> None:
    room = server.registry.get_or_create("behind")
    news = SpeakingChanged(producer_id=ProducerId("p"), speaking=True, loudness_dbov=-20.0)
    for _ in range(INBOX_LIMIT + 10):  # synchronously: the room's task cannot run meanwhile
        room.post(news)

    with pytest.raises(RateLimited) as refused:
        await room.call(LeaveRoom(participant_id=ParticipantId("nobody")))

    assert refused.value.retry_after > 0
    assert server.registry.stats.inbox_shed == {"event": 10, "command": 1}
    await room.close()
