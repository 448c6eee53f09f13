"""Plain HTTP endpoints: health, the web client and development tokens."""

from __future__ import annotations

import functools
import hashlib
import json
import unicodedata
from typing import Annotated

import msgspec
from aiohttp import web

from sfu.clock import SYSTEM_CLOCK
from sfu.worker import Worker

from .. import __version__
from ..auth import MAX_NAME_LENGTH, MAX_ROOM_LENGTH, issue_token
from ..client_rules import client_rules
from ..roles import Role
from ..settings import dev_tokens_enabled

DEV_TOKEN_MAX_BODY = 4096
"""Bytes; a development token request is three short strings."""


async def healthz(request: web.Request) -> web.Response:
    from .app import REGISTRY, SESSIONS, WORKER

    registry = request.app[REGISTRY]
    return web.json_response(
        {
            "status": "ok" if registry.accepting else "draining",
            "version": __version__,
            "rooms": len(registry.rooms),
            "connections": len(request.app[SESSIONS]),
            # WebRTC connections of any room, spread rooms' viewers included: the load
            # other workers compare when placing viewers (signaling/spread/).
            "media_connections": media_connections(request.app[WORKER]),
        }
    )


def media_connections(worker: Worker) -> int:
    return sum(len(router.transports) for router in worker.routers.values())


async def index(request: web.Request) -> web.StreamResponse:
    from .app import SETTINGS, STATIC_DIR

    settings = request.app[SETTINGS]
    root = settings.server.static_dir or str(STATIC_DIR)
    return web.FileResponse(f"{root}/index.html")


RULES_PATH = "/static/rules.json"
"""Beside the page's modules, which load it; a route of its own, ahead of the files."""


@functools.cache
def _rules_body() -> str:
    return json.dumps(client_rules(), separators=(",", ":"))


async def rules(request: web.Request) -> web.Response:
    """The permission rules the web client looks its buttons up in (client_rules.py)."""
    return web.Response(text=_rules_body(), content_type="application/json")


class DevTokenRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /api/dev-token`` body. The identity is not asked for: the server makes one up."""

    room: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ROOM_LENGTH)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_LENGTH)]
    role: Role = Role.PARTICIPANT


_dev_token_decoder = msgspec.json.Decoder(DevTokenRequest)


async def dev_token(request: web.Request) -> web.Response:
    """Mint a join token for local development: ``{room, name, role}`` -> ``{token, ...}``.

    Only when ``auth.dev_tokens`` is true and the server listens on loopback (or
    ``auth.insecure_dev_tokens_beyond_loopback`` says otherwise); otherwise the endpoint
    does not exist (404). The identity is derived from the room and the name, so the same
    name is the same person (a kick sticks; two tabs share one identity). Bad input is a
    400 with a JSON ``{"error": ...}`` naming the field.
    """
    from .app import CLOCK, SETTINGS

    settings = request.app[SETTINGS]
    clock = request.app.get(CLOCK, SYSTEM_CLOCK)  # the multi-worker front keeps no clock
    if not dev_tokens_enabled(settings):
        raise web.HTTPNotFound()
    if request.content_type != "application/json":
        # Also keeps plain HTML forms on other sites from posting here.
        return _bad_request("send the request as application/json", status=415)
    if request.content_length is not None and request.content_length > DEV_TOKEN_MAX_BODY:
        return _bad_request(f"the body is limited to {DEV_TOKEN_MAX_BODY} bytes", status=413)
    body = await request.content.read(DEV_TOKEN_MAX_BODY + 1)
    if len(body) > DEV_TOKEN_MAX_BODY:
        return _bad_request(f"the body is limited to {DEV_TOKEN_MAX_BODY} bytes", status=413)
    try:
        wanted = _dev_token_decoder.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return _bad_request(_describe(str(exc)))
    room = wanted.room.strip()
    name = " ".join(wanted.name.split())
    for field, value in (("room", room), ("name", name)):
        if not value:
            return _bad_request(f"{field}: must not be blank")
        if any(unicodedata.category(char) == "Cc" for char in value):
            return _bad_request(f"{field}: must not contain control characters")
    identity = dev_identity(room, name)
    ttl = settings.auth.token_ttl
    token = issue_token(
        settings.auth.secret,
        room=room,
        identity=identity,
        name=name,
        role=wanted.role,
        ttl=ttl,
        now=clock.wall(),
    )
    return web.json_response(
        {
            "token": token,
            "room": room,
            "identity": identity,
            "name": name,
            "role": wanted.role.value,
            "expires_in": ttl,
        },
        headers={"Cache-Control": "no-store"},
    )


def dev_identity(room: str, name: str) -> str:
    """The development identity of `name` in `room`: the same every time (case aside)."""
    digest = hashlib.sha256(f"{room}\0{name.casefold()}".encode()).hexdigest()
    return f"dev-{digest[:16]}"


def _bad_request(message: str, *, status: int = 400) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _describe(message: str) -> str:
    """msgspec's ``Expected `str` - at `$.room``` -> ``room: expected str``."""
    text, _, where = message.partition(" - at `$")
    field = where.rstrip("`").lstrip(".")
    text = text.replace("`", "")
    text = text[:1].lower() + text[1:]
    return f"{field}: {text}" if field else text
