"""The WebSocket endpoint: one reader loop and one writer task per connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import WSMsgType, web

from ..session import CLOSE_GOING_AWAY, Session

logger = logging.getLogger(__name__)

# Frames above this are refused by aiohttp itself (close 1009); frames between the
# configured limit and this get a `message_too_large` error and the session goes on.
HARD_FRAME_FACTOR = 4
HEARTBEAT_SECONDS = 20.0


class _AiohttpConnection:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws

    async def send_text(self, data: str) -> None:
        if not self._ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._ws.send_str(data)

    async def close(self, code: int, message: str) -> None:
        await self._ws.close(code=code, message=message.encode()[:120])


class SessionSet:
    """Live sessions, so shutdown can say goodbye to each and wait for them to end.

    A session stays in the set until its connection has fully ended (room told,
    socket closed); once `close_all` ran, sessions added later are sent away at once.
    """

    def __init__(self) -> None:
        self._sessions: set[Session] = set()
        self._empty = asyncio.Event()
        self._empty.set()
        self.closing = False

    def __len__(self) -> int:
        return len(self._sessions)

    def add(self, session: Session) -> None:
        self._sessions.add(session)
        self._empty.clear()
        if self.closing:
            _goodbye(session)

    def discard(self, session: Session) -> None:
        self._sessions.discard(session)
        if not self._sessions:
            self._empty.set()

    async def close_all(self) -> None:
        self.closing = True
        for session in list(self._sessions):
            _goodbye(session)

    async def wait_empty(self) -> None:
        """Return once no session is left (bound it with a timeout)."""
        await self._empty.wait()


def _goodbye(session: Session) -> None:
    from .. import protocol as wire

    session.deliver(wire.Bye(reason="shutting_down"))
    session.disconnect("server shutting down", code=CLOSE_GOING_AWAY)


async def handle(request: web.Request) -> web.WebSocketResponse:
    from .app import CLOCK, REGISTRY, SESSIONS, SETTINGS

    settings = request.app[SETTINGS]
    ws = web.WebSocketResponse(
        max_msg_size=settings.server.max_message_bytes * HARD_FRAME_FACTOR,
        heartbeat=HEARTBEAT_SECONDS,
    )
    await ws.prepare(request)
    session = Session(
        connection=_AiohttpConnection(ws),
        registry=request.app[REGISTRY],
        settings=settings,
        clock=request.app[CLOCK],
    )
    sessions = request.app[SESSIONS]
    sessions.add(session)
    writer = asyncio.get_running_loop().create_task(session.run_writer(), name="ws-writer")
    try:
        async for message in ws:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await session.handle_frame(message.data)
            if session.closed:
                break
    finally:
        try:
            await session.connection_closed()
            session.disconnect("connection closed", code=1000)
            try:
                await asyncio.wait_for(writer, timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                writer.cancel()
        finally:
            sessions.discard(session)
    return ws
