"""A Python client for the stage-sfu protocol, over aiortc and aiohttp.

Used by the tests, the load bots and anyone scripting a room: it joins with a
token, publishes tracks on stage, and answers the server's subscribe offers,
exposing received tracks by participant. It is a WebRTC peer, not part of the
server, so it may use aiortc's RTCPeerConnection (the server never does).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import aioice.ice
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)

from .protocol.server import REPLY_TYPES

logger = logging.getLogger(__name__)

_ice_addresses: tuple[str, ...] | None = None
_stock_host_addresses = aioice.ice.get_host_addresses


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _ice_addresses is not None:
        return [a for a in _ice_addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]
    return _stock_host_addresses(use_ipv4, use_ipv6)


def use_ice_addresses(addresses: Sequence[str] | None) -> None:
    """Gather client candidates only on these addresses (aioice skips loopback otherwise).

    Process-wide, because aioice looks host addresses up through a module
    function; `None` restores aioice's own choice.
    """
    global _ice_addresses
    _ice_addresses = tuple(addresses) if addresses is not None else None
    aioice.ice.get_host_addresses = _host_addresses


class ServerError(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = str(error.get("code"))
        self.message = str(error.get("message"))
        retry_after = error.get("retry_after")  # rate_limited: seconds to wait
        self.retry_after = float(retry_after) if isinstance(retry_after, (int, float)) else None


class MediaConnectionError(Exception):
    """A WebRTC connection could not be set up or failed (see `StageClient.media_error`)."""


@dataclass(eq=False)
class RemoteTrack:
    participant_id: str
    track_id: str
    track: MediaStreamTrack


@dataclass(eq=False)
class _Pending:
    future: asyncio.Future[dict[str, Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class StageClient:
    """One participant. Create with `await StageClient.connect(...)`.

    Both WebRTC connections use the STUN/TURN servers of `joined.ice_servers`; with
    `relay=True` they gather relay candidates only (`iceTransportPolicy: "relay"`), so
    media flows through the TURN server. aiortc uses the first TURN URL of the list.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse,
        *,
        relay: bool = False,
    ):
        self._http = session
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._reader: asyncio.Task[None] | None = None
        self._policy = RTCIceTransportPolicy.RELAY if relay else RTCIceTransportPolicy.ALL
        self._ice_servers: list[RTCIceServer] = []
        # Created once `joined` names the ICE servers; offers that come first wait for it.
        self._subscriber: RTCPeerConnection | None = None
        self._configured = asyncio.Event()
        self._publisher: RTCPeerConnection | None = None
        self._negotiating: asyncio.Task[None] | None = None
        self._offer_sdp = ""
        self.events: list[dict[str, Any]] = []
        self.tracks: list[RemoteTrack] = []
        self.joined: dict[str, Any] = {}
        self.you: dict[str, Any] = {}  # our own participant record, kept current
        self.participants: dict[str, dict[str, Any]] = {}  # as far as we are told
        self.closed = asyncio.Event()
        self.media_error: MediaConnectionError | None = None
        self.on_event: Callable[[dict[str, Any]], None] | None = None
        self._changed = asyncio.Condition()

    @classmethod
    async def connect(
        cls,
        url: str,
        token: str,
        *,
        entry: str = "viewer",
        viewer_only: bool = False,
        mic: bool = True,
        camera: bool = True,
        ice_addresses: Sequence[str] | None = ("127.0.0.1",),
        relay: bool = False,
    ) -> StageClient:
        """Open the WebSocket at `url` (…/ws) and join with `token` (`relay`: media only
        through the TURN servers the server names)."""
        join = {
            "type": "join",
            "token": token,
            "entry": entry,
            "viewer_only": viewer_only,
            "mic": mic,
            "camera": camera,
        }
        return await cls._open(url, join, ice_addresses, relay)

    @classmethod
    async def resume(
        cls,
        url: str,
        room: str,
        resume_token: str,
        *,
        ice_addresses: Sequence[str] | None = ("127.0.0.1",),
        relay: bool = False,
    ) -> StageClient:
        """Take back a dropped session (same participant, seat and mute state)."""
        message = {"type": "resume", "room": room, "resume_token": resume_token}
        return await cls._open(url, message, ice_addresses, relay)

    @classmethod
    async def _open(
        cls,
        url: str,
        first: dict[str, Any],
        ice_addresses: Sequence[str] | None,
        relay: bool,
    ) -> StageClient:
        if ice_addresses is not None:
            use_ice_addresses(ice_addresses)
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(url, max_msg_size=1 << 22)
        except BaseException:
            await session.close()
            raise
        client = cls(session, ws, relay=relay)
        client._reader = asyncio.get_running_loop().create_task(client._read())
        try:
            client.joined = await client.request(first)
        except BaseException:
            await client.close()
            raise
        client.you = dict(client.joined["you"])
        for participant in client.joined["participants"]:
            client.participants[participant["participant_id"]] = participant
        return client

    async def command(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Send a stage command (e.g. `command("invite", target=..., revision=...)`)."""
        return await self.request({"type": kind, **fields})

    @property
    def participant_id(self) -> str:
        return str(self.joined["participant_id"])

    # -- requests -----------------------------------------------------------------
    async def request(self, message: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:
        """Send a request and wait for its reply; raises ServerError on an error reply."""
        request_id = str(next(self._ids))
        pending = _Pending()
        self._pending[request_id] = pending
        try:
            await self._ws.send_json({**message, "id": request_id})
            reply = await asyncio.wait_for(pending.future, timeout)
        finally:
            self._pending.pop(request_id, None)
        if reply.get("type") == "error":
            raise ServerError(reply)
        return reply

    async def media_stats(self) -> dict[str, Any]:
        """What this client receives now and why at that quality (`get_media_stats`)."""
        return await self.request({"type": "get_media_stats"})

    async def send_raw(self, frame: str) -> None:
        """Send a frame as is (for testing how the server treats bad input)."""
        await self._ws.send_str(frame)

    async def publish(
        self,
        tracks: Sequence[MediaStreamTrack],
        *,
        sources: Sequence[str] | None = None,
        munge: Callable[[str], str] | None = None,
    ) -> None:
        """Send `tracks` (sendonly) on the publish connection (created on first use).

        `sources` names each track ("microphone", "camera", "screen", ...); by
        default audio is the microphone and video the camera.
        """
        # One publish connection per participant: later calls renegotiate it. A
        # refused first offer leaves nothing on the server, so start afresh then.
        if self._publisher is None or self._publisher.connectionState == "closed":
            self._publisher = self._connection("publish")
        pc = self._publisher
        first = pc.remoteDescription is None
        added = [pc.addTransceiver(track, direction="sendonly") for track in tracks]
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        if first and not _has_candidates(offer):
            self._publisher = None
            await pc.close()
            raise self._fail(self._no_candidates("publish"))
        if munge is not None:
            offer = munge(offer)
        message: dict[str, Any] = {"type": "publish", "sdp": offer}
        if sources is not None:
            message["sources"] = {
                t.mid: source for t, source in zip(added, sources, strict=True) if t.mid
            }
        try:
            reply = await self.request(message)
        except ServerError:
            if first:
                self._publisher = None
                await pc.close()
            raise
        await pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))

    @property
    def close_code(self) -> int | None:
        """The WebSocket close code, once the connection has closed (1001: server going away)."""
        return self._ws.close_code

    @property
    def publisher(self) -> RTCPeerConnection | None:
        return self._publisher

    @property
    def subscriber(self) -> RTCPeerConnection:
        assert self._subscriber is not None, "the subscribe connection comes with `joined`"
        return self._subscriber

    @property
    def ice_servers(self) -> list[RTCIceServer]:
        """The STUN/TURN servers of the last `joined` (TURN ones with credentials)."""
        return list(self._ice_servers)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> None:
        """Wait until predicate() holds, re-checked whenever a message or track arrives."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(predicate)

    async def wait_event(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def check() -> bool:
            found[:] = [e for e in self.events if predicate(e)]
            return bool(found)

        await self.wait_for(check, timeout)
        return found[0]

    async def leave(self) -> None:
        with contextlib.suppress(ServerError, ConnectionError, TimeoutError):
            await self.request({"type": "leave"}, timeout=5)
        await self.close()

    async def close(self) -> None:
        await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._negotiating is not None:
            self._negotiating.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._negotiating
        for pc in (self._publisher, self._subscriber):
            if pc is not None:
                await pc.close()
        await self._http.close()

    # -- incoming -----------------------------------------------------------------
    async def _read(self) -> None:
        try:
            async for message in self._ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = message.json()
                await self._dispatch(data)
        finally:
            self.closed.set()
            for pending in self._pending.values():
                if not pending.future.done():
                    pending.future.set_exception(ConnectionError("connection closed"))
            await self._notify()

    async def _dispatch(self, data: dict[str, Any]) -> None:
        request_id = data.get("id")
        pending = self._pending.get(request_id) if isinstance(request_id, str) else None
        if pending is not None and data.get("type") == "joined":
            self._configure(data.get("ice_servers", []))
        if pending is not None and data.get("type") in REPLY_TYPES:
            if not pending.future.done():
                pending.future.set_result(data)
        else:
            self.events.append(data)
            self._track_participants(data)
            if data.get("type") == "subscribe_offer":
                previous = self._negotiating
                self._negotiating = asyncio.get_running_loop().create_task(
                    self._answer(data["sdp"], previous)
                )
            if self.on_event is not None:
                self.on_event(data)
        await self._notify()

    def _track_participants(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind in ("participant_joined", "participant_updated"):
            participant = data["participant"]
            self.participants[participant["participant_id"]] = participant
            if self.joined and participant["participant_id"] == self.participant_id:
                self.you = dict(participant)
        elif kind == "participant_left":
            self.participants.pop(data["participant_id"], None)
        elif kind == "snapshot":
            self.participants = {p["participant_id"]: p for p in data["participants"]}

    def _configure(self, ice_servers: list[dict[str, Any]]) -> None:
        """Take `joined.ice_servers`; the subscribe connection can now be made."""
        self._ice_servers = [
            RTCIceServer(
                urls=server["urls"],
                username=server.get("username"),
                credential=server.get("credential"),
            )
            for server in ice_servers
        ]
        if self._subscriber is None:
            self._subscriber = self._connection("subscribe")
            self._subscriber.on("track", self._on_track)
        self._configured.set()

    def _connection(self, name: str) -> RTCPeerConnection:
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=self._ice_servers, iceTransportPolicy=self._policy)
        )

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState == "failed":
                self._fail(MediaConnectionError(f"the {name} media connection failed"))

        return pc

    def _no_candidates(self, name: str) -> MediaConnectionError:
        turn = [
            url
            for server in self._ice_servers
            for url in ([server.urls] if isinstance(server.urls, str) else server.urls)
            if url.startswith("turn")
        ]
        if self._policy is RTCIceTransportPolicy.RELAY:
            where = f"the TURN server ({turn[0]})" if turn else "no TURN server (none was given)"
            why = f"relay-only, and {where} gave no relay candidate"
            if turn:
                why += ": it refused the credentials or could not be reached"
        else:
            why = "no network address to gather on"
        return MediaConnectionError(f"the {name} connection has no ICE candidate: {why}")

    def _fail(self, error: MediaConnectionError) -> MediaConnectionError:
        """Record the first media failure for `media_error` and wake waiters."""
        if self.media_error is None:
            logger.warning("%s", error)
            self.media_error = error
        asyncio.get_running_loop().create_task(self._notify())
        return error

    async def _answer(self, sdp: str, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            with contextlib.suppress(Exception):
                await previous
        await self._configured.wait()
        pc = self.subscriber
        first = pc.remoteDescription is None
        self._offer_sdp = sdp  # "track" fires before remoteDescription is set
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            answer = pc.localDescription.sdp
            if first and not _has_candidates(answer):
                # The server would refuse it (invalid_sdp); say why instead.
                raise self._fail(self._no_candidates("subscribe"))
            await self.request({"type": "subscribe_answer", "sdp": answer})
        except MediaConnectionError:
            raise
        except Exception:
            logger.exception("answering the subscribe offer failed")
            raise

    def _on_track(self, track: MediaStreamTrack) -> None:
        participant_id, track_id = "", track.id
        for transceiver in self.subscriber.getTransceivers():
            if transceiver.receiver.track is track:
                msid = _msid_for_mid(self._offer_sdp, transceiver.mid)
                if msid is not None:
                    participant_id, track_id = msid
        self.tracks.append(
            RemoteTrack(participant_id=participant_id, track_id=track_id, track=track)
        )
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


def _has_candidates(sdp: str) -> bool:
    return any(line.startswith("a=candidate:") for line in sdp.splitlines())


def _msid_for_mid(sdp: str, mid: str | None) -> tuple[str, str] | None:
    current = None
    for line in sdp.splitlines():
        if line.startswith("a=mid:"):
            current = line[6:]
        elif line.startswith("a=msid:") and current == mid:
            parts = line[7:].split()
            if len(parts) == 2:
                return parts[0], parts[1]
    return None


__all__ = [
    "MediaConnectionError",
    "RemoteTrack",
    "ServerError",
    "StageClient",
    "use_ice_addresses",
]
