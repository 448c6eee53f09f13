"""A real server on loopback, started in the running event loop, plus token minting."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from signaling.auth import issue_token
from signaling.registry import RoomRegistry
from signaling.roles import Role
from signaling.settings import Settings, load_settings
from signaling.web.app import REGISTRY, make_app


@dataclass
class Endpoint:
    """A server reachable on 127.0.0.1:`port`, whatever runs it; tokens for it."""

    settings: Settings
    port: int

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(
        self,
        identity: str,
        *,
        room: str = "demo",
        role: Role = Role.PARTICIPANT,
        ttl: float = 600,
        secret: str | None = None,
    ) -> str:
        return issue_token(
            secret or self.settings.auth.secret,
            room=room,
            identity=identity,
            name=identity.title(),
            role=role,
            ttl=ttl,
            now=time.time(),
        )


@dataclass
class RunningServer(Endpoint):
    """A server in the test's own event loop, so tests can also look inside it."""

    app: web.Application

    @property
    def registry(self) -> RoomRegistry:
        return self.app[REGISTRY]


@dataclass
class FrontServer(Endpoint):
    """The deployment default: a front process relaying to several media workers."""

    workers: int


@asynccontextmanager
async def running_server(
    overrides: Mapping[str, object] | None = None,
) -> AsyncIterator[RunningServer]:
    """Serve the app on 127.0.0.1 with an OS-chosen port in the current event loop,
    with default settings plus `overrides` (dotted keys, as on the command line).

    The server lives in the loop that entered this context, so it must be the loop the
    test (and any client driving it) runs in.
    """
    settings = load_settings(overrides={"server.port": 0, **(overrides or {})}, env={})
    app = make_app(settings)
    async with serving(app) as port:
        yield RunningServer(settings=settings, app=app, port=port)


@asynccontextmanager
async def serving(app: web.Application, *, shutdown_timeout: float = 60.0) -> AsyncIterator[int]:
    """Serve `app` on 127.0.0.1 at an OS-chosen port (yielded) in the running loop."""
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port: int = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port
    finally:
        await runner.cleanup()
