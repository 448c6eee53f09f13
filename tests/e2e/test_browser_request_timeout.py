"""The web client never waits forever for a reply: a request the server does not answer
fails with code `timeout` and a message the page can show."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web

from tests.e2e.conftest import OpenPage
from tests.server import serving

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def silent_ws_url() -> AsyncIterator[str]:
    """A WebSocket endpoint that accepts, reads and never answers."""
    sockets: set[web.WebSocketResponse] = set()

    async def silent(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets.add(ws)
        async for _ in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ws", silent)
    async with serving(app) as port:
        try:
            yield f"ws://127.0.0.1:{port}/ws"
        finally:
            for ws in sockets:  # the page may still hold its socket open
                await ws.close()


@pytest.mark.timeout(60)
async def test_a_request_the_server_never_answers_fails_with_timeout(
    open_page: OpenPage, silent_ws_url: str
) -> None:
    page = (await open_page("/")).page

    outcome = await asyncio.wait_for(
        page.evaluate(
            """async (url) => {
                const { StageClient } = await import("/static/stage-client.js");
                const client = new StageClient(url, { requestTimeoutMs: 300 });
                await client.connect();
                try {
                    await client.command("raise_hand");
                    return { code: "answered" };
                } catch (error) {
                    return { code: error.code, message: error.message };
                }
            }""",
            silent_ws_url,
        ),
        30,
    )

    assert outcome["code"] == "timeout"
    assert "did not answer" in outcome["message"]
