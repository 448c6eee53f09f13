"""Router: one room's media on one worker.

Owns the transports, the producer -> consumers fan-out (each producer keeps
an immutable tuple of its consumers, swapped on change, so the hot path
iterates without locks or copies), the observers, and one periodic task that
drives upstream RTCP and speaking detection for everything it owns.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Executor

from .aiortc_bridge import Certificate
from .clock import Clock
from .consumer import Consumer
from .direct_transport import Deliver, DirectTransport
from .errors import InvalidStateError, NotFoundError
from .events import EventSink, SfuEvent
from .observers.audio_level import AudioLevelObserver
from .options import WorkerOptions
from .pipe_transport import PipeTransport
from .producer import Producer
from .stats import (
    MediaTotals,
    retire_consumer,
    retire_observer,
    retire_pipe,
    retire_pipe_consumer,
    retire_pipe_producer,
    retire_producer,
    retire_transport,
)
from .tasks import TaskSet
from .transport import Transport
from .types import CloseReason, ObserverId, ProducerId, RouterId, TransportId
from .webrtc_transport import WebRtcTransport

logger = logging.getLogger(__name__)

TICK_INTERVAL = 0.02


class Router:
    def __init__(
        self,
        *,
        router_id: RouterId,
        options: WorkerOptions,
        certificate: Certificate,
        clock: Clock,
        on_event: EventSink,
        tasks: TaskSet,
        decode_executor: Callable[[], Executor] | None = None,
        retired: MediaTotals | None = None,
    ) -> None:
        self.id = router_id
        self.closed = False
        self._options = options
        self._certificate = certificate
        self._clock = clock
        self._on_event = on_event
        self._tasks = tasks
        self._decode_executor = decode_executor
        self.transports: dict[TransportId, WebRtcTransport | DirectTransport] = {}
        self.producers: dict[ProducerId, Producer] = {}
        self.pipes: dict[TransportId, PipeTransport] = {}
        self.observers: list[AudioLevelObserver] = []
        self.event_errors = 0
        self.tick_errors = 0  # failing producer or observer ticks (see _tick_failed)
        self._tick_failures_logged: set[str] = set()
        # Counters of closed objects are folded in here (the worker shares one for all).
        self.retired = retired if retired is not None else MediaTotals()
        self._ticker: asyncio.Task[None] | None = tasks.spawn(
            self._run_ticks(), name=f"router-{router_id}-tick"
        )

    # -- factories ------------------------------------------------------------
    async def create_webrtc_transport(self, *, stream_id: str = "") -> WebRtcTransport:
        """A transport bound to the configured addresses and port range.

        `stream_id` labels every producer created on it (msid stream and
        CNAME), so a viewer groups one publisher's audio and video for lip sync.
        """
        self._check_open()
        transport = WebRtcTransport(
            transport_id=TransportId(uuid.uuid4().hex),
            stream_id=stream_id or uuid.uuid4().hex,
            options=self._options,
            certificate=self._certificate,
            clock=self._clock,
            on_event=self._post,
            tasks=self._tasks,
            hooks=self,
        )
        await transport.gather()
        if self.closed:
            transport.close(CloseReason.ROUTER_CLOSED)
            raise InvalidStateError(f"router {self.id} closed while creating a transport")
        self.transports[transport.id] = transport
        return transport

    async def create_pipe_transport(self, *, address: str = "127.0.0.1") -> PipeTransport:
        """A plain RTP pipe to another router (another worker), bound on `address`."""
        self._check_open()
        pipe = PipeTransport(
            transport_id=TransportId(uuid.uuid4().hex),
            options=self._options,
            clock=self._clock,
            on_event=self._post,
            hooks=_PipeHooks(self),
        )
        self.pipes[pipe.id] = pipe
        try:
            await pipe.bind(address)
        except BaseException:
            pipe.close()
            raise
        if self.closed:
            pipe.close(CloseReason.ROUTER_CLOSED)
            raise InvalidStateError(f"router {self.id} closed while creating a pipe")
        return pipe

    def create_direct_transport(
        self, *, on_rtp: Deliver, on_rtcp: Deliver | None = None
    ) -> DirectTransport:
        """An in-process transport (no sockets): producers are fed with its `send_rtp()`,
        its consumers deliver RTP to `on_rtp` and RTCP to `on_rtcp`. For tests and
        benchmarks of the forwarding core."""
        self._check_open()
        transport = DirectTransport(
            transport_id=TransportId(uuid.uuid4().hex),
            options=self._options,
            clock=self._clock,
            on_event=self._post,
            hooks=self,
            on_rtp=on_rtp,
            on_rtcp=on_rtcp,
        )
        self.transports[transport.id] = transport
        return transport

    def create_audio_level_observer(self) -> AudioLevelObserver:
        self._check_open()
        media = self._options.media
        observer = AudioLevelObserver(
            observer_id=ObserverId(uuid.uuid4().hex),
            options=media.speaking,
            interval=media.audio_level_interval,
            on_event=self._post,
            fallback_executor=(
                self._decode_executor()
                if media.decode_fallback and self._decode_executor is not None
                else None
            ),
            on_close=self._observer_closed,
        )
        self.observers.append(observer)
        return observer

    def producer(self, producer_id: ProducerId) -> Producer:
        producer = self.producers.get(producer_id)
        if producer is None or producer.closed:
            raise NotFoundError(f"producer {producer_id} not found")
        return producer

    # -- hooks for publishers' and viewers' transports (TransportHooks) -----------
    def producer_added(self, producer: Producer) -> None:
        self.producers[producer.id] = producer

    def producer_closed(self, producer: Producer) -> None:
        self.producers.pop(producer.id, None)
        for observer in self.observers:
            observer.remove_producer(producer.id)
        retire_producer(self.retired, producer)

    def consumer_added(self, consumer: Consumer, producer: Producer) -> None:
        producer.consumers = (*producer.consumers, consumer)
        if producer.paused:
            consumer.on_producer_paused()

    def consumer_closed(self, consumer: Consumer) -> None:
        self._unlink(consumer)
        retire_consumer(self.retired, consumer)

    def transport_closed(self, transport: Transport) -> None:
        self.transports.pop(transport.id, None)
        retire_transport(self.retired, transport)

    def _unlink(self, consumer: Consumer) -> None:
        producer = self.producers.get(consumer.producer_id)
        if producer is not None:
            producer.consumers = tuple(c for c in producer.consumers if c is not consumer)

    def _observer_closed(self, observer: AudioLevelObserver) -> None:
        self.observers.remove(observer)
        retire_observer(self.retired, observer)

    # -- lifecycle ------------------------------------------------------------
    def close(self, reason: CloseReason = CloseReason.REQUESTED) -> None:
        if self.closed:
            return
        self.closed = True
        if self._ticker is not None:
            # Dropped, not kept: the cancelled task's exception references our frame.
            self._ticker.cancel()
            self._ticker = None
        for transport in list(self.transports.values()):
            transport.close(CloseReason.ROUTER_CLOSED)
        for pipe in list(self.pipes.values()):
            pipe.close(CloseReason.ROUTER_CLOSED)
        for observer in list(self.observers):
            observer.close()
        # The owner's callback usually references the owner, which references us: let
        # go of it, so both are freed by reference counting.
        self._on_event = _discard

    def _post(self, event: SfuEvent) -> None:
        # Like mediasoup's safeEmit: a faulty listener must not break the media path.
        try:
            self._on_event(event)
        except Exception:
            self.event_errors += 1
            logger.exception("router %s: event callback failed on %r", self.id, event)

    async def _run_ticks(self) -> None:
        while not self.closed:
            now = self._clock.now()
            for producer in list(self.producers.values()):
                try:
                    producer.tick(now)
                except Exception:
                    self._tick_failed(producer.id)
            for observer in list(self.observers):
                try:
                    observer.tick(now)
                except Exception:
                    self._tick_failed(observer.id)
            await asyncio.sleep(TICK_INTERVAL)

    def _tick_failed(self, owner: str) -> None:
        """One producer's or observer's failing tick must not stop RTCP and speaking
        detection for the rest of the room: count it, log it once per owner."""
        self.tick_errors += 1
        if owner not in self._tick_failures_logged:
            self._tick_failures_logged.add(owner)
            logger.exception("router %s: tick of %s failed (logged once)", self.id, owner)

    def _check_open(self) -> None:
        if self.closed:
            raise InvalidStateError(f"router {self.id} is closed")


def _discard(event: SfuEvent) -> None:
    pass


class _PipeHooks:
    """A pipe's side of the router: what crosses it counts as traffic between workers
    (stats.PipeTotals), not as publishers' or viewers' (a stream piped on is served once)."""

    __slots__ = ("_router",)

    def __init__(self, router: Router) -> None:
        self._router = router

    def producer_added(self, producer: Producer) -> None:
        self._router.producers[producer.id] = producer  # ticked like any other: RTCP upstream

    def producer_closed(self, producer: Producer) -> None:
        self._router.producers.pop(producer.id, None)
        retire_pipe_producer(self._router.retired, producer)

    def consumer_added(self, consumer: Consumer, producer: Producer) -> None:
        self._router.consumer_added(consumer, producer)

    def consumer_closed(self, consumer: Consumer) -> None:
        self._router._unlink(consumer)
        retire_pipe_consumer(self._router.retired, consumer)

    def transport_closed(self, transport: Transport) -> None:
        self._router.pipes.pop(transport.id, None)
        retire_pipe(self._router.retired, transport)
