"""The home worker's side of a spread room.

`RoomSpread` decides where each new subscribe connection goes and, for the
ones placed on another worker (an *edge*), stands in for the media objects
there: `RemoteSubscriber` is a `signaling.subscriber.Subscriber` like a local
WebRtcTransport and `RemoteConsumer` stands for a Consumer, so the room
reconciles them like local ones. Each published stream is piped at most once
to each edge, the first time one of its subscribers consumes it; pausing at
the home producer stops the pipe too, so stage enforcement holds everywhere.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import msgspec

from sfu import events as sfu_events
from sfu.consumer import Consumer
from sfu.errors import NegotiationError
from sfu.layer_report import ReceiveReport
from sfu.pipe_transport import PipeTransport
from sfu.producer import Producer
from sfu.router import Router
from sfu.tasks import TaskSet
from sfu.types import CloseReason, ConsumerId, ProducerId, TransportId

from . import messages as m

logger = logging.getLogger(__name__)


class LinkError(Exception):
    """The other worker cannot be reached, or the connection to it ended."""


class Link(Protocol):
    """An ordered message channel to one other worker."""

    def send(self, message: m.ToEdge) -> None: ...
    async def request(self, message: m.ToEdge) -> m.Reply:
        """Send a message that has an `id` (any value: the link numbers it) and
        await its reply. Raises LinkError."""
        ...


class Cluster(Protocol):
    """This worker's view of the others."""

    index: int

    @property
    def peers(self) -> tuple[int, ...]:
        """The other workers that may take subscribers now."""
        ...

    async def link(self, index: int) -> Link: ...

    async def loads(self) -> Mapping[int, int]:
        """Media connections per worker, this one's included (others' may be a second old)."""
        ...

    def placed(self, index: int) -> None:
        """A connection was just placed on worker `index` (until its load is read again)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteOffer:
    """An edge made a subscribe offer; the room passes it to the subscriber's client."""

    transport_id: TransportId
    sdp: str


Post = Callable[[RemoteOffer | sfu_events.SfuEvent], None]


class _Edge:
    """The room on one edge worker: a pipe pair and what was piped through it."""

    def __init__(self, *, index: int, key: str, link: Link, pipe: PipeTransport) -> None:
        self.index = index
        self.key = key
        self.link = link
        self.pipe = pipe
        self.piped: dict[ProducerId, tuple[Consumer, ...]] = {}  # one per encoding
        self.subscribers = 0

    def ensure_piped(self, producer: Producer) -> None:
        piped = self.piped.get(producer.id)
        if piped is not None and not any(consumer.closed for consumer in piped):
            return
        for consumer in piped or ():
            consumer.close()
        piped = self.pipe.consume(producer)
        self.piped[producer.id] = piped
        codec = producer.parameters.codec
        self.link.send(
            m.Produce(
                room=self.key,
                producer_id=producer.id,
                kind=producer.kind.value,
                codec=codec.name,
                clock_rate=codec.clock_rate,
                channels=codec.channels,
                parameters=list(codec.parameters),
                ssrcs=[consumer.ssrc for consumer in piped],
                stream_id=producer.stream_id,
                track_id=producer.track_id,
                priority=producer.priority,
            )
        )

    def unpipe(self, producer_id: ProducerId) -> None:
        piped = self.piped.pop(producer_id, None)
        if piped is not None:
            for consumer in piped:
                consumer.close()
            self.link.send(m.CloseProducer(room=self.key, producer_id=producer_id))


class RemoteConsumer:
    """A consumer living on an edge; closing it here closes it there."""

    def __init__(self, owner: RemoteSubscriber, producer_id: ProducerId) -> None:
        self.id = ConsumerId(uuid.uuid4().hex)
        self.producer_id = producer_id
        self.closed = False
        self._owner = owner

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._owner.consumer_closed_here(self)

    def set_view(self, *, visible: bool, height: int) -> None:
        if not self.closed:
            self._owner.view(self, visible=visible, height=height)


class RemoteSubscriber:
    """A viewer's subscribe connection whose ICE/DTLS and consumers live on an edge."""

    def __init__(self, *, spread: RoomSpread, edge: _Edge) -> None:
        self.id = TransportId(uuid.uuid4().hex)
        self.closed = False
        self.worker = edge.index
        self._spread = spread
        self._edge = edge
        self._offer_pending = False
        self.consumers: dict[ProducerId, RemoteConsumer] = {}

    @property
    def offer_pending(self) -> bool:
        return self._offer_pending

    def consume(self, producer: Producer) -> RemoteConsumer:
        self._edge.ensure_piped(producer)
        consumer = RemoteConsumer(self, producer.id)
        self.consumers[producer.id] = consumer
        self._send(m.Consume(room=self._edge.key, subscriber=self.id, producer_id=producer.id))
        return consumer

    def create_offer(self) -> None:
        """Ask the edge for an offer; it arrives later as a `RemoteOffer` event."""
        self._offer_pending = True
        self._spread.spawn(self._fetch_offer(), name=f"offer-{self.id}")
        return None

    async def _fetch_offer(self) -> None:
        try:
            reply = await self._edge.link.request(
                m.MakeOffer(room=self._edge.key, id=0, subscriber=self.id)
            )
        except LinkError:
            self.lost()
            return
        if self.closed:
            return
        if reply.error is not None:
            logger.warning("subscriber=%s - edge %d made no offer: %s", self.id, self.worker,
                           reply.error)  # fmt: skip
            self.lost()
            return
        self._spread.post(RemoteOffer(transport_id=self.id, sdp=reply.sdp))

    async def apply_answer(self, sdp: str) -> None:
        """Raises NegotiationError (nothing changes) for an answer the edge refused."""
        try:
            reply = await self._edge.link.request(
                m.ApplyAnswer(room=self._edge.key, id=0, subscriber=self.id, sdp=sdp)
            )
        except LinkError:
            self.lost()
            raise NegotiationError("the media worker holding this connection went away") from None
        if reply.error is not None:
            raise NegotiationError(reply.error)
        self._offer_pending = False

    async def receive_report(self) -> ReceiveReport:
        """What the connection forwards now, from the edge. Raises LinkError when the
        edge does not answer; a stats request does not end the connection."""
        reply = await self._edge.link.request(
            m.ReportSubscriber(room=self._edge.key, id=0, subscriber=self.id)
        )
        if reply.report is None:
            raise LinkError(reply.error or "no report")
        return reply.report

    def consumer_closed_here(self, consumer: RemoteConsumer) -> None:
        if self.consumers.get(consumer.producer_id) is consumer:
            del self.consumers[consumer.producer_id]
            self._send(
                m.CloseConsumer(
                    room=self._edge.key, subscriber=self.id, producer_id=consumer.producer_id
                )
            )

    def view(self, consumer: RemoteConsumer, *, visible: bool, height: int) -> None:
        self._send(
            m.ViewConsumer(
                room=self._edge.key,
                subscriber=self.id,
                producer_id=consumer.producer_id,
                visible=visible,
                height=height,
            )
        )

    def consumer_closed_there(self, producer_id: ProducerId, reason: CloseReason) -> None:
        consumer = self.consumers.pop(producer_id, None)
        if consumer is None or consumer.closed:
            return
        consumer.closed = True
        self._spread.post(
            sfu_events.ConsumerClosed(
                consumer_id=consumer.id,
                producer_id=producer_id,
                transport_id=self.id,
                reason=reason,
            )
        )

    def lost(self, reason: CloseReason = CloseReason.CONNECTION_FAILED) -> None:
        """The edge closed the connection (or became unreachable)."""
        if self.closed:
            return
        self._forget()
        self._spread.post(sfu_events.TransportClosed(transport_id=self.id, reason=reason))

    def close(self, reason: CloseReason = CloseReason.REQUESTED) -> None:
        if self.closed:
            return
        self._send(m.CloseSubscriber(room=self._edge.key, subscriber=self.id))
        self._forget()

    def _forget(self) -> None:
        self.closed = True
        for consumer in self.consumers.values():
            consumer.closed = True
        self.consumers.clear()
        self._spread.subscriber_gone(self)

    def _send(self, message: m.ToEdge) -> None:
        if not self.closed:
            self._edge.link.send(message)


class RoomSpread:
    """Places a room's subscribe connections over the workers of the cluster.

    The first `spread_after` stay on the home worker; after that each new one
    goes to the worker holding the fewest of this room's subscribers (home
    included), so one big room uses every core.
    """

    def __init__(
        self,
        *,
        name: str,
        router: Router,
        cluster: Cluster,
        spread_after: int,
        pipe_address: str,
        post: Post,
    ) -> None:
        self.key = f"{cluster.index}:{name}"
        self._router = router
        self._cluster = cluster
        self._spread_after = spread_after
        self._pipe_address = pipe_address
        self.post = post
        self._edges: dict[int, _Edge] = {}
        self._subscribers: dict[TransportId, RemoteSubscriber] = {}
        self._tasks = TaskSet()
        self.closed = False

    def spawn(self, coro: object, *, name: str) -> None:
        self._tasks.spawn(coro, name=name)  # type: ignore[arg-type]

    def placement(self, local_subscribers: int, loads: Mapping[int, int]) -> int:
        """The worker for a new subscriber of this room (the home's own index: stay here).

        `local_subscribers` counts this room's subscribers at home; `loads` the media
        connections of every worker (all rooms). Once the room holds `spread_after` at
        home, a subscriber goes to the least-loaded other worker if that one is lighter
        than home by more than a tenth of home's load (or of `spread_after`): rooms that
        already balance the workers are not piped across for the few connections the
        others' slightly stale loads may be off by.
        """
        home = self._cluster.index
        peers = [i for i in self._cluster.peers if i in loads]
        if not peers or local_subscribers < self._spread_after:
            return home
        best = min(peers, key=lambda i: (loads[i], i))
        own = loads.get(home, 0)
        margin = max(self._spread_after, own) // 10
        return best if loads[best] + margin < own else home

    async def create_subscriber(self, local_subscribers: int) -> RemoteSubscriber | None:
        """A subscriber on another worker, or None to create it here."""
        if self.closed or local_subscribers < self._spread_after or not self._cluster.peers:
            return None
        index = self.placement(local_subscribers, await self._cluster.loads())
        if index == self._cluster.index or self.closed:
            return None
        try:
            edge = self._edges.get(index) or await self._open_edge(index)
            subscriber = RemoteSubscriber(spread=self, edge=edge)
            reply = await edge.link.request(
                m.OpenSubscriber(room=edge.key, id=0, subscriber=subscriber.id)
            )
        except (LinkError, OSError) as exc:
            logger.warning("room=%s - worker %d unavailable, subscriber stays home: %s",
                           self.key, index, exc)  # fmt: skip
            return None
        if reply.error is not None or self.closed:
            logger.warning("room=%s - worker %d refused a subscriber: %s", self.key, index,
                           reply.error)  # fmt: skip
            return None
        edge.subscribers += 1
        self._cluster.placed(index)
        self._subscribers[subscriber.id] = subscriber
        return subscriber

    async def _open_edge(self, index: int) -> _Edge:
        link = await self._cluster.link(index)
        pipe = await self._router.create_pipe_transport(address=self._pipe_address)
        host, port = pipe.local_address
        try:
            reply = await link.request(
                m.OpenRoom(room=self.key, id=0, pipe_host=host, pipe_port=port)
            )
        except BaseException:
            pipe.close()
            raise
        if reply.error is not None or self.closed:
            pipe.close()
            raise LinkError(reply.error or "room closed")
        pipe.connect(reply.pipe_host, reply.pipe_port)
        edge = _Edge(index=index, key=self.key, link=link, pipe=pipe)
        self._edges[index] = edge
        logger.info("room=%s - spread to worker %d (pipe %s:%d -> %s:%d)", self.key, index,
                    host, port, reply.pipe_host, reply.pipe_port)  # fmt: skip
        return edge

    def subscriber_gone(self, subscriber: RemoteSubscriber) -> None:
        if self._subscribers.pop(subscriber.id, None) is not None:
            edge = self._edges.get(subscriber.worker)
            if edge is not None:
                edge.subscribers -= 1

    @property
    def remote_subscribers(self) -> int:
        return len(self._subscribers)

    # -- events ---------------------------------------------------------------------
    def producer_ranked(self, producer: Producer) -> None:
        """Its priority changed: the edges' mirrors follow."""
        for edge in self._edges.values():
            if producer.id in edge.piped:
                ranked = m.RankProducer(
                    room=edge.key, producer_id=producer.id, priority=producer.priority
                )
                edge.link.send(ranked)

    def producer_closed(self, producer_id: ProducerId) -> None:
        for edge in self._edges.values():
            edge.unpipe(producer_id)

    def on_message(self, message: m.ToHome) -> None:
        """An event from an edge about this room (replies never come here)."""
        match message:
            case m.SubscriberClosed(subscriber=subscriber_id, reason=reason):
                subscriber = self._subscribers.get(TransportId(subscriber_id))
                if subscriber is not None:
                    subscriber.lost(_reason(reason))
            case m.ConsumerClosed(subscriber=subscriber_id, producer_id=producer_id, reason=reason):
                subscriber = self._subscribers.get(TransportId(subscriber_id))
                if subscriber is not None:
                    subscriber.consumer_closed_there(ProducerId(producer_id), _reason(reason))
            case _:
                pass

    def link_lost(self, index: int) -> None:
        edge = self._edges.pop(index, None)
        if edge is None:
            return
        edge.pipe.close()
        for subscriber in [s for s in self._subscribers.values() if s.worker == index]:
            subscriber.lost()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.post = _discard  # the router's on_event target: let go of the room
        for edge in self._edges.values():
            edge.link.send(m.CloseRoom(room=self.key))
            edge.pipe.close()
        self._edges.clear()
        self._subscribers.clear()
        await self._tasks.cancel_all()


def _discard(event: RemoteOffer | sfu_events.SfuEvent) -> None:
    pass


def _reason(text: str) -> CloseReason:
    try:
        return CloseReason(text)
    except ValueError:
        return CloseReason.CONNECTION_FAILED


def with_id(message: m.ToEdge, request_id: int) -> m.ToEdge:
    """The request numbered by its link."""
    return msgspec.structs.replace(message, id=request_id)
