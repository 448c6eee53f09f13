"""The baseline: what a Python developer would write with aiortc alone.

An aiohttp server speaking the subset of the stage-sfu protocol the bots use (join,
publish -> publish_answer, subscribe_offer -> subscribe_answer, leave, ping) on top of
`aiortc.RTCPeerConnection` and `aiortc.contrib.media.MediaRelay`: each published track
is decoded once, and every viewer's sender encodes it again (one encoder per viewer),
which is how aiortc forwards media. Tokens are not checked.

Choices in the relay's favour: max-bundle (one transport per viewer, like the SFU) and
`MediaRelay.subscribe(..., buffered=False)`, so a slow encoder drops frames instead of
queueing them without bound.

`python -m benchmarks.naive_relay --port 8090` serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import signal
from typing import Any

import aioice.ice
import uvloop
from aiohttp import WSMsgType, web
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.rtcconfiguration import RTCBundlePolicy

logger = logging.getLogger("benchmarks.naive_relay")


def _loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"] if use_ipv4 else []


class Relay:
    def __init__(self) -> None:
        self.relay = MediaRelay()
        self.tracks: list[MediaStreamTrack] = []
        self.waiting: set[Client] = set()
        self.clients: set[Client] = set()
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        return f"p{next(self._ids)}"


def _configuration() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


class Client:
    def __init__(self, relay: Relay, ws: web.WebSocketResponse) -> None:
        self.relay = relay
        self.ws = ws
        self.participant_id = relay.new_id()
        self.publisher: RTCPeerConnection | None = None
        self.subscriber: RTCPeerConnection | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if not self.ws.closed:
            await self.ws.send_str(json.dumps(message))

    async def handle(self, message: dict[str, Any]) -> bool:
        """False when the client left."""
        kind, request_id = message.get("type"), message.get("id")
        if kind == "join":
            await self.send(
                {
                    "type": "joined",
                    "id": request_id,
                    "participant_id": self.participant_id,
                    "participants": [],
                }
            )
            if message.get("entry") != "stage":
                if self.relay.tracks:
                    await self.offer()
                else:
                    self.relay.waiting.add(self)
        elif kind == "publish":
            await self.publish(message["sdp"], request_id)
        elif kind == "subscribe_answer":
            if self.subscriber is not None:
                answer = RTCSessionDescription(sdp=message["sdp"], type="answer")
                await self.subscriber.setRemoteDescription(answer)
            await self.send({"type": "ack", "id": request_id})
        elif kind == "ping":
            await self.send({"type": "pong", "id": request_id})
        elif kind == "leave":
            await self.send({"type": "ack", "id": request_id})
            return False
        return True

    async def publish(self, sdp: str, request_id: str | None) -> None:
        pc = self.publisher = RTCPeerConnection(_configuration())
        pc.on("track", self.relay.tracks.append)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self.send(
            {"type": "publish_answer", "id": request_id, "sdp": pc.localDescription.sdp}
        )
        waiting, self.relay.waiting = self.relay.waiting, set()
        for client in waiting:
            await client.offer()

    async def offer(self) -> None:
        pc = self.subscriber = RTCPeerConnection(_configuration())
        for track in self.relay.tracks:
            pc.addTrack(self.relay.relay.subscribe(track, buffered=False))
        await pc.setLocalDescription(await pc.createOffer())
        await self.send({"type": "subscribe_offer", "sdp": pc.localDescription.sdp})

    async def close(self) -> None:
        self.relay.waiting.discard(self)
        for pc in (self.subscriber, self.publisher):
            if pc is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(5):
                        await pc.close()


RELAY = web.AppKey("relay", Relay)


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=1 << 22)
    await ws.prepare(request)
    relay = request.app[RELAY]
    client = Client(relay, ws)
    relay.clients.add(client)
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                break
            try:
                if not await client.handle(json.loads(message.data)):
                    break
            except Exception as exc:
                logger.warning("%s: %s", client.participant_id, exc)
                await client.send(
                    {"type": "error", "id": None, "code": "internal", "message": str(exc)}
                )
    finally:
        relay.clients.discard(client)
        await client.close()
    return ws


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "clients": len(request.app[RELAY].clients)})


async def serve(host: str, port: int) -> None:
    aioice.ice.get_host_addresses = _loopback  # aioice skips loopback addresses otherwise
    app = web.Application()
    app[RELAY] = Relay()
    app.router.add_get("/ws", websocket)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for client in list(app[RELAY].clients):
        await client.close()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5):
            await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A naive aiortc MediaRelay server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
