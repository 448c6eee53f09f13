"""Bad input from clients and from the network: each gets a precise answer or is
dropped, and nothing else breaks. Real server on loopback, real clients."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from signaling.auth import issue_token
from signaling.client import ServerError, StageClient
from signaling.roles import Role
from signaling.web.app import WORKER
from tests.integration.conftest import RunningServer
from tests.integration.helpers import member, poll_until
from tests.media import PatternTrack, ToneTrack
from tests.packets import make_rtp, make_vp8_payload
from tests.raw_socket import WAIT, open_rooms, raw_socket
from tests.server import Endpoint, running_server


def _errors(client: StageClient) -> list[dict[str, Any]]:
    return [e for e in client.events if e.get("type") == "error"]


async def _raw_error(client: StageClient, frame: str) -> dict[str, Any]:
    """Send a frame the client would never produce; return the error it earns."""
    before = len(_errors(client))
    await client.send_raw(frame)
    await client.wait_for(lambda: len(_errors(client)) > before, timeout=WAIT)
    return _errors(client)[before]


async def _assert_usable(client: StageClient) -> None:
    reply = await client.request({"type": "ping"})
    assert reply["type"] == "pong"


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float = WAIT) -> None:
    """Poll an async condition until it holds, failing after `timeout` seconds.

    For conditions nothing announces (RTP statistics, server state), so there is
    no event to wait on.
    """
    async with asyncio.timeout(timeout):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def _producer_count(server: RunningServer) -> int:
    return sum(len(router.producers) for router in server.app[WORKER].routers.values())


# -- malformed frames -------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code", "request_id"),
    [
        pytest.param("{not json", "bad_message", None, id="malformed-json"),
        pytest.param('[{"type": "ping", "id": "a1"}]', "bad_message", None, id="json-array"),
        pytest.param('"ping"', "bad_message", None, id="json-string"),
        pytest.param("", "bad_message", None, id="empty-frame"),
        pytest.param('{"type": "frobnicate", "id": "u1"}', "unknown_type", "u1", id="unknown"),
        pytest.param('{"id": "u2"}', "unknown_type", "u2", id="no-type"),
        pytest.param('{"type": 5, "id": "u3"}', "bad_message", "u3", id="numeric-type"),
        pytest.param('{"id": "u4", "type": null}', "bad_message", "u4", id="null-type"),
        pytest.param(
            '{"type": "ping", "id": "n1", "x": ' + "[" * 2000 + "]" * 2000 + "}",
            "bad_message", "n1", id="nested-2000",
        ),
        pytest.param(
            '{"type": "chat", "id": "n2", "text": ' + "[" * 60_000, "bad_message", "n2",
            id="nested-unterminated",
        ),
        pytest.param(
            '{"x": ' + '{"a": ' * 3000 + "1" + "}" * 3001, "bad_message", None,
            id="nested-objects-before-the-id",
        ),
        pytest.param(
            '{"type": "invite", "id": "r1", "target": "x", "revision": ' + "9" * 3000 + "}",
            "bad_message", "r1", id="revision-thousands-of-digits",
        ),
        pytest.param(
            '{"type": "vote", "id": "r2", "poll_id": "p", "option": 9007199254740992}',
            "bad_message", "r2", id="option-beyond-2**53",
        ),
        pytest.param(
            '{"type": "chat", "id": "c1", "text": "' + "\\ud83d\\ude00" * 1001 + '"}',
            "bad_message", "c1", id="chat-2002-utf16-units",
        ),
        pytest.param('{"type": "publish", "id": "m1"}', "bad_message", "m1", id="publish-no-sdp"),
        pytest.param(
            '{"type": "subscribe_answer", "id": "m2"}', "bad_message", "m2", id="answer-no-sdp"
        ),
        pytest.param(
            '{"type": "publish", "sdp": 42, "id": "w1"}', "bad_message", "w1", id="sdp-number"
        ),
        pytest.param(
            '{"type": "join", "token": ["t"], "id": "w2"}', "bad_message", "w2", id="token-list"
        ),
        pytest.param(
            '{"type": "join", "token": "t", "entry": "backstage", "id": "w3"}',
            "bad_message",
            "w3",
            id="unknown-entry",
        ),
        pytest.param(
            '{"type": "view_tracks", "id": "v1", "tracks": [{"track_id": "t", "height": -1}]}',
            "bad_message", "v1", id="view-negative-height",
        ),
        pytest.param(
            '{"type": "view_tracks", "id": "v2", "tracks": [{"track_id": "t", "height": 9999}]}',
            "bad_message", "v2", id="view-absurd-height",
        ),
        pytest.param(
            '{"type": "view_tracks", "id": "v3", "tracks": [{"visible": false}]}',
            "bad_message", "v3", id="view-no-track-id",
        ),
        pytest.param(
            '{"type": "view_tracks", "id": "v4", "tracks": ['
            + ",".join(['{"track_id": "t"}'] * 65)
            + "]}",
            "bad_message", "v4", id="view-too-many-tracks",
        ),
        pytest.param(
            '{"type": "view_tracks", "id": "v5", "tracks": [{"track_id": "t", "width": 3}]}',
            "bad_message", "v5", id="view-unknown-field",
        ),
        pytest.param(
            '{"type": "get_media_stats", "id": "g1", "tracks": []}', "bad_message", "g1",
            id="media-stats-unknown-field",
        ),
        pytest.param(
            '{"type": "get_media_stats", "id": ["g2"]}', "bad_message", None,
            id="media-stats-list-id",
        ),
        pytest.param('{"type": "ping", "id": 7}', "bad_message", None, id="numeric-id"),
        pytest.param(
            '{"type": "ping", "id": "e1", "extra": true}', "bad_message", "e1", id="unknown-field"
        ),
    ],
)
async def test_malformed_frame_gets_an_error_and_the_connection_stays_usable(
    any_server: Endpoint, frame: str, code: str, request_id: str | None
) -> None:
    client = await StageClient.connect(any_server.ws_url, any_server.token("bob"))
    try:
        error = await _raw_error(client, frame)

        assert error["code"] == code
        assert error["id"] == request_id
        assert error["message"]
        assert "Traceback" not in error["message"]
        await _assert_usable(client)
    finally:
        await client.close()


async def test_oversized_frame_gets_message_too_large_and_the_connection_stays_usable(
    any_server: Endpoint,
) -> None:
    limit = any_server.settings.server.max_message_bytes
    client = await StageClient.connect(any_server.ws_url, any_server.token("bob"))
    try:
        frame = json.dumps({"type": "publish", "id": "big", "sdp": "x" * (limit + 1000)})
        assert limit < len(frame) < 4 * limit

        error = await _raw_error(client, frame)

        assert error["code"] == "message_too_large"
        await _assert_usable(client)
    finally:
        await client.close()


async def test_frame_a_byte_over_the_limit_is_refused_and_one_at_the_limit_is_read(
    any_server: Endpoint,
) -> None:
    limit = any_server.settings.server.max_message_bytes
    client = await StageClient.connect(any_server.ws_url, any_server.token("bob"))
    try:
        head = '{"type": "ping", "id": "edge", "pad": "'
        at_limit = head + "x" * (limit - len(head) - 2) + '"}'
        assert len(at_limit) == limit

        error = await _raw_error(client, at_limit[:-2] + 'x"}')
        assert error["code"] == "message_too_large"
        error = await _raw_error(client, at_limit)
        assert error["code"] == "bad_message"  # read and decoded: "pad" is not a field
        assert error["id"] == "edge"
    finally:
        await client.close()


async def test_frame_beyond_four_times_the_limit_closes_only_that_connection(
    any_server: Endpoint,
) -> None:
    limit = any_server.settings.server.max_message_bytes
    bystander = await StageClient.connect(any_server.ws_url, any_server.token("bob"))
    try:
        async with raw_socket(any_server) as raw:
            await raw.send(json.dumps({"type": "ping", "id": "huge", "pad": "x" * (4 * limit)}))
            message = await raw.ws.receive(timeout=WAIT)

            assert message.type == aiohttp.WSMsgType.CLOSE
            assert message.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        await _assert_usable(bystander)
    finally:
        await bystander.close()


# -- order of commands ---------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        pytest.param({"type": "publish", "sdp": "v=0"}, id="publish"),
        pytest.param({"type": "subscribe_answer", "sdp": "v=0"}, id="subscribe_answer"),
    ],
)
async def test_commands_before_join_are_refused_with_not_joined(
    any_server: Endpoint, message: dict[str, Any]
) -> None:
    async with raw_socket(any_server) as raw:
        reply = await raw.request({**message, "id": "early"})

        assert reply["type"] == "error"
        assert reply["code"] == "not_joined"
        assert (await raw.request({"type": "ping", "id": "p"}))["type"] == "pong"
        assert await open_rooms(any_server) == 0


async def test_a_second_join_is_refused_with_already_joined(server: RunningServer) -> None:
    client = await StageClient.connect(server.ws_url, server.token("bob"))
    try:
        with pytest.raises(ServerError) as refused:
            await client.request({"type": "join", "token": server.token("bob-again")})

        assert refused.value.code == "already_joined"
        assert server.registry.rooms["demo"].member_count == 1
        await _assert_usable(client)
    finally:
        await client.close()


# -- tokens ---------------------------------------------------------------------------


def _expired_token(server: Endpoint) -> str:
    return issue_token(
        server.settings.auth.secret,
        room="demo",
        identity="late",
        name="Late",
        role=Role.PARTICIPANT,
        ttl=60,
        now=time.time() - 3600,
    )


@pytest.mark.parametrize(
    ("join", "code"),
    [
        pytest.param(lambda s: {}, "token_missing", id="missing"),
        pytest.param(lambda s: {"token": ""}, "token_missing", id="empty"),
        pytest.param(lambda s: {"token": None}, "token_missing", id="null"),
        pytest.param(lambda s: {"token": _expired_token(s)}, "token_expired", id="expired"),
        pytest.param(
            lambda s: {"token": s.token("mallory", secret="an-entirely-different-secret-0123456")},
            "token_invalid",
            id="forged",
        ),
        pytest.param(lambda s: {"token": "not.a.jwt"}, "token_invalid", id="garbage"),
        pytest.param(
            lambda s: {"token": s.token("bob", room="demo"), "room": "other"},
            "token_wrong_room",
            id="wrong-room",
        ),
    ],
)
async def test_bad_tokens_are_refused_with_a_precise_code(
    any_server: Endpoint,
    join: Callable[[Endpoint], dict[str, Any]],
    code: str,
) -> None:
    async with raw_socket(any_server) as raw:
        reply = await raw.request({"type": "join", "id": "j", **join(any_server)})

        assert reply["type"] == "error"
        assert reply["code"] == code
        assert await open_rooms(any_server) == 0
        assert (await raw.request({"type": "ping", "id": "p"}))["type"] == "pong"
        # The refusal does not poison the connection: a good token still joins.
        joined = await raw.request({"type": "join", "id": "j2", "token": any_server.token("bob")})
        assert joined["type"] == "joined"


# -- SDP ----------------------------------------------------------------------------


def _without_ice_credentials(sdp: str) -> str:
    return "".join(
        line
        for line in sdp.splitlines(keepends=True)
        if not line.startswith(("a=ice-ufrag:", "a=ice-pwd:"))
    )


async def test_garbage_sdp_in_publish_is_refused_with_invalid_sdp(server: RunningServer) -> None:
    client = await StageClient.connect(server.ws_url, server.token("alice"), entry="stage")
    try:
        with pytest.raises(ServerError) as refused:
            await client.request({"type": "publish", "sdp": "this is not SDP\r\nat all"})

        assert refused.value.code == "invalid_sdp"
        assert _producer_count(server) == 0
        await _assert_usable(client)
    finally:
        await client.close()


async def test_offer_without_ice_credentials_is_refused_and_a_good_one_still_works(
    server: RunningServer,
) -> None:
    client = await StageClient.connect(server.ws_url, server.token("alice"), entry="stage")
    try:
        with pytest.raises(ServerError) as refused:
            await client.publish([ToneTrack()], munge=_without_ice_credentials)
        assert refused.value.code == "invalid_sdp"
        assert "ice" in refused.value.message.lower()
        assert _producer_count(server) == 0

        await client.publish([ToneTrack()])
        assert _producer_count(server) == 1
    finally:
        await client.close()


def _with_unmatched_simulcast(sdp: str) -> str:
    """aiortc's offer with the rid extension and a=simulcast appended to its (last,
    video) m-section, naming rids that have no a=rid lines."""
    assert sdp.rfind("m=video") > sdp.rfind("m=audio")
    rid = "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n"
    return sdp + rid + "a=simulcast:send q;h;f\r\n"


async def test_a_simulcast_offer_without_rid_lines_is_refused_with_invalid_sdp(
    server: RunningServer,
) -> None:
    client = await StageClient.connect(server.ws_url, server.token("alice"), entry="stage")
    try:
        with pytest.raises(ServerError) as refused:
            await client.publish([PatternTrack()], munge=_with_unmatched_simulcast)
        assert refused.value.code == "invalid_sdp"
        assert "without an 'a=rid:q send' line" in refused.value.message
        assert _producer_count(server) == 0

        await client.publish([PatternTrack()])
        assert _producer_count(server) == 1
    finally:
        await client.close()


async def test_a_viewer_cannot_publish_and_no_producer_is_created(server: RunningServer) -> None:
    stage = await StageClient.connect(server.ws_url, server.token("alice"), entry="stage")
    viewer = await StageClient.connect(server.ws_url, server.token("bob"))
    try:
        with pytest.raises(ServerError) as refused:
            await viewer.publish([ToneTrack(), PatternTrack()])

        assert refused.value.code == "forbidden"
        members = server.registry.rooms["demo"].members
        assert len(members) == 2
        assert all(not member.producers for member in members.values())
        assert _producer_count(server) == 0
        assert not [e for e in stage.events if e.get("type") == "participant_updated"]
        await _assert_usable(viewer)
    finally:
        await viewer.close()
        await stage.close()


# -- garbage on the media ports --------------------------------------------------------


def _candidates(sdp: str) -> set[tuple[str, int]]:
    out = set()
    for line in sdp.splitlines():
        if line.startswith("a=candidate:"):
            parts = line.split()
            if parts[2].lower() == "udp":
                out.add((parts[4], int(parts[5])))
    return out


def _video_ssrc(sdp: str) -> int:
    in_video = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            in_video = line.startswith("m=video")
        elif in_video and line.startswith("a=ssrc:"):
            return int(line[7:].split()[0])
    raise AssertionError("no video SSRC in the offer")


def _stun(
    rng: random.Random, message_type: int, attributes: bytes = b"", *, length: int | None = None
) -> bytes:
    """A STUN header (RFC 5389 §6) with the magic cookie, then `attributes`."""
    size = len(attributes) if length is None else length
    return struct.pack("!HHI", message_type, size, 0x2112A442) + rng.randbytes(12) + attributes


def _garbage(publisher_ssrc: int) -> dict[str, list[bytes]]:
    rng = random.Random(20240601)
    username = b"nobody:nothing"
    username_attr = struct.pack("!HH", 0x0006, len(username)) + username + b"\x00" * 2
    integrity_attr = struct.pack("!HH", 0x0008, 20) + rng.randbytes(20)
    return {
        "empty datagram": [b""] * 5,
        "random bytes": [rng.randbytes(rng.randint(1, 1200)) for _ in range(300)],
        "fake rtp": [
            make_rtp(seq, seq * 3000, publisher_ssrc, pt, payload=make_vp8_payload(True))
            for seq in range(50)
            for pt in (96, 97, 111)
        ],
        "truncated rtcp": [
            bytes([0x80, 200, 0x00, 0x06]) + rng.randbytes(8),  # SR claiming 28 octets
            bytes([0x81, 205, 0x00, 0x03]) + rng.randbytes(4),  # NACK cut short
            bytes([0x81, 206]),  # PLI header only
            bytes([0x8F, 206, 0xFF, 0xFF]) + rng.randbytes(3),  # REMB-ish, huge length
        ]
        * 20,
        "stun-looking": [
            _stun(rng, 0x0001),  # binding request without USERNAME or integrity
            _stun(rng, 0x0001, username_attr + integrity_attr),  # wrong credentials
            _stun(rng, 0x0101),  # a success response nobody asked for
            _stun(rng, 0x0111, rng.randbytes(8)),  # an error response nobody asked for
            _stun(rng, 0x0001, rng.randbytes(10), length=400),  # header says more than is there
            struct.pack("!HHI", 0x0001, 0, 0x2112A442)[:10],  # truncated header
        ]
        * 20,
        # Found by tools/fuzz: a one-byte "RTP" datagram indexed past its end, and SRTP
        # longer than libsrtp's buffer raised out of the socket callback.
        "srtp-shaped": [b"\x80", b"\xbf", bytes([0x90, 0x60])]
        + [bytes([0x80, 0x60]) + rng.randbytes(size) for size in (1600, 4000, 9000)],
        "dtls-looking": [
            bytes([0x16, 0xFE, 0xFD]) + bytes(8) + struct.pack("!H", 60) + rng.randbytes(60),
            bytes([0x15, 0xFE, 0xFD]) + bytes(8) + struct.pack("!H", 2) + b"\x01\x00",  # alert
            bytes([0x17, 0xFE, 0xFD, 0x00, 0x01]) + rng.randbytes(40),  # application data
            bytes([0x14, 0xFE, 0xFD]),  # change cipher spec, truncated
        ]
        * 20,
    }


GARBAGE_KINDS = (
    "empty datagram",
    "random bytes",
    "fake rtp",
    "truncated rtcp",
    "stun-looking",
    "dtls-looking",
    "srtp-shaped",
)


async def _video_packets_received(client: StageClient) -> int:
    report = await client.subscriber.getStats()
    return sum(
        int(stats.packetsReceived)
        for stats in report.values()
        if stats.type == "inbound-rtp" and stats.kind == "video"
    )


async def _wait_for_more_video(client: StageClient, than: int, by: int = 10) -> int:
    count = than

    async def more() -> bool:
        nonlocal count
        count = await _video_packets_received(client)
        return count >= than + by

    await _eventually(more)
    return count


@asynccontextmanager
async def _stage_and_viewer(
    server: RunningServer,
) -> AsyncIterator[tuple[StageClient, StageClient]]:
    publisher = await StageClient.connect(server.ws_url, server.token("alice"), entry="stage")
    viewer = await StageClient.connect(server.ws_url, server.token("bob"))
    try:
        await publisher.publish([ToneTrack(amplitude=0.2), PatternTrack()])
        await viewer.wait_for(
            lambda: {t.track.kind for t in viewer.tracks} == {"audio", "video"}, timeout=WAIT
        )
        yield publisher, viewer
    finally:
        await viewer.close()
        await publisher.close()


def _media_addresses(publisher: StageClient, viewer: StageClient) -> set[tuple[str, int]]:
    assert publisher.publisher is not None
    answer = publisher.publisher.remoteDescription.sdp
    offer = next(e for e in viewer.events if e.get("type") == "subscribe_offer")["sdp"]
    addresses = _candidates(answer) | _candidates(offer)
    assert len(addresses) == 2, addresses  # the publisher's and the viewer's transports
    return addresses


@pytest.mark.parametrize("kind", GARBAGE_KINDS)
async def test_garbage_on_the_media_ports_does_not_interrupt_forwarding(
    server: RunningServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    async with _stage_and_viewer(server) as (publisher, viewer):
        addresses = _media_addresses(publisher, viewer)
        assert publisher.publisher is not None
        garbage = _garbage(_video_ssrc(publisher.publisher.localDescription.sdp))[kind]
        count = await _wait_for_more_video(viewer, 0)

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _round in range(3):
                for datagram in garbage:
                    for address in addresses:
                        sock.sendto(datagram, address)
                count = await _wait_for_more_video(viewer, count)

        await _wait_for_more_video(viewer, count, by=20)
        await _assert_usable(viewer)
        await _assert_usable(publisher)
        for client in (publisher, viewer):
            assert not [e for e in client.events if e.get("type") in ("bye", "participant_left")]
        assert server.registry.rooms["demo"].member_count == 2
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "raised, not dropped"


# -- disconnects ------------------------------------------------------------------------


async def test_closing_the_websocket_without_leave_tells_the_others() -> None:
    # No grace period: a dropped connection is a departure (see test_reconnect.py for grace).
    async with running_server({"rooms.reconnect_grace": 0}) as server:
        observer = await StageClient.connect(server.ws_url, server.token("bob"))
        leaver = await StageClient.connect(server.ws_url, server.token("alice"), entry="stage")
        try:
            await leaver.publish([ToneTrack(amplitude=0.2)])
            leaver_id = leaver.participant_id

            await leaver.close()  # the WebSocket closes; no `leave` is sent

            left = await observer.wait_event(
                lambda e: e.get("type") == "participant_left", timeout=WAIT
            )
            assert left["participant_id"] == leaver_id
            assert server.registry.rooms["demo"].member_count == 1
            await _eventually(_async(lambda: _producer_count(server) == 0))
        finally:
            await observer.close()


async def test_a_dropped_tcp_connection_tells_the_others() -> None:
    async with running_server({"rooms.reconnect_grace": 0}) as server:
        await _dropped_tcp_connection_tells_the_others(server)


async def _dropped_tcp_connection_tells_the_others(server: RunningServer) -> None:
    # A host sees every participant come and go (plain viewers only get counts).
    observer = await StageClient.connect(server.ws_url, server.token("bob", role=Role.HOST))
    try:
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(server.ws_url)
        try:
            await ws.send_json({"type": "join", "id": "j", "token": server.token("carol")})
            joined = await ws.receive_json(timeout=WAIT)
            assert joined["type"] == "joined"
        finally:
            await session.close()  # tears the TCP connection down: no close frame, no leave

        left = await observer.wait_event(
            lambda e: e.get("type") == "participant_left", timeout=WAIT
        )
        assert left["participant_id"] == joined["participant_id"]
        assert server.registry.rooms["demo"].member_count == 1
    finally:
        await observer.close()


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        return check()

    return run


# -- overload -------------------------------------------------------------------------


async def test_rtp_that_waited_too_long_in_a_socket_is_dropped_unread(
    server: RunningServer,
) -> None:
    async with _stage_and_viewer(server) as (publisher, viewer):
        assert publisher.publisher is not None
        (address,) = _candidates(publisher.publisher.remoteDescription.sdp)
        transport = member(server, publisher.participant_id).send_transport
        assert transport is not None and transport.packets_late == 0
        count = await _wait_for_more_video(viewer, 0)
        rtp = bytes([0x80, 96]) + bytes(10) + b"\x00" * 100  # RTP-shaped; never decrypted
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(5):
                sock.sendto(rtp, address)
            time.sleep(0.7)  # noqa: ASYNC251 - the point: a worker too busy to read
        # Dropped on their age alone (media.max_ingress_delay 0.5 s), before SRTP.
        await poll_until(lambda: transport.packets_late >= 5)
        await _wait_for_more_video(viewer, count, by=20)  # and forwarding goes on
