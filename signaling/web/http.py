"""Plain HTTP endpoints: health and the web client."""

from __future__ import annotations

from aiohttp import web

from .. import __version__


async def healthz(request: web.Request) -> web.Response:
    from .app import REGISTRY, SESSIONS

    registry = request.app[REGISTRY]
    return web.json_response(
        {
            "status": "ok" if registry.accepting else "draining",
            "version": __version__,
            "rooms": len(registry.rooms),
            "connections": len(request.app[SESSIONS]),
        }
    )


async def index(request: web.Request) -> web.StreamResponse:
    from .app import SETTINGS, STATIC_DIR

    settings = request.app[SETTINGS]
    root = settings.server.static_dir or str(STATIC_DIR)
    return web.FileResponse(f"{root}/index.html")
