"""A bare WebSocket speaking the protocol by hand, for what StageClient never sends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from tests.server import Endpoint

WAIT = 15.0


class RawSocket:
    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session = session
        self.ws = ws
        self.events: list[dict[str, Any]] = []  # frames passed over by request()

    @classmethod
    async def open(cls, server: Endpoint) -> RawSocket:
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(server.ws_url, max_msg_size=1 << 22)
        except BaseException:
            await session.close()
            raise
        return cls(session, ws)

    async def send(self, frame: str) -> None:
        await self.ws.send_str(frame)

    async def receive(self) -> dict[str, Any]:
        message = await self.ws.receive(timeout=WAIT)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"connection ended: {message.type.name} {message.data!r}")
        data: dict[str, Any] = json.loads(message.data)
        return data

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send `message` (it must carry an id) and return the frame answering it."""
        return await self.request_frame(json.dumps(message), message["id"])

    async def request_frame(self, frame: str, request_id: str) -> dict[str, Any]:
        """Send `frame` as is and return the frame answering `request_id`."""
        await self.send(frame)
        return await self.answer(request_id)

    async def answer(self, request_id: str) -> dict[str, Any]:
        """The next frame answering `request_id` (frames before it go to `events`)."""
        while True:
            data = await self.receive()
            if data.get("id") == request_id:
                return data
            self.events.append(data)

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


@asynccontextmanager
async def raw_socket(server: Endpoint) -> AsyncIterator[RawSocket]:
    raw = await RawSocket.open(server)
    try:
        yield raw
    finally:
        await raw.close()


async def open_rooms(server: Endpoint) -> int:
    """Rooms the server holds, as its /healthz reports them (summed over workers)."""
    async with aiohttp.ClientSession() as http, http.get(f"{server.http_url}/healthz") as reply:
        health = await reply.json()
    return int(health["rooms"])
