"""Join tokens: what is accepted, what is refused, and with which code. Time is injected."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import jwt
import pytest

from signaling.auth import (
    Grants,
    TokenError,
    TokenErrorCode,
    issue_token,
    verify_token,
)
from signaling.roles import Role

# 64 bytes so the same key can also sign HS512 forgeries without PyJWT key-length warnings.
SECRET = "test-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef!!"
OTHER_SECRET = "another-secret-0123456789abcdef-0123456789abcdef-0123456789abcd"
NOW = 1_700_000_000.0
TTL = 3600.0


def make_token(**changes: Any) -> str:
    fields: dict[str, Any] = {
        "room": "town-hall",
        "identity": "alice",
        "name": "Alice",
        "role": Role.PARTICIPANT,
        "ttl": TTL,
        "now": NOW,
    }
    fields.update(changes)
    return issue_token(SECRET, **fields)


def sign(claims: dict[str, Any], *, key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def valid_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "room": "town-hall",
        "sub": "alice",
        "name": "Alice",
        "role": "participant",
        "iat": int(NOW),
        "exp": int(NOW + TTL),
    }
    claims.update(changes)
    return claims


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def refusal(
    token: str | None, *, room: str | None = "town-hall", now: float = NOW, leeway: float = 5
) -> TokenError:
    with pytest.raises(TokenError) as info:
        verify_token(SECRET, token, room=room, now=now, leeway=leeway)
    return info.value


# --- accepted ---------------------------------------------------------------------------


def test_issued_token_verifies_to_its_grants() -> None:
    grants = verify_token(SECRET, make_token(role=Role.HOST), room="town-hall", now=NOW + 10)
    assert grants == Grants(
        room="town-hall", identity="alice", name="Alice", role=Role.HOST, expires_at=NOW + TTL
    )


def test_token_carries_exactly_the_documented_claims_signed_with_hs256() -> None:
    token = make_token()
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims == valid_claims()


def test_room_check_is_skipped_when_no_room_is_given() -> None:
    assert verify_token(SECRET, make_token(), room=None, now=NOW).room == "town-hall"


def test_empty_display_name_is_allowed() -> None:
    assert verify_token(SECRET, make_token(name=""), room=None, now=NOW).name == ""


@pytest.mark.parametrize("role", list(Role))
def test_every_role_round_trips(role: Role) -> None:
    assert verify_token(SECRET, make_token(role=role), room=None, now=NOW).role is role


# --- refused ----------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, ""])
def test_missing_token(token: str | None) -> None:
    assert refusal(token).code == TokenErrorCode.TOKEN_MISSING


def test_expired_token() -> None:
    error = refusal(make_token(), now=NOW + TTL + 60)
    assert error.code == "token_expired"


def test_leeway_accepts_small_clock_skew_on_expiry() -> None:
    token = make_token()
    verify_token(SECRET, token, room=None, now=NOW + TTL + 3, leeway=5)
    assert refusal(token, now=NOW + TTL + 3, leeway=0).code == "token_expired"
    assert refusal(token, now=NOW + TTL + 5, leeway=5).code == "token_expired"


def test_token_expires_at_exp_without_leeway() -> None:
    token = make_token()
    verify_token(SECRET, token, room=None, now=NOW + TTL - 0.001, leeway=0)
    assert refusal(token, now=NOW + TTL, leeway=0).code == "token_expired"


def test_token_issued_in_the_future_beyond_leeway_is_invalid() -> None:
    token = make_token(now=NOW + 60)
    assert refusal(token, now=NOW).code == "token_invalid"
    verify_token(SECRET, make_token(now=NOW + 4), room=None, now=NOW, leeway=5)


def test_token_not_valid_before_nbf() -> None:
    assert refusal(sign(valid_claims(nbf=NOW + 60))).code == "token_invalid"


def test_forged_signature() -> None:
    assert refusal(sign(valid_claims(), key=OTHER_SECRET)).code == "token_invalid"


def test_tampered_payload_keeps_the_old_signature_and_is_refused() -> None:
    header, _, signature = make_token().split(".")
    promoted = b64(json.dumps(valid_claims(role="host")).encode())
    assert refusal(f"{header}.{promoted}.{signature}").code == "token_invalid"


def test_alg_none_is_refused() -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps(valid_claims(role="host")).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        assert refusal(token).code == "token_invalid"


def test_other_hmac_algorithms_are_refused_even_with_the_right_secret() -> None:
    assert refusal(sign(valid_claims(), algorithm="HS512")).code == "token_invalid"


def test_wrong_room() -> None:
    assert refusal(make_token(), room="other-room").code == "token_wrong_room"


def test_unknown_role() -> None:
    error = refusal(sign(valid_claims(role="admin")))
    assert (error.code, error.message) == ("token_invalid", "unknown role")


@pytest.mark.parametrize("claim", ["room", "sub", "name", "role", "iat", "exp"])
def test_every_claim_is_required(claim: str) -> None:
    claims = valid_claims()
    del claims[claim]
    assert refusal(sign(claims)).code == "token_invalid"


@pytest.mark.parametrize(
    "changes",
    [
        {"exp": "tomorrow"},
        {"iat": True},
        {"room": ""},
        {"room": "r" * 129},
        {"sub": 42},
        {"sub": ""},
        {"name": "n" * 65},
        {"role": ["host"]},
    ],
    ids=repr,
)
def test_malformed_claims_are_invalid(changes: dict[str, Any]) -> None:
    assert refusal(sign(valid_claims(**changes)), room=None).code == "token_invalid"


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "a.b", "...."])
def test_malformed_token(token: str) -> None:
    assert refusal(token).code == "token_invalid"


def test_token_error_exposes_code_and_message() -> None:
    error = TokenError("token_expired", "token has expired")
    assert error.code is TokenErrorCode.TOKEN_EXPIRED
    assert error.message == "token has expired"
    assert str(error) == "token_expired: token has expired"
    with pytest.raises(ValueError):
        TokenError("no_such_code", "?")


# --- issuing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"room": ""},
        {"identity": ""},
        {"room": "r" * 129},
        {"identity": "i" * 129},
        {"name": "n" * 65},
        {"ttl": 0},
        {"ttl": -1.0},
        {"ttl": float("inf")},
        {"role": "admin"},
    ],
    ids=repr,
)
def test_issue_rejects_bad_arguments(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        make_token(**changes)


def test_issue_accepts_the_longest_allowed_values() -> None:
    token = make_token(room="r" * 128, identity="i" * 128, name="n" * 64)
    assert verify_token(SECRET, token, room=None, now=NOW).identity == "i" * 128


def test_secrets_shorter_than_the_hash_are_refused_on_both_sides() -> None:
    short = "s" * 31
    with pytest.raises(ValueError, match="32 bytes"):
        issue_token(short, room="r", identity="i", name="", role=Role.HOST, ttl=1, now=NOW)
    with pytest.raises(ValueError, match="32 bytes"):
        verify_token(short, make_token(), room=None, now=NOW)


def test_grants_are_immutable_and_validated() -> None:
    grants = verify_token(SECRET, make_token(), room=None, now=NOW)
    with pytest.raises(dataclasses.FrozenInstanceError):
        grants.role = Role.HOST  # type: ignore[misc]
    with pytest.raises(TypeError):
        dataclasses.replace(grants, role="host")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        dataclasses.replace(grants, room="")
