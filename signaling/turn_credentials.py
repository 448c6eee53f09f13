"""Time-limited TURN credentials, as coturn checks them with ``use-auth-secret``.

The scheme is the "TURN REST API" (draft-uberti-behave-turn-rest-00, section 2.2): the
username is ``<expiry as Unix time>:<identity>`` and the password is
``base64(HMAC-SHA1(shared secret, username))``. coturn recomputes the password from the
username with its ``static-auth-secret`` and refuses an expired one, so the server and
coturn share nothing but the secret, and a credential that leaks is only good until it
expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from . import protocol as wire
from .ice_urls import parse_ice_url
from .settings import TurnSettings

__all__ = ["TurnCredentials", "ice_servers", "turn_credentials"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnCredentials:
    username: str
    credential: str

    def __repr__(self) -> str:
        return f"TurnCredentials(username={self.username!r}, credential=<hidden>)"


def turn_credentials(secret: str, identity: str, *, expires: int) -> TurnCredentials:
    """Credentials for ``identity`` that coturn accepts until Unix time ``expires``."""
    if not secret:
        raise ValueError("a TURN secret is required")
    username = f"{expires}:{identity}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredentials(username=username, credential=base64.b64encode(digest).decode("ascii"))


def ice_servers(turn: TurnSettings, identity: str, *, now: float) -> list[wire.IceServer]:
    """What a client joining (or resuming) at wall time ``now`` is given: the STUN URLs
    as one server without credentials, the TURN URLs as one with fresh credentials valid
    for ``turn.credential_lifetime``. Empty without ``turn.urls``."""
    stun = [url for url in turn.urls if not parse_ice_url(url).is_turn]
    relays = [url for url in turn.urls if parse_ice_url(url).is_turn]
    servers = [wire.IceServer(urls=stun)] if stun else []
    if relays:
        expires = int(now + turn.credential_lifetime)
        credentials = turn_credentials(turn.secret, identity, expires=expires)
        servers.append(
            wire.IceServer(
                urls=relays, username=credentials.username, credential=credentials.credential
            )
        )
    return servers
