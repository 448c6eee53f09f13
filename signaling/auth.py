"""Join tokens: HS256 JWTs (RFC 7519) that grant one identity a role in one room.

Claims: ``room``, ``sub`` (identity), ``name`` (display name), ``role``, ``iat``, ``exp``.
Time is always passed in (``now``, Unix seconds), so expiry is testable and the module never
reads a clock; PyJWT's own time checks are therefore switched off and done here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt

from signaling.roles import Role

__all__ = [
    "ALGORITHM",
    "MAX_IDENTITY_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_ROOM_LENGTH",
    "MIN_SECRET_LENGTH",
    "Grants",
    "TokenError",
    "TokenErrorCode",
    "issue_token",
    "verify_token",
]

ALGORITHM = "HS256"
"""The only algorithm accepted: a shared secret, and no ``alg`` negotiation to attack."""
MIN_SECRET_LENGTH = 32
"""RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output."""
MAX_ROOM_LENGTH = 128
MAX_IDENTITY_LENGTH = 128
MAX_NAME_LENGTH = 64

# Time checks are ours (injected clock); everything else stays PyJWT's default. Typed Any
# because PyJWT's options type changed across the supported versions.
_DECODE_OPTIONS: Any = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}


class TokenErrorCode(StrEnum):
    TOKEN_MISSING = "token_missing"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_INVALID = "token_invalid"
    TOKEN_WRONG_ROOM = "token_wrong_room"


class TokenError(Exception):
    """A join token was refused. ``code`` is stable for clients; ``message`` is safe to show."""

    def __init__(self, code: TokenErrorCode | str, message: str) -> None:
        super().__init__(code, message)
        self.code = TokenErrorCode(code)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Grants:
    """What a verified token allows: ``identity`` may join ``room`` as ``role``."""

    room: str
    identity: str
    name: str
    role: Role
    expires_at: float
    """Unix seconds (the ``exp`` claim)."""

    def __post_init__(self) -> None:
        _check_text("room", self.room, MAX_ROOM_LENGTH, allow_empty=False)
        _check_text("identity", self.identity, MAX_IDENTITY_LENGTH, allow_empty=False)
        _check_text("name", self.name, MAX_NAME_LENGTH, allow_empty=True)
        if not isinstance(self.role, Role):
            raise TypeError(f"role must be a Role, got {self.role!r}")
        if not math.isfinite(self.expires_at):
            raise ValueError(f"expires_at must be finite, got {self.expires_at!r}")


def _check_text(field: str, value: object, limit: int, *, allow_empty: bool) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str, got {type(value).__name__}")
    if not value and not allow_empty:
        raise ValueError(f"{field} must not be empty")
    if len(value) > limit:
        raise ValueError(f"{field} must be at most {limit} characters, got {len(value)}")


def _check_secret(secret: str) -> bytes:
    key = secret.encode()
    if len(key) < MIN_SECRET_LENGTH:
        # A server misconfiguration, not the client's fault, hence not a TokenError.
        raise ValueError(f"secret must be at least {MIN_SECRET_LENGTH} bytes (RFC 7518 3.2)")
    return key


def issue_token(
    secret: str, *, room: str, identity: str, name: str, role: Role, ttl: float, now: float
) -> str:
    """Sign a join token valid from ``now`` for ``ttl`` seconds (whole seconds, truncated)."""
    key = _check_secret(secret)
    _check_text("room", room, MAX_ROOM_LENGTH, allow_empty=False)
    _check_text("identity", identity, MAX_IDENTITY_LENGTH, allow_empty=False)
    _check_text("name", name, MAX_NAME_LENGTH, allow_empty=True)
    role = Role(role)
    if not (math.isfinite(ttl) and ttl > 0):
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    if not math.isfinite(now):
        raise ValueError(f"now must be finite, got {now!r}")
    claims = {
        "room": room,
        "sub": identity,
        "name": name,
        "role": role.value,
        "iat": int(now),
        "exp": int(now + ttl),
    }
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def verify_token(
    secret: str, token: str | None, *, room: str | None, now: float, leeway: float = 5
) -> Grants:
    """Check signature, claims and expiry; return the grants or raise ``TokenError``.

    ``room`` None skips the room check. ``leeway`` seconds of clock skew are accepted on
    ``exp``, ``iat`` and ``nbf``. Raises ``ValueError`` if ``secret`` is too short.
    """
    key = _check_secret(secret)
    if not token:
        raise TokenError(TokenErrorCode.TOKEN_MISSING, "a join token is required")
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], options=_DECODE_OPTIONS)
    except jwt.InvalidTokenError as exc:
        # alg=none and every other algorithm end here too: only ALGORITHM is allowed.
        raise TokenError(TokenErrorCode.TOKEN_INVALID, f"token rejected: {exc}") from None

    issued_at = _numeric_date(claims, "iat")
    expires_at = _numeric_date(claims, "exp")
    if issued_at > now + leeway:
        raise TokenError(TokenErrorCode.TOKEN_INVALID, "token is issued in the future")
    if "nbf" in claims and _numeric_date(claims, "nbf") > now + leeway:
        raise TokenError(TokenErrorCode.TOKEN_INVALID, "token is not valid yet")
    try:
        role = Role(_string_claim(claims, "role"))
    except ValueError:
        raise TokenError(TokenErrorCode.TOKEN_INVALID, "unknown role") from None
    try:
        grants = Grants(
            room=_string_claim(claims, "room"),
            identity=_string_claim(claims, "sub"),
            name=_string_claim(claims, "name"),
            role=role,
            expires_at=expires_at,
        )
    except ValueError as exc:
        raise TokenError(TokenErrorCode.TOKEN_INVALID, f"bad claim: {exc}") from None

    if now >= expires_at + leeway:
        raise TokenError(TokenErrorCode.TOKEN_EXPIRED, "token has expired")
    if room is not None and grants.room != room:
        raise TokenError(TokenErrorCode.TOKEN_WRONG_ROOM, "token is for another room")
    return grants


def _numeric_date(claims: dict[str, Any], name: str) -> float:
    """RFC 7519 section 2 NumericDate: a JSON number of seconds (bool is not a number)."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenError(TokenErrorCode.TOKEN_INVALID, f"missing or invalid {name!r} claim")
    return float(value)


def _string_claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str):
        raise TokenError(TokenErrorCode.TOKEN_INVALID, f"missing or invalid {name!r} claim")
    return value
