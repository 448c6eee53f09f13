"""A bare WebSocket to /ws that sends any frame and counts every reply.

One reader task drains the socket all the time (the server drops a client that stops
reading); replies are tallied as they come, and `sync` sends a ping and waits, bounded,
for its pong: every frame sent before it has then been handled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from signaling.protocol.server import REPLY_TYPES

from .frames import Frame, FrameKind

# The replies a request earns (exactly one each); everything else is an event.
DIRECT_REPLIES = REPLY_TYPES
CLOSED_WITHOUT_FRAME = 1006
_sync_ids = itertools.count(1)


class FuzzSocket:
    def __init__(
        self, ws: aiohttp.ClientWebSocketResponse, on_message: Callable[[dict[str, Any]], None]
    ) -> None:
        self._ws = ws
        self._on_message = on_message
        self.direct_replies = 0
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.closed_by_us = False
        self.bye: str | None = None  # the reason of a `bye`: the server explained its close
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(
        cls, http: aiohttp.ClientSession, url: str, on_message: Callable[[dict[str, Any]], None]
    ) -> FuzzSocket:
        ws = await http.ws_connect(
            url, max_msg_size=1 << 24, timeout=aiohttp.ClientWSTimeout(ws_close=5.0)
        )
        return cls(ws, on_message)

    async def send(self, frame: Frame) -> bool:
        """Send one frame; False when the connection is already gone."""
        if self.closed.is_set():
            return False
        try:
            if frame.kind is FrameKind.TEXT:
                assert isinstance(frame.data, str)
                await self._ws.send_str(frame.data)
            else:
                data = frame.data.encode() if isinstance(frame.data, str) else frame.data
                opcode = (
                    aiohttp.WSMsgType.TEXT
                    if frame.kind is FrameKind.RAW_TEXT
                    else (aiohttp.WSMsgType.BINARY)
                )
                await self._ws.send_frame(data, opcode)
        except (ConnectionError, aiohttp.ClientError, RuntimeError):
            await self._wait_closed()
            return False
        return True

    async def request(self, message: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """Send a request with a fresh id; its reply, or None (closed or no reply in time)."""
        request_id = f"s{next(_sync_ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            text = json.dumps({**message, "id": request_id})
            if not await self.send(Frame(FrameKind.TEXT, text, "sync")):
                return None
            closed: asyncio.Future[Any] = asyncio.ensure_future(self.closed.wait())
            try:
                waited: set[asyncio.Future[Any]] = {future, closed}
                await asyncio.wait(waited, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                closed.cancel()
            return future.result() if future.done() else None
        finally:
            self._waiting.pop(request_id, None)

    async def sync(self, timeout: float) -> dict[str, Any] | None:
        return await self.request({"type": "ping"}, timeout)

    async def close(self) -> None:
        self.closed_by_us = not self.closed.is_set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(), 5)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def _wait_closed(self) -> None:
        # The reader sees the close frame (or the drop) right after a failed send.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), 5)

    async def _read(self) -> None:
        try:
            while True:
                message = await self._ws.receive()
                if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    self._dispatch(message.data)
                elif message.type in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSING,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    break
        finally:
            self.close_code = self._ws.close_code or CLOSED_WITHOUT_FRAME
            self.closed.set()

    def _dispatch(self, data: str | bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            message = {"type": "<not json>"}
        if not isinstance(message, dict):
            message = {"type": "<not an object>"}
        if message.get("type") in DIRECT_REPLIES:
            self.direct_replies += 1
        elif message.get("type") == "bye":
            self.bye = str(message.get("reason"))
        self._on_message(message)
        future = self._waiting.get(message.get("id"))  # type: ignore[arg-type]
        if future is not None and not future.done() and message.get("type") in DIRECT_REPLIES:
            future.set_result(message)
