"""The front process when there are several media workers.

It serves HTTP (the web client, development tokens, health, metrics) and
places every room on one worker: a client's WebSocket is relayed to the worker
that holds its room, decided by the room named in its first `join` or
`resume`. Media never passes through here: ICE candidates point straight at
the worker's own UDP ports. Health and metrics aggregate the workers'.

When a worker dies, the pool (workers.py) starts it again; one that hangs, the pool
kills, and it is started again the same way. Its clients' WebSockets
close with 1012 (service restart): their sessions died with the worker. While it is
down its rooms are placed anew on a live worker at their next `join` or `resume`;
once it is back, a room still mapped to it stays there. Either way the worker that
gets a `resume` knows nothing of the session and answers `resume_failed`, and the
client joins again. Nobody is sent to a worker that is not up; with none up, a
client is closed with 1013 (try again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from aiohttp import WSMsgType, web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from .. import __version__
from .. import protocol as wire
from ..metrics import TrafficCollector
from ..session import CLOSE_TRY_AGAIN_LATER
from ..settings import Settings
from ..stats import SignalingStats
from . import http
from .app import SETTINGS, STATIC_DIR
from .server import HANDLER_GRACE
from .workers import WORKER_URL, WorkerPool, WorkerProcess, WorkerState, worker_get

logger = logging.getLogger(__name__)

POOL = web.AppKey("pool", WorkerPool)
CLOSE_WORKER_UNAVAILABLE = 1011  # the room's worker refused the relay (it just died)
CLOSE_WORKER_GONE = 1012  # "service restart": the worker holding the session exited
RELEASE_AFTER = 5.0  # seconds beyond the reconnect grace before an idle room's place is forgotten


@dataclass
class Placement:
    """Room -> worker. New rooms go to the live worker holding the fewest sessions,
    preferring those that answered their last probe; a room keeps its worker while
    anyone is connected or may still resume, unless that worker is down (its rooms
    start over on a live one)."""

    count: int
    keep: float
    alive: Callable[[int], bool] = lambda index: True
    answering: Callable[[int], bool] = lambda index: True
    rooms: dict[str, int] = field(default_factory=dict)
    sessions: dict[str, int] = field(default_factory=dict)
    _release: dict[str, asyncio.TimerHandle] = field(default_factory=dict)

    def load(self, index: int) -> int:
        return sum(n for room, n in self.sessions.items() if self.rooms.get(room) == index)

    def enter(self, room: str) -> int | None:
        """The worker for a new session of `room`; None when no worker is up (then
        nothing is counted and `exit` is not due)."""
        index = self.rooms.get(room)
        if index is None or not self.alive(index):
            live = [i for i in range(self.count) if self.alive(i)]
            if not live:
                return None
            # A worker that missed its last probe keeps its rooms but gets no new one
            # while another answers: it may be about to be killed as hung.
            live = [i for i in live if self.answering(i)] or live
            index = min(live, key=lambda i: (self.load(i), sum(
                1 for r in self.rooms.values() if r == i), i))  # fmt: skip
            self.rooms[room] = index
        timer = self._release.pop(room, None)
        if timer is not None:
            timer.cancel()
        self.sessions[room] = self.sessions.get(room, 0) + 1
        return index

    def exit(self, room: str) -> None:
        left = self.sessions.get(room, 1) - 1
        if left > 0:
            self.sessions[room] = left
            return
        self.sessions.pop(room, None)
        loop = asyncio.get_running_loop()
        self._release[room] = loop.call_later(self.keep, self._forget, room)

    def _forget(self, room: str) -> None:
        self._release.pop(room, None)
        if room not in self.sessions:
            self.rooms.pop(room, None)


PLACEMENT = web.AppKey("placement", Placement)
# The front's own signaling counters: what it answered to connections before `join`.
STATS = web.AppKey("stats", SignalingStats)


def routing_room(message: wire.Join | wire.Resume) -> str:
    """The room a `join` or `resume` is for ("" for a join without a usable token: any
    worker refuses it the same way)."""
    if message.room:
        return message.room
    if isinstance(message, wire.Join) and message.token is not None:
        try:
            # Routing only: the worker verifies the signature, expiry and room.
            claims = jwt.decode(message.token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return ""
        if isinstance(claims, dict) and isinstance(claims.get("room"), str):
            return str(claims["room"])[:128]
    return ""


async def _until_joining(
    client: web.WebSocketResponse, limit: int, stats: SignalingStats
) -> tuple[str | bytes, str] | None:
    """Answer what the client sends before `join` or `resume` exactly as a worker's
    session would (signaling.protocol.unjoined); return that frame and its room, or
    None once the connection is over."""
    async for received in client:
        if received.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            continue
        frame: str | bytes = received.data
        try:
            wire.check_frame_size(frame, limit)
            message = wire.decode_client(frame)
        except wire.ProtocolError as exc:
            stats.errors[exc.code.value] += 1
            await _send(
                client, wire.Error(id=exc.request_id, code=exc.code, message=exc.message), stats
            )
            continue
        kind = str(type(message).__struct_config__.tag)
        answer = wire.answer_unjoined(message)
        if answer is None:
            assert isinstance(message, (wire.Join, wire.Resume))
            return frame, routing_room(message)
        stats.messages_received[kind] += 1
        for reply in answer.replies:
            if isinstance(reply, wire.Error):
                stats.errors[reply.code.value] += 1
                stats.rejected[(kind, reply.code.value)] += 1
            await _send(client, reply, stats)
        if answer.close is not None:
            code, reason = answer.close
            await client.close(code=code, message=reason.encode())
            return None
    return None


async def _send(
    client: web.WebSocketResponse, message: wire.ServerMessage, stats: SignalingStats
) -> None:
    stats.messages_sent[str(type(message).__struct_config__.tag)] += 1
    with contextlib.suppress(ConnectionError, RuntimeError):
        await client.send_str(wire.encode(message))


def make_front_app(settings: Settings, pool: WorkerPool) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app[POOL] = pool
    app[PLACEMENT] = Placement(
        count=pool.count,
        keep=settings.rooms.reconnect_grace + RELEASE_AFTER,
        alive=pool.alive,
        answering=lambda index: pool.state(index) is WorkerState.UP,
    )
    app[STATS] = SignalingStats()
    app.cleanup_ctx.append(_workers)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/ws", relay)
    app.router.add_post("/api/dev-token", http.dev_token)
    static = Path(settings.server.static_dir) if settings.server.static_dir else STATIC_DIR
    app.router.add_get("/", http.index)
    app.router.add_get(http.RULES_PATH, http.rules)
    app.router.add_static("/static/", static, show_index=False)
    return app


async def _workers(app: web.Application) -> AsyncIterator[None]:
    pool = app[POOL]
    await pool.start()
    yield
    await pool.stop(app[SETTINGS].server.drain_timeout + 2.0)


async def _get(app: web.Application, index: int, path: str) -> tuple[int, str]:
    """A GET to one worker, given as long as a liveness probe: a worker slower than
    that is reported, not waited for."""
    timeout = app[SETTINGS].server.worker_probe_timeout
    return await worker_get(app[POOL].workers[index].socket_path, path, timeout=timeout)


async def healthz(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    # All at once: one hung worker costs the answer one timeout, not one per worker.
    workers = await asyncio.gather(
        *(_worker_health(request.app, index) for index in range(pool.count))
    )
    ok = all(w["http"] == 200 and w.get("status") == "ok" for w in workers)
    return web.json_response(
        {
            "status": "ok" if ok else "degraded",
            "version": __version__,
            "rooms": sum(int(w.get("rooms", 0)) for w in workers),
            "connections": sum(int(w.get("connections", 0)) for w in workers),
            "workers": workers,
        },
        status=200 if ok else 503,
    )


async def _worker_health(app: web.Application, index: int) -> dict[str, Any]:
    """One worker's /healthz, with its pid, restarts and hangs; a worker that is not up
    is not asked (its status is `unresponsive` after a failed probe, `restarting`, or
    `stopped` while the server stops)."""
    pool = app[POOL]
    worker = pool.workers[index]
    found: dict[str, Any] = {"index": index, "pid": pool.pid(index),
                             "restarts": worker.restarts, "hangs": worker.hangs}  # fmt: skip
    state = pool.state(index)
    if state is not WorkerState.UP:
        return {**found, "http": 503, "status": str(state)}
    try:
        status, body = await _get(app, index, "/healthz")
        return {**found, "http": status, **json.loads(body)}
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return {**found, "http": 503, "status": "unreachable"}


class _Merged:
    """The workers' metric families, each sample labelled with its worker."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


_SUPERVISION: tuple[tuple[str, str, Callable[[WorkerProcess], int]], ...] = (
    ("stage_sfu_worker_restarts", "Times a media worker was started again after its process "
     "exited.", lambda worker: worker.restarts),
    ("stage_sfu_worker_probes", "Liveness probes sent to a media worker.",
     lambda worker: worker.probes),
    ("stage_sfu_worker_hangs", "Media worker processes killed because they stopped answering "
     "liveness probes.", lambda worker: worker.hangs),
)  # fmt: skip


class _Supervision:
    """The front's own counters, per worker: restarts, liveness probes and hangs."""

    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool

    def collect(self) -> list[Metric]:
        families: list[Metric] = []
        for name, documentation, count in _SUPERVISION:
            family = CounterMetricFamily(name, documentation, labels=["worker"])
            for worker in self._pool.workers:
                family.add_metric([str(worker.index)], count(worker))
            families.append(family)
        return families


async def metrics(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    merged: dict[str, Metric] = {}
    live = [worker for worker in pool.workers if pool.alive(worker.index)]
    answers = await asyncio.gather(
        *(_get(request.app, worker.index, "/metrics") for worker in live),
        return_exceptions=True,
    )
    def add(families: Iterable[Metric], worker: str) -> None:
        for family in families:
            target = merged.setdefault(
                family.name, Metric(family.name, family.documentation, family.type, family.unit)
            )
            for sample in family.samples:
                target.add_sample(sample.name, {**sample.labels, "worker": worker},
                                  sample.value, sample.timestamp)  # fmt: skip

    for worker, answer in zip(live, answers, strict=True):
        if isinstance(answer, (aiohttp.ClientError, TimeoutError)):
            continue
        if isinstance(answer, BaseException):
            raise answer
        status, text = answer
        if status == 200:
            add(text_string_to_metric_families(text), str(worker.index))
    add(TrafficCollector(request.app[STATS]).collect(), "front")
    registry = CollectorRegistry()
    registry.register(_Merged(list(merged.values())))
    registry.register(_Supervision(pool))
    return web.Response(body=generate_latest(registry), content_type="text/plain", charset="utf-8")


async def relay(request: web.Request) -> web.WebSocketResponse:
    """Relay a client's WebSocket to the worker holding its room."""
    settings = request.app[SETTINGS]
    limit = settings.server.max_message_bytes * 4
    client = web.WebSocketResponse(max_msg_size=limit, heartbeat=20.0)
    await client.prepare(request)
    first = await _until_joining(client, settings.server.max_message_bytes, request.app[STATS])
    if first is None:
        return client
    frame, room = first
    placement = request.app[PLACEMENT]
    index = placement.enter(room)
    if index is None:
        logger.warning("room=%s - no media worker is up", room)
        await client.close(code=CLOSE_TRY_AGAIN_LATER, message=b"no media worker available")
        return client
    worker = request.app[POOL].workers[index]
    connector = aiohttp.UnixConnector(path=worker.socket_path)
    session = aiohttp.ClientSession(connector=connector)
    try:
        upstream = await session.ws_connect(WORKER_URL + "/ws", max_msg_size=limit)
        if isinstance(frame, str):
            await upstream.send_str(frame)
        else:
            await upstream.send_bytes(frame)
        await _pump(client, upstream)
    except aiohttp.ClientError as exc:
        logger.warning("room=%s - worker %d unreachable: %s", room, index, exc)
        await client.close(code=CLOSE_WORKER_UNAVAILABLE, message=b"worker unavailable")
    finally:
        placement.exit(room)
        await session.close()
    return client


async def _pump(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Relay both ways until the worker ends the session, or the client goes away.

    When the worker ends it (after `leave`, a kick, shutdown), its last frames and close
    code reach the client even while the client still sends: the client's side stops
    being read before the close handshake, so the handshake reads (and drops) what the
    client sent meanwhile instead of resetting a connection with unread data."""

    async def down() -> tuple[int, bytes]:
        while True:
            message = await upstream.receive()
            if message.type == WSMsgType.TEXT:
                await client.send_str(message.data)
            elif message.type == WSMsgType.BINARY:
                await client.send_bytes(message.data)
            elif message.type == WSMsgType.CLOSE:
                return message.data, b""  # the worker closed: bye, kicks, shutdown
            elif message.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                # Gone without a close frame: the worker died, and the session with it.
                return CLOSE_WORKER_GONE, b"media worker gone"

    async def up() -> None:
        async for message in client:
            with contextlib.suppress(ConnectionError, RuntimeError):
                if message.type == WSMsgType.TEXT:
                    await upstream.send_str(message.data)
                elif message.type == WSMsgType.BINARY:
                    await upstream.send_bytes(message.data)

    downward = asyncio.ensure_future(down())
    upward = asyncio.ensure_future(up())
    try:
        await asyncio.wait((downward, upward), return_when=asyncio.FIRST_COMPLETED)
        if downward.done() and not downward.cancelled() and downward.exception() is None:
            upward.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await upward
            code, reason = downward.result()
            await client.close(code=code, message=reason)
        else:  # the client went away: the worker hears of it
            await upstream.close()
            await asyncio.wait((downward,), timeout=HANDLER_GRACE)
    finally:
        for task in (downward, upward):
            task.cancel()
        for task in (downward, upward):
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await task
        await upstream.close()
        await client.close()


async def serve_front(settings: Settings, count: int) -> None:
    pool = WorkerPool(settings, count)
    app = make_front_app(settings, pool)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=HANDLER_GRACE)
    await runner.setup()
    site = web.TCPSite(runner, settings.server.host, settings.server.port)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else settings.server.port
    logger.info("stage-sfu listening on http://%s:%d with %d media workers (pids %s)",
                settings.server.host, port, count, pool.pids())  # fmt: skip
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        logger.info("stopping: workers drain their rooms")
        # Workers first, while the relays still run: their `bye` reaches the clients.
        await pool.stop(settings.server.drain_timeout + 2.0)
    finally:
        await runner.cleanup()
    logger.info("stopped")
