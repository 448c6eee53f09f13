"""The aiohttp application: routes, typed app state and an orderly shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from sfu.clock import SYSTEM_CLOCK, Clock
from sfu.worker import Worker

from ..media import room_options, worker_options
from ..registry import RoomRegistry
from ..settings import Settings
from ..spread.edge import EdgeSession
from ..stats import SignalingStats
from . import http, memory, peers, ws
from .lifecycle import health_status
from .metrics import collectors as metrics_collectors
from .metrics import handle as metrics_handle

logger = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
WORKER = web.AppKey("worker", Worker)
REGISTRY = web.AppKey("registry", RoomRegistry)
SESSIONS = web.AppKey("sessions", ws.SessionSet)
# Set in a media worker of several: its index and every worker's socket, by index.
PEER_SOCKETS = web.AppKey("peer_sockets", tuple[int, list[str]])
LINKS = web.AppKey("links", peers.WorkerLinks)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def make_app(
    settings: Settings,
    *,
    clock: Clock = SYSTEM_CLOCK,
    worker_index: int = 0,
    worker_sockets: list[str] | None = None,
) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app[PEER_SOCKETS] = (worker_index, worker_sockets or [])
    app[CLOCK] = clock
    app[SESSIONS] = ws.SessionSet()
    app.cleanup_ctx.append(_media)
    if settings.server.gc_freeze:
        app.cleanup_ctx.append(_frozen_survivors)
    app.cleanup_ctx.append(metrics_collectors)  # after _media: it reads the worker and rooms
    app.on_shutdown.append(_say_goodbye)
    app.middlewares.append(health_status)
    app.router.add_get("/healthz", http.healthz)
    app.router.add_get("/metrics", metrics_handle)
    app.router.add_get("/ws", ws.handle)
    if worker_sockets:
        app.router.add_get(peers.PATH, _spread_link)
    app.router.add_post("/api/dev-token", http.dev_token)
    static = Path(settings.server.static_dir) if settings.server.static_dir else STATIC_DIR
    app.router.add_get("/", http.index)
    app.router.add_get(http.RULES_PATH, http.rules)
    app.router.add_static("/static/", static, show_index=False)
    return app


async def _media(app: web.Application) -> AsyncIterator[None]:
    worker = Worker(worker_options(app[SETTINGS]), clock=app[CLOCK])
    app[WORKER] = worker
    index, sockets = app[PEER_SOCKETS]
    stats = SignalingStats()
    links = None
    if len(sockets) > 1:
        links = peers.WorkerLinks(
            index,
            sockets,
            on_event=lambda message: app[REGISTRY].spread_message(message),
            on_lost=lambda lost: app[REGISTRY].link_lost(lost),
            local_load=lambda: http.media_connections(worker),
            stats=stats,
        )
        app[LINKS] = links
    app[REGISTRY] = RoomRegistry(
        worker, options=room_options(app[SETTINGS]), clock=app[CLOCK], cluster=links, stats=stats
    )
    yield
    await app[REGISTRY].close()
    if links is not None:
        await links.close()
    worker.close()
    await worker.wait_closed()


async def _frozen_survivors(app: web.Application) -> AsyncIterator[None]:
    memory.freeze_survivors()
    yield
    memory.thaw()


async def _spread_link(request: web.Request) -> web.StreamResponse:
    """Another worker's link for the rooms it spreads here (signaling/web/peers.py)."""
    app = request.app
    address = app[SETTINGS].media.pipe_address

    def session(*, send: peers.Send) -> EdgeSession:
        return EdgeSession(app[WORKER], pipe_address=address, send=send)

    response: web.StreamResponse = await peers.serve_link(request, session, app[REGISTRY].stats)
    return response


async def _say_goodbye(app: web.Application) -> None:
    """Refuse new joins, tell connected clients we are going away, close their sockets."""
    app[REGISTRY].accepting = False
    await app[SESSIONS].close_all()
