"""Join tokens for the fuzzer's participants, signed with the development secret."""

from __future__ import annotations

import time

from signaling.auth import issue_token
from signaling.roles import Role
from signaling.settings import DEV_SECRET

ROLES = tuple(Role)


def token(
    room: str,
    identity: str,
    role: Role,
    *,
    ttl: float = 3600,
    secret: str = DEV_SECRET,
    now: float | None = None,
) -> str:
    return issue_token(
        secret,
        room=room,
        identity=identity,
        name=identity,
        role=role,
        ttl=ttl,
        now=time.time() if now is None else now,
    )
