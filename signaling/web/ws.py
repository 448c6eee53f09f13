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
# How long the close handshake waits for the client's close frame.
CLOSE_HANDSHAKE_SECONDS = 5.0
_ENDED = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)


class _AiohttpConnection:
    """The session's side of a WebSocket. `close` only records the code: the handler
    performs the close handshake once the reader has stopped (`finish`)."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws
        self._code = 1000
        self._message = b""

    async def send_text(self, data: str) -> None:
        if not self._ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._ws.send_str(data)

    async def close(self, code: int, message: str) -> None:
        self._code, self._message = code, message.encode()[:120]

    async def finish(self) -> None:
        """The close handshake, bounded: a client that neither reads nor answers is
        dropped (aiohttp then closes the socket itself)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._ws.close(code=self._code, message=self._message), CLOSE_HANDSHAKE_SECONDS
            )


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
        timeout=CLOSE_HANDSHAKE_SECONDS,
    )
    await ws.prepare(request)
    connection = _AiohttpConnection(ws)
    session = Session(
        connection=connection,
        registry=request.app[REGISTRY],
        settings=settings,
        clock=request.app[CLOCK],
    )
    sessions = request.app[SESSIONS]
    sessions.add(session)
    loop = asyncio.get_running_loop()
    writer = loop.create_task(session.run_writer(), name="ws-writer")
    reader = _Reader(ws, session)
    reading = loop.create_task(reader.run(), name="ws-reader")
    try:
        await asyncio.wait((reading, writer), return_when=asyncio.FIRST_COMPLETED)
        if writer.done() and reader.idle:
            # The server ended the session: stop reading before the close handshake,
            # which then reads (and drops) what the client still sends, rather than
            # closing a socket with unread data (a reset that can destroy the `bye`).
            reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
    finally:
        try:
            await session.connection_closed()
            session.disconnect("connection closed", code=1000)
            try:
                await asyncio.wait_for(writer, timeout=5)
            except (TimeoutError, asyncio.CancelledError):
                writer.cancel()
            await connection.finish()
        finally:
            sessions.discard(session)
            _release_heartbeat(request)
    return ws


def _release_heartbeat(request: web.Request) -> None:
    """aiohttp's connection keeps the WebSocket's heartbeat callback after the socket
    closed, and the WebSocket keeps the request, which keeps the connection: a cycle
    that only the cycle collector frees, and never once it is frozen
    (signaling/web/memory.py). The socket is done: drop the callback."""
    protocol = request.protocol
    if protocol is not None:
        protocol._data_received_cb = None


class _Reader:
    """Hands the client's frames to the session until either side ends it; `idle`
    while waiting for a frame (cancelling it then interrupts no command)."""

    def __init__(self, ws: web.WebSocketResponse, session: Session) -> None:
        self._ws = ws
        self._session = session
        self.idle = False

    async def run(self) -> None:
        session = self._session
        while not session.closed:
            self.idle = True
            try:
                message = await self._ws.receive()
            finally:
                self.idle = False
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await session.handle_frame(message.data)
                # A turn of the loop per frame: frames that arrived together are not
                # handled all at once, so the replies they earn are written as they
                # come (a pipelining client is not "too slow") and one client's burst
                # does not hold the loop.
                await asyncio.sleep(0)
            elif message.type in _ENDED:
                return
