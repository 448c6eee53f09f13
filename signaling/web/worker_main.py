"""Entry point of one media worker process (started by WorkerPool, never by hand)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

import msgspec
from aiohttp import web

from ..logs import json_handler
from ..settings import LogFormat, Settings
from .app import make_app
from .lifecycle import drain
from .memory import freeze_startup_objects
from .server import HANDLER_GRACE, loop_factory
from .workers import SETTINGS_ENV, port_slice

logger = logging.getLogger(__name__)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--peers", required=True, help="every worker's socket, comma-separated")
    args = parser.parse_args()
    settings = msgspec.json.decode(os.environ[SETTINGS_ENV], type=Settings)
    low, high = port_slice(settings, args.index, args.count)
    settings = msgspec.structs.replace(
        settings, media=msgspec.structs.replace(settings.media, udp_port_min=low, udp_port_max=high)
    )
    level = settings.server.log_level.upper()
    if settings.server.log_format is LogFormat.JSON:
        logging.basicConfig(level=level, handlers=[json_handler()])
    else:
        logging.basicConfig(
            level=level,
            format=f"%(asctime)s %(levelname)s worker-{args.index} %(name)s %(message)s",
        )
    with asyncio.Runner(loop_factory=loop_factory(settings.server.event_loop)) as runner:
        runner.run(_run(settings, args.socket, args.index, args.peers.split(",")))


async def _run(settings: Settings, path: str, index: int, peers: list[str]) -> None:
    app = make_app(settings, worker_index=index, worker_sockets=peers)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=HANDLER_GRACE)
    await runner.setup()
    site = web.UnixSite(runner, path)
    await site.start()
    freeze_startup_objects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    # The front holds our stdin: when it goes away (even killed), so do we.
    loop.add_reader(0, lambda: stop.set() if not os.read(0, 1) else None)
    try:
        await stop.wait()
        await drain(app, settings.server.drain_timeout)
    finally:
        loop.remove_reader(0)
        await runner.cleanup()


if __name__ == "__main__":
    main()
