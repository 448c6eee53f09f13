"""`joined.ice_servers`: the configured STUN/TURN servers, TURN with credentials minted
for each join and each resume; the same with one worker and with a front and workers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import time
from typing import Any

import pytest

from signaling.roles import Role
from tests.raw_socket import RawSocket
from tests.server import Endpoint

SECRET = "a-coturn-static-auth-secret"
LIFETIME = 600
STUN = "stun:turn.example.com:3478"
RELAYS = ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:443?transport=tcp"]
TURN = {"turn.urls": [STUN, *RELAYS], "turn.secret": SECRET, "turn.credential_lifetime": LIFETIME}


async def join(server: Endpoint, identity: str) -> tuple[RawSocket, dict[str, Any]]:
    raw = await RawSocket.open(server)
    token = server.token(identity, role=Role.PARTICIPANT)
    reply = await raw.request({"type": "join", "id": "j", "token": token})
    assert reply["type"] == "joined", reply
    return raw, reply


def expected_relay(identity: str, expires: int) -> dict[str, Any]:
    """What coturn accepts with `use-auth-secret` (computed here, not by the server's code)."""
    username = f"{expires}:{identity}"
    digest = hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()
    return {"urls": RELAYS, "username": username, "credential": base64.b64encode(digest).decode()}


def expiry(server: dict[str, Any]) -> int:
    return int(server["username"].split(":", 1)[0])


def within(stamp: int, before: float, after: float) -> bool:
    return math.floor(before + LIFETIME) <= stamp <= math.floor(after + LIFETIME)


@pytest.mark.server_settings(TURN)
async def test_joined_carries_stun_plain_and_turn_with_credentials_for_this_identity(
    any_server: Endpoint,
) -> None:
    before = time.time()
    raw, joined = await join(any_server, "ida")
    after = time.time()
    try:
        stun, relay = joined["ice_servers"]
        assert stun == {"urls": [STUN]}  # no username or credential fields at all
        assert within(expiry(relay), before, after), (relay, before, after)
        assert relay == expected_relay("ida", expiry(relay))
        assert SECRET not in json.dumps(joined)
    finally:
        await raw.close()


@pytest.mark.server_settings(TURN)
async def test_a_resume_hands_out_fresh_credentials(any_server: Endpoint) -> None:
    raw, joined = await join(any_server, "rosa")
    first = joined["ice_servers"][1]
    await raw.close()  # dropped, not left: the seat waits for a resume
    # Credentials are stamped in whole seconds: resume in a later second than the join.
    await asyncio.sleep(max(0.0, expiry(first) - LIFETIME + 1 - time.time()))

    back = await RawSocket.open(any_server)
    try:
        before = time.time()
        resumed = await back.request(
            {
                "type": "resume",
                "id": "r",
                "room": joined["room"],
                "resume_token": joined["resume_token"],
            }
        )
        after = time.time()
        assert resumed["type"] == "joined", resumed
        relay = resumed["ice_servers"][1]
        assert expiry(relay) > expiry(first)
        assert within(expiry(relay), before, after), (relay, before, after)
        assert relay == expected_relay("rosa", expiry(relay))
    finally:
        await back.close()


async def test_without_configured_servers_joined_lists_none(any_server: Endpoint) -> None:
    raw, joined = await join(any_server, "nia")
    try:
        assert joined["ice_servers"] == []
    finally:
        await raw.close()
