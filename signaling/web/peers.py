"""Links between media workers, for rooms spread over several (signaling/spread/).

Each worker listens on its own Unix socket; a home worker opens one WebSocket
to `/internal/spread` of each edge it uses and keeps it for every room. Frames
are the JSON messages of signaling/spread/messages.py, in order. The socket
lives in a directory only the server's user can enter, so nothing outside
the server reaches these routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import aiohttp
import msgspec
from aiohttp import WSMsgType, web

from ..spread import messages as m
from ..spread.edge import EdgeSession
from ..spread.home import Link, LinkError, with_id
from ..stats import SignalingStats

logger = logging.getLogger(__name__)

PATH = "/internal/spread"
RETRY_AFTER = 10.0  # seconds a worker that could not be reached is left out of placement
LOAD_MAX_AGE = 0.25  # seconds the other workers' loads are reused before asking again
Send = Callable[[m.ToHome], None]
CONNECT_TIMEOUT = 5.0
REQUEST_TIMEOUT = 3.0  # a healthy worker answers in milliseconds; a room waits at most this
# Frames waiting to be written to another worker. A worker that stops reading its link is
# stuck or dead: its link is closed (as if it died), not buffered into memory.
LINK_OUTBOX_LIMIT = 8192


class WorkerLink:
    """The home's end of one link: ordered sends, numbered requests, and events
    passed to `on_event`."""

    def __init__(
        self,
        index: int,
        ws: aiohttp.ClientWebSocketResponse,
        session: aiohttp.ClientSession,
        *,
        on_event: Callable[[m.ToHome], None],
        on_closed: Callable[[WorkerLink], None],
        stats: SignalingStats,
    ) -> None:
        self.index = index
        self._stats = stats
        self.closed = False
        self._ws = ws
        self._session = session
        self._on_event = on_event
        self._on_closed = on_closed
        self._outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._pending: dict[int, asyncio.Future[m.Reply]] = {}
        self._next_id = 0
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._write(), name=f"link-{index}-write"),
            loop.create_task(self._read(), name=f"link-{index}-read"),
        ]

    def send(self, message: m.ToEdge) -> None:
        if self.closed:
            return
        if self._outbox.qsize() >= LINK_OUTBOX_LIMIT:
            logger.warning("worker %d: - link outbox full, closing the link", self.index)
            self._stats.link_overflows += 1
            self._closed()
            self._tasks[1].cancel()  # the reader's finally releases the socket
            return
        self._outbox.put_nowait(m.encode(message))

    async def request(self, message: m.ToEdge) -> m.Reply:
        if self.closed:
            raise LinkError(f"worker {self.index}: link closed")
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[m.Reply] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self.send(with_id(message, request_id))
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                return await future
        except TimeoutError:
            raise LinkError(f"worker {self.index}: no reply in {REQUEST_TIMEOUT:.0f} s") from None
        finally:
            self._pending.pop(request_id, None)

    async def _write(self) -> None:
        while (frame := await self._outbox.get()) is not None:
            await self._ws.send_bytes(frame)

    async def _read(self) -> None:
        try:
            async for message in self._ws:
                if message.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                try:
                    decoded = m.to_home.decode(message.data)
                except msgspec.DecodeError as exc:
                    logger.warning("worker %d: x unreadable frame: %s", self.index, exc)
                    continue
                if isinstance(decoded, m.Reply):
                    future = self._pending.get(decoded.id)
                    if future is not None and not future.done():
                        future.set_result(decoded)
                else:
                    self._on_event(decoded)
        finally:
            self._closed()
            # Lost (the other worker died): nobody calls close(), so release here.
            await self._ws.close()
            await self._session.close()

    def _closed(self) -> None:
        if self.closed:
            return
        self.closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(LinkError(f"worker {self.index}: link lost"))
        self._outbox.put_nowait(None)
        self._on_closed(self)

    async def close(self) -> None:
        self._closed()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await task
        await self._ws.close()
        await self._session.close()


class WorkerLinks:
    """This worker's links to the others (the `Cluster` of signaling/spread/home.py)."""

    def __init__(
        self,
        index: int,
        socket_paths: list[str],
        *,
        on_event: Callable[[m.ToHome], None],
        on_lost: Callable[[int], None],
        local_load: Callable[[], int],
        stats: SignalingStats,
    ) -> None:
        self.index = index
        self._stats = stats
        self._local_load = local_load
        self._loads: dict[int, int] = {}
        self._loads_at = -LOAD_MAX_AGE
        self._others = tuple(i for i in range(len(socket_paths)) if i != index)
        self._down_until: dict[int, float] = {}
        self._paths = socket_paths
        self._on_event = on_event
        self._on_lost = on_lost
        self._links: dict[int, WorkerLink] = {}
        self._connecting: dict[int, asyncio.Future[WorkerLink]] = {}

    @property
    def peers(self) -> tuple[int, ...]:
        """The other workers, minus those found unreachable in the last RETRY_AFTER s."""
        now = asyncio.get_running_loop().time()
        return tuple(i for i in self._others if self._down_until.get(i, 0.0) <= now)

    async def loads(self) -> dict[int, int]:
        now = asyncio.get_running_loop().time()
        if now - self._loads_at >= LOAD_MAX_AGE:
            self._loads_at = now
            peers = self.peers
            found = await asyncio.gather(*(self._load_of(i) for i in peers))
            self._loads = {i: n for i, n in zip(peers, found, strict=True) if n is not None}
        return {**self._loads, self.index: self._local_load()}

    def placed(self, index: int) -> None:
        if index in self._loads:
            self._loads[index] += 1

    async def _load_of(self, index: int) -> int | None:
        """A worker's media connections, from its /healthz; None (and left out) if silent."""
        try:
            connector = aiohttp.UnixConnector(path=self._paths[index])
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                session.get(
                    "http://worker/healthz", timeout=aiohttp.ClientTimeout(total=1.0)
                ) as response,
            ):
                state = await response.json()
            return int(state["media_connections"])
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError, KeyError, TypeError):
            self._mark_down(index)
            return None

    def _mark_down(self, index: int) -> None:
        self._down_until[index] = asyncio.get_running_loop().time() + RETRY_AFTER

    async def link(self, index: int) -> Link:
        link = self._links.get(index)
        if link is not None and not link.closed:
            return link
        pending = self._connecting.get(index)
        if pending is None:  # one connection attempt at a time per worker
            pending = asyncio.ensure_future(self._connect(index))
            self._connecting[index] = pending
            pending.add_done_callback(lambda _: self._connecting.pop(index, None))
        return await asyncio.shield(pending)

    async def _connect(self, index: int) -> WorkerLink:
        session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=self._paths[index]))
        try:
            ws = await session.ws_connect(
                "http://worker" + PATH, timeout=aiohttp.ClientWSTimeout(ws_close=CONNECT_TIMEOUT),
                heartbeat=10.0, max_msg_size=16 * 1024 * 1024,
            )  # fmt: skip
        except (aiohttp.ClientError, OSError) as exc:
            await session.close()
            self._mark_down(index)
            raise LinkError(f"worker {index}: cannot connect: {exc}") from None
        link = WorkerLink(index, ws, session, on_event=self._on_event, on_closed=self._lost,
                          stats=self._stats)  # fmt: skip
        self._links[index] = link
        return link

    def _lost(self, link: WorkerLink) -> None:
        if self._links.get(link.index) is link:
            del self._links[link.index]
            self._mark_down(link.index)
            logger.warning("link to worker %d lost", link.index)
            self._on_lost(link.index)

    async def close(self) -> None:
        for link in list(self._links.values()):
            self._links.pop(link.index, None)
            await link.close()


async def serve_link(
    request: web.Request, session_factory: Callable[..., EdgeSession], stats: SignalingStats
) -> web.WebSocketResponse:
    """The edge's end: one EdgeSession per connecting home worker."""
    ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=16 * 1024 * 1024)
    await ws.prepare(request)
    outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
    overflowed = False

    def send(message: m.ToHome) -> None:
        nonlocal overflowed
        if overflowed:
            return
        if outbox.qsize() >= LINK_OUTBOX_LIMIT:  # the home stopped reading: drop the link
            logger.warning("- link outbox to a home worker full, closing the link")
            stats.link_overflows += 1
            overflowed = True
            outbox.put_nowait(None)  # the writer stops, then closes the link
            return
        outbox.put_nowait(m.encode(message))

    async def write() -> None:
        while (frame := await outbox.get()) is not None:
            await ws.send_bytes(frame)
        if overflowed:
            await ws.close(code=1013, message=b"link outbox full")

    session = session_factory(send=send)
    writer = asyncio.ensure_future(write())
    try:
        async for message in ws:
            if message.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                continue
            try:
                decoded = m.to_edge.decode(message.data)
            except msgspec.DecodeError as exc:
                logger.warning("x unreadable frame from a worker: %s", exc)
                continue
            try:
                await session.handle(decoded)
            except Exception:  # a bug here must not take the other rooms' media down
                logger.exception("room=%s - failed on %s", decoded.room, type(decoded).__name__)
    finally:
        session.close()
        if not overflowed:
            outbox.put_nowait(None)
        with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError):
            await asyncio.wait_for(writer, 2.0)
        writer.cancel()
    return ws
