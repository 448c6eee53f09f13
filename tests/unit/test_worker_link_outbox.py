"""A link to another media worker never buffers without bound: a worker that stops
reading has its link closed (counted), as if it had died."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from signaling.spread import messages as m
from signaling.spread.home import LinkError
from signaling.stats import SignalingStats
from signaling.web.peers import LINK_OUTBOX_LIMIT, WorkerLink
from tests.server import serving


@pytest.fixture
async def far_end() -> AsyncIterator[str]:
    """A WebSocket endpoint that takes a link and reads it."""

    async def serve(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/link", serve)
    async with serving(app, shutdown_timeout=0.5) as port:
        yield f"http://127.0.0.1:{port}/link"


async def test_a_link_whose_outbox_fills_is_closed_and_counted(far_end: str) -> None:
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(far_end)
    stats = SignalingStats()
    lost: list[WorkerLink] = []
    link = WorkerLink(1, ws, session, on_event=lambda message: None, on_closed=lost.append,
                      stats=stats)  # fmt: skip
    try:
        # Synchronously: the writer gets no turn, as with a far end that reads nothing.
        for _ in range(LINK_OUTBOX_LIMIT + 5):
            link.send(m.CloseRoom(room="home:demo"))

        assert link.closed and lost == [link]
        assert stats.link_overflows == 1
        with pytest.raises(LinkError):
            await link.request(m.MakeOffer(room="home:demo", id=0, subscriber="viewer"))
    finally:
        await link.close()
