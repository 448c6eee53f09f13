"""Run the server: pick the event loop, serve until SIGINT/SIGTERM, then drain and exit."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from ..settings import EventLoop, Settings
from .app import make_app
from .lifecycle import drain
from .memory import freeze_startup_objects

logger = logging.getLogger(__name__)

# After the drain: how long aiohttp still waits for request handlers before cutting them off.
HANDLER_GRACE = 1.0


def loop_factory(choice: EventLoop) -> type[asyncio.AbstractEventLoop] | None:
    """uvloop when asked for and installed; the stdlib loop otherwise."""
    if choice == EventLoop.UVLOOP:
        try:
            import uvloop
        except ImportError:
            logger.warning("uvloop is not installed; using the asyncio event loop")
            return None
        return uvloop.Loop
    return None


def serve(settings: Settings) -> None:
    """Serve in this process, or as a front with one media worker process per core."""
    from .workers import worker_count

    factory = loop_factory(settings.server.event_loop)
    count = worker_count(settings)
    with asyncio.Runner(loop_factory=factory) as runner:
        if count > 1:
            from .front import serve_front

            runner.run(serve_front(settings, count))
        else:
            runner.run(_serve(settings))


async def _serve(settings: Settings) -> None:
    app = make_app(settings)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=HANDLER_GRACE)
    await runner.setup()
    site = web.TCPSite(runner, settings.server.host, settings.server.port)
    await site.start()
    freeze_startup_objects()
    port = runner.addresses[0][1] if runner.addresses else settings.server.port
    logger.info(
        "stage-sfu listening on http://%s:%d (loop %s)",
        settings.server.host,
        port,
        type(asyncio.get_running_loop()).__module__,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        logger.info("stopping: draining connections and media")
        await drain(app, settings.server.drain_timeout)
    finally:
        await runner.cleanup()
    logger.info("stopped")
