"""What a connection gets before it joins and as it leaves, with one worker and with the
default deployment (a front relaying to two workers): the same answers, in the same
order, and a clean close."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import aiohttp
import pytest

from signaling.roles import Role
from signaling.settings import load_settings
from tests.integration.front import front, worker_samples
from tests.raw_socket import WAIT, RawSocket, open_rooms, raw_socket
from tests.server import Endpoint, FrontServer, RunningServer

NESTED = '{"type": "ping", "id": "deep", "x": ' + "[" * 2000 + "]" * 2000 + "}"


async def _closed_with(raw: RawSocket) -> int:
    """Read until the server's close frame; its code (1006 if the socket just dropped)."""
    while True:
        message = await raw.ws.receive(timeout=WAIT)
        if message.type == aiohttp.WSMsgType.CLOSE:
            return int(message.data)
        if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return 1006
        raw.events.append(json.loads(message.data))


@pytest.mark.parametrize(
    ("message", "reply"),
    [
        pytest.param({"type": "ping"}, {"type": "pong"}, id="ping"),
        pytest.param({"type": "chat", "text": "hi"}, {"type": "error", "code": "not_joined"},
                     id="chat"),
        pytest.param({"type": "raise_hand"}, {"type": "error", "code": "not_joined"},
                     id="raise_hand"),
        pytest.param({"type": "publish", "sdp": "v=0"}, {"type": "error", "code": "not_joined"},
                     id="publish"),
        pytest.param({"type": "get_media_stats"}, {"type": "error", "code": "not_joined"},
                     id="get_media_stats"),
    ],
)
async def test_a_message_before_join_is_answered_and_join_still_works(
    any_server: Endpoint, message: dict[str, Any], reply: dict[str, Any]
) -> None:
    async with raw_socket(any_server) as raw:
        answer = await raw.request({**message, "id": "early"})

        assert {key: answer.get(key) for key in reply} == reply
        joined = await raw.request({"type": "join", "id": "j", "token": any_server.token("bob")})
        assert joined["type"] == "joined"


async def test_leave_before_join_is_acknowledged_with_bye_and_a_normal_close(
    any_server: Endpoint,
) -> None:
    async with raw_socket(any_server) as raw:
        ack = await raw.request({"type": "leave", "id": "bye-now"})

        assert ack == {"type": "ack", "id": "bye-now"}
        assert await _closed_with(raw) == 1000
        assert raw.events == [{"type": "bye", "reason": "left"}]


@pytest.mark.parametrize("joined", [False, True], ids=["first-frame", "after-join"])
async def test_a_deeply_nested_frame_is_bad_message_with_its_id_and_the_socket_stays(
    any_server: Endpoint, joined: bool
) -> None:
    async with raw_socket(any_server) as raw:
        if joined:
            await raw.request({"type": "join", "id": "j", "token": any_server.token("bob")})

        error = await raw.request_frame(NESTED, "deep")

        assert (error["type"], error["code"], error["id"]) == ("error", "bad_message", "deep")
        assert (await raw.request({"type": "ping", "id": "p"}))["type"] == "pong"


async def test_leave_then_more_frames_still_ends_with_ack_bye_and_a_normal_close(
    any_server: Endpoint,
) -> None:
    for attempt in range(12):
        async with raw_socket(any_server) as raw:
            await raw.request({"type": "join", "id": "j", "token": any_server.token(f"p{attempt}")})
            await raw.send(json.dumps({"type": "leave", "id": "l"}))
            with contextlib.suppress(ConnectionError):  # the server may close first
                for n in range(20):  # the worker has stopped reading by now
                    await raw.send(json.dumps({"type": "ping", "id": f"late{n}"}))

            assert await _closed_with(raw) == 1000
            after_leave = raw.events[[e.get("id") for e in raw.events].index("l"):]
            assert after_leave == [{"type": "ack", "id": "l"}, {"type": "bye", "reason": "left"}]


@pytest.mark.parametrize(
    ("role", "entry", "sequence"),
    [
        pytest.param(Role.HOST, "stage", ["queues", "joined"], id="host-on-stage"),
        pytest.param(Role.HOST, "viewer", ["queues", "joined"], id="host-as-viewer"),
        pytest.param(Role.MODERATOR, "stage", ["queues", "joined"], id="moderator-on-stage"),
        pytest.param(Role.PARTICIPANT, "viewer", ["joined"], id="participant-as-viewer"),
    ],
)
async def test_the_join_sequence_is_the_documented_one(
    any_server: Endpoint, role: Role, entry: str, sequence: list[str]
) -> None:
    async with raw_socket(any_server) as raw:
        token = any_server.token("first", role=role)
        await raw.request({"type": "join", "id": "j", "token": token, "entry": entry})

        assert [e["type"] for e in raw.events] + ["joined"] == sequence


async def test_bad_frames_are_logged_once_per_connection(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="signaling")
    async with raw_socket(server) as raw:
        for _ in range(5):
            error = await raw.request_frame(NESTED, "deep")
            assert error["code"] == "bad_message"
        await raw.request({"type": "ping", "id": "p"})

    logged = [r for r in caplog.records if r.levelno >= logging.INFO and "bad frame" in r.message]
    assert len(logged) == 1
    assert not [r for r in caplog.records if r.exc_info]


async def test_a_join_racing_the_last_member_out_of_the_room_always_joins(
    any_server: Endpoint,
) -> None:
    outcomes: list[str] = []
    for attempt in range(30):
        room = f"race-{attempt}"
        async with raw_socket(any_server) as last, raw_socket(any_server) as newcomer:
            token = any_server.token("last", room=room)
            await last.request({"type": "join", "id": "j", "token": token})
            leave = json.dumps({"type": "leave", "id": "l"})
            join = json.dumps({"type": "join", "id": "j",
                               "token": any_server.token("new", room=room)})  # fmt: skip
            # Both frames at once: the join lands while the room is being torn down.
            await asyncio.gather(last.send(leave), newcomer.send(join))

            reply = await newcomer.answer("j")
            outcomes.append(reply.get("code") or reply["type"])
            if reply["type"] == "joined":
                assert (await newcomer.request({"type": "ping", "id": "p2"}))["type"] == "pong"

    assert outcomes == ["joined"] * 30


async def test_the_front_counts_what_it_answers_before_join() -> None:
    async with front(2) as (port, _):
        settings = load_settings(overrides={"server.port": port}, env={})
        async with raw_socket(FrontServer(settings=settings, port=port, workers=2)) as raw:
            for n in range(3):
                await raw.request({"type": "ping", "id": f"p{n}"})
            await raw.request({"type": "chat", "id": "c", "text": "too early"})

        received = await worker_samples(port, "stage_sfu_signaling_messages_total")
        rejected = await worker_samples(port, "stage_sfu_commands_rejected_total")

    assert received[("front", (("direction", "in"), ("type", "ping")))] == 3
    assert received[("front", (("direction", "out"), ("type", "pong")))] == 3
    assert rejected[("front", (("command", "chat"), ("reason", "not_joined")))] == 1


@pytest.mark.parametrize(
    "resume_token", ["é", "\u0000", "🙂" * 10, "x" * 128], ids=["accent", "nul", "emoji", "longest"]
)
async def test_a_resume_with_any_unknown_token_is_resume_failed(
    any_server: Endpoint, resume_token: str
) -> None:
    async with raw_socket(any_server) as member, raw_socket(any_server) as stranger:
        await member.request({"type": "join", "id": "j", "token": any_server.token("member")})

        reply = await stranger.request(
            {"type": "resume", "id": "r", "room": "demo", "resume_token": resume_token}
        )

        assert (reply["type"], reply["code"]) == ("error", "resume_failed")


async def test_a_refused_first_join_leaves_no_empty_room_behind(any_server: Endpoint) -> None:
    for n in range(5):
        async with raw_socket(any_server) as raw:
            token = any_server.token("watcher", room=f"never-{n}")
            reply = await raw.request(
                {"type": "join", "id": "j", "token": token, "entry": "stage", "viewer_only": True}
            )
            assert reply["code"] == "forbidden"

    assert await open_rooms(any_server) == 0
