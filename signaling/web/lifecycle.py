"""Graceful shutdown: drain on SIGTERM, and a health status load balancers can act on.

Draining, in order: refuse new joins (``/healthz`` answers 503 from then on, so
load balancers stop sending people here), tell every connected client
``bye shutting_down`` and close its socket with 1001 (going away) so it can
reconnect elsewhere, wait for the connections to end, then close the rooms and
the media (DTLS close_notify, sockets). All of it within
``server.drain_timeout``; whatever is left then is cut off by the cleanup
that follows.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["drain", "health_status"]

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"


@web.middleware
async def health_status(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``/healthz`` answers 503 Service Unavailable while the server drains."""
    response = await handler(request)
    if request.path == HEALTH_PATH:
        from .app import REGISTRY

        if not request.app[REGISTRY].accepting and not response.prepared:
            response.set_status(503)
    return response


async def drain(app: web.Application, timeout: float) -> bool:
    """Stop taking joins, say goodbye, close the media; True if all ended within `timeout`."""
    from .app import REGISTRY, SESSIONS, WORKER

    registry, sessions, worker = app[REGISTRY], app[SESSIONS], app[WORKER]
    registry.accepting = False
    logger.info(
        "- draining: refusing joins; closing %d connections and %d rooms within %.1fs",
        len(sessions), len(registry.rooms), timeout,
    )  # fmt: skip
    await sessions.close_all()
    try:
        async with asyncio.timeout(timeout):
            await sessions.wait_empty()
            await registry.close()
            worker.close()
            await worker.wait_closed(timeout)
    except TimeoutError:
        logger.warning(
            "- drain timed out after %.1fs with %d connections open; closing the rest",
            timeout, len(sessions),
        )  # fmt: skip
        return False
    logger.info("- drained: connections and media closed")
    return True
