"""The edge worker's side of a spread room: it holds some viewers' media.

Per room: a router, a pipe from the home worker carrying one mirror producer
per piped stream (same producer ids as at home), and the viewers' WebRTC
transports with their consumers. It does what the home asks, in order, and
reports what only it can see (a connection failed, a viewer refused a track).
Everything a connection opened is closed when that connection ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sfu import events as sfu_events
from sfu.consumer import Consumer
from sfu.errors import InvalidStateError, NegotiationError, SfuError
from sfu.pipe_transport import PipeTransport
from sfu.producer import Producer
from sfu.router import Router
from sfu.types import CloseReason, MediaKind, ProducerId, TransportId
from sfu.webrtc_transport import WebRtcTransport
from sfu.worker import Worker

from . import messages as m

logger = logging.getLogger(__name__)

Send = Callable[[m.ToHome], None]


@dataclass(eq=False)
class _Subscriber:
    transport: WebRtcTransport
    consumers: dict[ProducerId, Consumer] = field(default_factory=dict)


class _EdgeRoom:
    def __init__(self, key: str, router: Router, pipe: PipeTransport, send: Send) -> None:
        self.key = key
        self.router = router
        self.pipe = pipe
        self.mirrors: dict[ProducerId, Producer] = {}
        self.subscribers: dict[str, _Subscriber] = {}
        self.names: dict[TransportId, str] = {}  # a subscriber's transport -> its name
        self._send = send

    def on_event(self, event: sfu_events.SfuEvent) -> None:
        """Reports the router's events the home cannot see (it asked for the rest)."""
        match event:
            case sfu_events.TransportClosed(transport_id=transport_id, reason=reason):
                name = self.names.pop(transport_id, None)
                subscriber = self.subscribers.get(name) if name is not None else None
                if (
                    name is not None
                    and subscriber is not None
                    and (subscriber.transport.id == transport_id)
                ):
                    del self.subscribers[name]
                    self._send(m.SubscriberClosed(room=self.key, subscriber=name, reason=reason))
            case sfu_events.ConsumerClosed(
                consumer_id=consumer_id, producer_id=producer_id, transport_id=transport_id
            ):
                name = self.names.get(transport_id)
                subscriber = self.subscribers.get(name) if name is not None else None
                if name is None or subscriber is None:
                    return
                consumer = subscriber.consumers.get(producer_id)
                if consumer is not None and consumer.id == consumer_id:
                    del subscriber.consumers[producer_id]
                    self._send(m.ConsumerClosed(
                        room=self.key, subscriber=name, producer_id=producer_id,
                        reason=event.reason,
                    ))  # fmt: skip
            case _:
                pass


class EdgeSession:
    """Serves one home worker's connection; `handle` must be awaited in arrival order."""

    def __init__(self, worker: Worker, *, pipe_address: str, send: Send) -> None:
        self._worker = worker
        self._pipe_address = pipe_address
        self._send = send
        self.rooms: dict[str, _EdgeRoom] = {}
        self.closed = False

    async def handle(self, message: m.ToEdge) -> None:
        """Apply one message from a room's home. A request (a message with an `id`) is
        always answered, with an error if anything at all went wrong, so the home never
        waits out its timeout for a reply that will not come."""
        try:
            await self._handle(message)
        except Exception as exc:
            expected = isinstance(exc, (SfuError, ValueError))
            if not expected:
                logger.exception("room=%s - %s failed", message.room, type(message).__name__)
            request_id = getattr(message, "id", None)
            if isinstance(request_id, int):
                error = str(exc) if expected else "internal error on the edge worker"
                self._send(m.Reply(room=message.room, id=request_id, error=error))
            elif expected:
                logger.debug("room=%s - x %s: %s", message.room, type(message).__name__, exc)

    async def _handle(self, message: m.ToEdge) -> None:
        match message:
            case m.OpenRoom():
                await self._open_room(message)
            case m.CloseRoom(room=key):
                room = self.rooms.pop(key, None)
                if room is not None:
                    self._close_room(room)
            case m.Produce():
                room = self._room(message.room)
                producer = room.pipe.produce(
                    kind=MediaKind(message.kind),
                    codec_name=message.codec,
                    clock_rate=message.clock_rate,
                    channels=message.channels,
                    parameters=tuple(message.parameters),
                    ssrcs=tuple(message.ssrcs),
                    stream_id=message.stream_id,
                    track_id=message.track_id,
                    producer_id=ProducerId(message.producer_id),
                )
                producer.priority = message.priority
                room.mirrors[producer.id] = producer
            case m.RankProducer(producer_id=producer_id, priority=priority):
                ranked = self._room(message.room).mirrors.get(ProducerId(producer_id))
                if ranked is not None:
                    ranked.priority = priority
            case m.CloseProducer(producer_id=producer_id):
                mirror = self._room(message.room).mirrors.pop(ProducerId(producer_id), None)
                if mirror is not None:
                    mirror.close()
            case m.OpenSubscriber(id=request_id, subscriber=name):
                room = self._room(message.room)
                transport = await room.router.create_webrtc_transport()
                if self.rooms.get(message.room) is not room:  # closed meanwhile
                    transport.close()
                    raise InvalidStateError("room closed")
                room.subscribers[name] = _Subscriber(transport)
                room.names[transport.id] = name
                self._send(m.Reply(room=message.room, id=request_id))
            case m.CloseSubscriber(subscriber=name):
                subscriber = self._room(message.room).subscribers.pop(name, None)
                if subscriber is not None:
                    subscriber.transport.close()
            case m.Consume(subscriber=name, producer_id=producer_id):
                self._consume(message.room, name, ProducerId(producer_id))
            case m.CloseConsumer(subscriber=name, producer_id=producer_id):
                subscriber = self._subscriber(message.room, name)
                consumer = subscriber.consumers.pop(ProducerId(producer_id), None)
                if consumer is not None:
                    consumer.close()
            case m.ViewConsumer(subscriber=name, producer_id=producer_id):
                viewed = self._subscriber(message.room, name).consumers.get(ProducerId(producer_id))
                if viewed is not None and not viewed.closed:
                    viewed.set_view(visible=message.visible, height=message.height)
            case m.ReportSubscriber(id=request_id, subscriber=name):
                report = self._subscriber(message.room, name).transport.receive_report()
                self._send(m.Reply(room=message.room, id=request_id, report=report))
            case m.MakeOffer(id=request_id, subscriber=name):
                sdp = self._subscriber(message.room, name).transport.create_offer()
                self._send(m.Reply(room=message.room, id=request_id, sdp=sdp))
            case m.ApplyAnswer(id=request_id, subscriber=name, sdp=sdp):
                try:
                    await self._subscriber(message.room, name).transport.apply_answer(sdp)
                except NegotiationError as exc:
                    self._send(m.Reply(room=message.room, id=request_id, error=str(exc)))
                    return
                self._send(m.Reply(room=message.room, id=request_id))

    async def _open_room(self, message: m.OpenRoom) -> None:
        if message.room in self.rooms:
            raise InvalidStateError(f"room {message.room} is already open here")
        holder: list[_EdgeRoom] = []
        router = self._worker.create_router(on_event=lambda event: holder[0].on_event(event))
        try:
            pipe = await router.create_pipe_transport(address=self._pipe_address)
            pipe.connect(message.pipe_host, message.pipe_port)
        except BaseException:
            self._worker.close_router(router)
            raise
        room = _EdgeRoom(message.room, router, pipe, self._send)
        holder.append(room)
        self.rooms[message.room] = room
        host, port = pipe.local_address
        self._send(m.Reply(room=message.room, id=message.id, pipe_host=host, pipe_port=port))

    def _consume(self, key: str, name: str, producer_id: ProducerId) -> None:
        room = self._room(key)
        subscriber = self._subscriber(key, name)
        producer = room.mirrors.get(producer_id)
        if producer is None or producer.closed:
            # Closed at home meanwhile: the home hears it as it would from a local consumer.
            self._send(m.ConsumerClosed(
                room=key, subscriber=name, producer_id=producer_id,
                reason=CloseReason.PRODUCER_CLOSED,
            ))  # fmt: skip
            return
        subscriber.consumers[producer_id] = subscriber.transport.consume(producer)

    def _room(self, key: str) -> _EdgeRoom:
        room = self.rooms.get(key)
        if room is None:
            raise InvalidStateError(f"room {key} is not open here")
        return room

    def _subscriber(self, key: str, name: str) -> _Subscriber:
        subscriber = self._room(key).subscribers.get(name)
        if subscriber is None:
            raise InvalidStateError(f"subscriber {name} is not here")
        return subscriber

    def close(self) -> None:
        """The home's connection ended: everything it opened here goes."""
        self.closed = True
        for room in self.rooms.values():
            self._close_room(room)
        self.rooms.clear()

    def _close_room(self, room: _EdgeRoom) -> None:
        room.subscribers.clear()  # closed with the router; nobody asked to hear about it
        room.names.clear()
        self._worker.close_router(room.router)
