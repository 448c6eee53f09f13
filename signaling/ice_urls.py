"""STUN and TURN server URLs (RFC 7064, RFC 7065), checked the way browsers read them.

A URL the server hands out in ``joined.ice_servers`` goes straight into a client's
``RTCPeerConnection``; one the browser refuses fails the whole configuration, so each is
checked once, when the settings load, and an operator gets a message naming it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["IceUrl", "is_ip_or_host_name", "parse_ice_url"]

Scheme = Literal["stun", "stuns", "turn", "turns"]
Transport = Literal["udp", "tcp"]

DEFAULT_PORTS: dict[Scheme, int] = {"stun": 3478, "turn": 3478, "stuns": 5349, "turns": 5349}
_SCHEMES: dict[str, Scheme] = {scheme: scheme for scheme in DEFAULT_PORTS}

# scheme ":" host [":" port] ["?transport=" transport]; no "//" (not a hierarchical URI).
_URL = re.compile(
    r"(?P<scheme>[a-z]+):(?P<host>\[[^\]]*\]|[^:?\[\]/]*)(?::(?P<port>[0-9]{1,5}))?"
    r"(?:\?(?P<query>.*))?"
)
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


def is_ip_or_host_name(text: str) -> bool:
    """Whether ``text`` is an IP address or a DNS host name (RFC 1123 labels)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return _HOSTNAME.fullmatch(text) is not None
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class IceUrl:
    """One parsed ``stun:``/``stuns:``/``turn:``/``turns:`` URL."""

    text: str  # as written, which is what clients are given
    scheme: Scheme
    host: str  # without the brackets of an IPv6 literal
    port: int
    transport: Transport | None  # TURN only: how the client reaches the server

    @property
    def is_turn(self) -> bool:
        """TURN needs credentials; STUN does not."""
        return self.scheme in ("turn", "turns")


def parse_ice_url(text: str) -> IceUrl:
    """Parse ``text`` or raise ``ValueError`` saying what is wrong with it.

    Refused as browsers refuse them: an unknown scheme, ``turn://``, a missing or
    malformed host, a port outside 1-65535, a ``transport`` on a STUN URL (RFC 7064
    section 3.1 has none), a TURN transport other than ``udp`` or ``tcp``, and ``turns``
    over UDP (TLS runs over TCP; DTLS to TURN is not something browsers speak).
    """
    if text != text.strip():
        raise ValueError("white space around the URL")
    if "://" in text:
        raise ValueError("no // after the scheme (turn:host, not turn://host)")
    match = _URL.fullmatch(text)
    if match is None:
        raise ValueError("expected scheme:host[:port][?transport=udp|tcp]")
    scheme = _SCHEMES.get(match["scheme"])
    if scheme is None:
        raise ValueError(f"unknown scheme {match['scheme']!r} (stun, stuns, turn or turns)")
    host = match["host"]
    if host.startswith("["):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address") from None
    elif not is_ip_or_host_name(host):
        raise ValueError(f"{host!r} is not a host name or IPv4 address" if host else "no host")
    port = DEFAULT_PORTS[scheme] if match["port"] is None else int(match["port"])
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is outside 1-65535")
    transport = _transport(scheme, match["query"])
    return IceUrl(text=text, scheme=scheme, host=host, port=port, transport=transport)


def _transport(scheme: Scheme, query: str | None) -> Transport | None:
    if scheme in ("stun", "stuns"):
        if query is not None:
            raise ValueError("a STUN URL takes no query (no ?transport=)")
        return None
    if query is None:
        return "tcp" if scheme == "turns" else "udp"
    match query:
        case "transport=udp" if scheme == "turns":
            raise ValueError("turns runs over TLS, so its transport is tcp")
        case "transport=udp":
            return "udp"
        case "transport=tcp":
            return "tcp"
        case _:
            raise ValueError(f"unsupported query {query!r} (only transport=udp or transport=tcp)")
