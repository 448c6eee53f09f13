"""TURN REST API credentials (coturn's use-auth-secret) and the ICE servers a client gets."""

from __future__ import annotations

import msgspec
import pytest

from signaling import protocol as wire
from signaling.settings import TurnSettings
from signaling.turn_credentials import ice_servers, turn_credentials

SECRET = "north-wind-shared-secret"
# Computed apart from the code under test, with
#   printf '%s' '1735689600:alice@example.com' \
#     | openssl dgst -sha1 -hmac 'north-wind-shared-secret' -binary | base64
KNOWN = ("1735689600:alice@example.com", "i7W6VwKB6KHhDj66KBmLUuN8uTI=")
KNOWN_UTF8 = ("1735689600:zoë:two", "uUjg7hovfJaREdBYm80roCxLqZ4=")


def test_credentials_match_a_vector_computed_with_openssl() -> None:
    credentials = turn_credentials(SECRET, "alice@example.com", expires=1735689600)
    assert (credentials.username, credentials.credential) == KNOWN


def test_identities_are_hashed_as_utf8_and_may_contain_the_separator() -> None:
    # coturn reads the expiry up to the first colon, so the identity may hold more.
    credentials = turn_credentials(SECRET, "zoë:two", expires=1735689600)
    assert (credentials.username, credentials.credential) == KNOWN_UTF8


def test_another_secret_gives_another_credential() -> None:
    other = turn_credentials("south-wind-shared-secret", "alice@example.com", expires=1735689600)
    assert other.username == KNOWN[0]
    assert other.credential != KNOWN[1]


def test_the_credential_is_not_in_the_repr() -> None:
    credentials = turn_credentials(SECRET, "alice", expires=1735689600)
    assert credentials.credential not in repr(credentials)


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        turn_credentials("", "alice", expires=1735689600)


def test_no_urls_means_no_ice_servers() -> None:
    assert ice_servers(TurnSettings(), "alice", now=1_700_000_000.0) == []


def test_stun_urls_come_without_credentials_and_turn_urls_with_them() -> None:
    turn = TurnSettings(
        urls=(
            "stun:stun.example.com",
            "turn:turn.example.com:3478?transport=udp",
            "turn:turn.example.com:3478?transport=tcp",
            "turns:turn.example.com:443?transport=tcp",
        ),
        secret=SECRET,
        credential_lifetime=3600.0,
    )
    stun, relay = ice_servers(turn, "alice@example.com", now=1735686000.4)
    assert stun == wire.IceServer(urls=["stun:stun.example.com"])
    assert relay.urls == [
        "turn:turn.example.com:3478?transport=udp",
        "turn:turn.example.com:3478?transport=tcp",
        "turns:turn.example.com:443?transport=tcp",
    ]
    # expires = now + lifetime, whole seconds: the known vector again.
    assert (relay.username, relay.credential) == KNOWN


def test_each_join_gets_credentials_expiring_a_lifetime_later() -> None:
    turn = TurnSettings(urls=("turn:t.example",), secret=SECRET, credential_lifetime=600.0)
    (first,) = ice_servers(turn, "bob", now=1_700_000_000.0)
    (later,) = ice_servers(turn, "bob", now=1_700_000_900.0)
    assert first.username == "1700000600:bob"
    assert later.username == "1700001500:bob"
    assert first.credential != later.credential


def test_stun_only_servers_encode_without_credential_fields() -> None:
    turn = TurnSettings(urls=("stun:stun.example.com",))
    assert msgspec.json.encode(ice_servers(turn, "a", now=0.0)) == (
        b'[{"urls":["stun:stun.example.com"]}]'
    )
