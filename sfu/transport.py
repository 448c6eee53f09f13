"""Transport: what every kind of transport shares, whatever carries its packets.

A transport holds producers (streams coming in) and consumers (copies going
out). The kinds differ only in how packets cross: WebRtcTransport (ICE, DTLS,
SRTP, our SDP), PipeTransport (plain RTP between workers) and DirectTransport
(in-process calls). Everything else is here: the bookkeeping by id and SSRC,
RTCP routing, the egress the consumers' fan-out slots send through, and the
close cascade, after which nothing outside references a closed transport, so
reference counting frees it at once.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Protocol, TypedDict

from . import fastpath, ortc
from .clock import Clock
from .consumer import Consumer
from .errors import InvalidStateError
from .events import EventSink, TransportClosed
from .options import WorkerOptions
from .producer import Producer
from .rtcp_routing import route_rtcp
from .rtp import rtcp
from .rtp.header import RtpPacketView
from .rtp.send_log import SentPacket, nothing_sent
from .rtp_parameters import ReceiveParameters
from .sdp import Codec
from .types import CloseReason, ConsumerId, Mid, ProducerId, TransportId, new_ssrc

NO_MID = Mid("")  # a consumer whose SSRC alone names its stream


class TransportHooks(Protocol):
    """What a transport tells its router (the fan-out map and the retired counters)."""

    def producer_added(self, producer: Producer) -> None: ...
    def producer_closed(self, producer: Producer) -> None: ...
    def consumer_added(self, consumer: Consumer, producer: Producer) -> None: ...
    def consumer_closed(self, consumer: Consumer) -> None: ...
    def transport_closed(self, transport: Transport) -> None: ...


class TransportArgs(TypedDict):
    """What every transport is made with; subclasses take them as `**common`."""

    transport_id: TransportId
    options: WorkerOptions
    clock: Clock
    on_event: EventSink
    hooks: TransportHooks


class Transport:
    """Base of the transports; subclasses say how packets cross (`_open_egress`,
    `_release`) and feed what arrives to `_on_rtp` and `_on_rtcp`."""

    def __init__(
        self,
        *,
        transport_id: TransportId,
        options: WorkerOptions,
        clock: Clock,
        on_event: EventSink,
        hooks: TransportHooks,
    ) -> None:
        self.id = transport_id
        self.closed = False
        self.producers: dict[ProducerId, Producer] = {}
        self.consumers: dict[ConsumerId, Consumer] = {}
        self._options = options
        self._clock = clock
        self._on_event = on_event
        self._hooks = hooks
        # Created once the transport can send (`_open_egress`).
        self._egress: fastpath.AnyEgress | None = None
        self._producers_by_ssrc: dict[int, Producer] = {}
        self._consumers_by_ssrc: dict[int, Consumer] = {}
        # Counters read at scrape time.
        self.rtp_packets_received = 0
        self.rtcp_packets_received = 0
        self.packets_malformed = 0
        self.packets_unknown_ssrc = 0
        self.remb_bitrate: int | None = None
        self.transport_feedbacks_received = 0
        # Called with each transport-wide feedback message's FCI (draft-holmer-rmcat-
        # transport-wide-cc-extensions-01 §3.1, unparsed: it may be garbage) and the
        # clock's time it arrived; the sequence numbers it reports on are those of
        # `sent_packets`. None: counted and dropped.
        self.on_transport_feedback: Callable[[bytes, float], None] | None = None

    @property
    def packets_late(self) -> int:
        """Packets that waited too long in a socket and were dropped unread."""
        return 0

    @property
    def dropped_egress_packets(self) -> int:
        if self._egress is not None and hasattr(self._egress, "stats"):
            return int(self._egress.stats()[2])  # the kernel refused (socket full)
        return 0

    @property
    def probe_clusters(self) -> tuple[int, int]:
        """(sent, succeeded) probe clusters toward the peer's downlink (none here)."""
        return (0, 0)

    @property
    def padding_bytes_sent(self) -> int:
        return 0

    # -- producers ------------------------------------------------------------------
    def _new_producer(
        self,
        *,
        producer_id: ProducerId,
        parameters: ReceiveParameters,
        stream_id: str,
        track_id: str,
        send_rtcp: Callable[[bytes], bool],
    ) -> Producer:
        """A producer registered under its SSRCs (and its RTX SSRC) and told to the router."""
        producer = Producer(
            producer_id=producer_id,
            parameters=parameters,
            stream_id=stream_id,
            track_id=track_id,
            canonical_ext_ids=ortc.FORWARDED_EXTENSION_IDS,
            options=self._options.media,
            clock=self._clock,
            send_rtcp=send_rtcp,
            on_event=self._on_event,
        )
        producer.on_close = self._producer_closed
        self.producers[producer.id] = producer
        for ssrc in producer.ssrcs:
            self._producers_by_ssrc[ssrc] = producer
        self._hooks.producer_added(producer)
        return producer

    def _producer_closed(self, producer: Producer) -> None:
        self.producers.pop(producer.id, None)
        for ssrc, owner in list(self._producers_by_ssrc.items()):
            if owner is producer:
                del self._producers_by_ssrc[ssrc]
        self._hooks.producer_closed(producer)

    # -- consumers ------------------------------------------------------------------
    def _new_consumer(
        self,
        producer: Producer,
        *,
        send_rtcp: Callable[[bytes], bool],
        codec: Codec | None = None,
        ssrc: int | None = None,
        mid: Mid = NO_MID,
        mid_extension_id: int | None = None,
        paused: bool = False,
    ) -> Consumer:
        """A consumer of `producer`, told to the router; it flows once the subclass calls
        its `set_ready()`. By default it sends the producer's codec under its SFU-wide
        payload type as a new SSRC, which alone names the stream (no MID)."""
        if producer.closed:
            raise InvalidStateError(f"producer {producer.id} is closed")
        codec = codec or ortc.consumer_codec(producer.parameters.codec)
        ssrc = ssrc if ssrc is not None else new_ssrc(self._consumers_by_ssrc)
        consumer = Consumer(
            consumer_id=ConsumerId(uuid.uuid4().hex),
            producer_id=producer.id,
            transport_id=self.id,
            kind=producer.kind,
            ssrc=ssrc,
            payload_type=codec.payload_type,
            clock_rate=codec.clock_rate,
            mid=mid,
            mid_extension_id=mid_extension_id,
            cname=producer.stream_id,
            clock=self._clock,
            fanout=producer.fanout,
            connected_egress=self._connected_egress,
            send_rtcp=send_rtcp,
            request_key_frame=producer.request_key_frame,
            on_want=producer.consumer_wants,
            streams=producer.streams,
            source_priority=lambda: producer.priority,
            on_event=self._on_event,
            initial_sequence=random.getrandbits(15),
            initial_timestamp=random.getrandbits(31),
            paused=paused,
        )
        consumer.on_close = self._consumer_closed
        self.consumers[consumer.id] = consumer
        self._consumers_by_ssrc[ssrc] = consumer
        self._hooks.consumer_added(consumer, producer)
        return consumer

    def _consumer_closed(self, consumer: Consumer) -> None:
        self.consumers.pop(consumer.id, None)
        self._consumers_by_ssrc.pop(consumer.ssrc, None)
        if self._egress is not None and hasattr(self._egress, "forget"):
            self._egress.forget(consumer.ssrc)  # its SRTP index: the table stays small
        self._hooks.consumer_closed(consumer)

    def _connected_egress(self) -> fastpath.AnyEgress | None:
        """How this transport's consumers send: one egress for all of them, created
        the first time one asks after the transport can send (None before)."""
        if self._egress is None:
            self._egress = self._open_egress()
        return self._egress

    def _open_egress(self) -> fastpath.AnyEgress | None:
        """The egress, or None while the transport cannot send yet."""
        raise NotImplementedError

    # -- transport-wide sequence numbers ------------------------------------------------
    def sent_packet(self, sequence: int) -> SentPacket | None:
        """(send time, bytes on the wire after SRTP) of the packet stamped with the
        transport-wide number `sequence` (mod 2^16); None when none was sent under it,
        it was overwritten since (`send_log.HISTORY` numbers later), or this transport
        does not stamp."""
        return self.sent_packets(sequence, 1)[0]

    def sent_packets(self, first: int, count: int) -> list[SentPacket | None]:
        """`sent_packet` for `count` numbers from `first` on (wrapping at 2^16), in one
        call: a feedback message reports on a run of numbers (draft §3.1)."""
        egress = self._egress
        if egress is None:
            return nothing_sent(count)
        return egress.sent_packets(first, count)

    @property
    def _native_egress(self) -> bool:
        """Whether consumers send natively: the pure-Python path stays pure Python."""
        return self._options.media.native_fastpath and fastpath.native_available()

    # -- ingress (hot path) ---------------------------------------------------------
    def _on_rtp(self, data: bytes) -> None:
        self.rtp_packets_received += 1
        view = RtpPacketView.parse(data)
        if view is None:
            self.packets_malformed += 1
            return
        producer = self._producers_by_ssrc.get(view.ssrc)
        if producer is None:
            producer = self._learn_ssrc(view)
            if producer is None:
                self.packets_unknown_ssrc += 1
                return
        producer.receive_rtp(view)

    def _learn_ssrc(self, view: RtpPacketView) -> Producer | None:
        """The producer of a packet whose SSRC was not signalled, if the transport can tell."""
        return None

    def _on_rtcp(self, data: bytes) -> None:
        self.rtcp_packets_received += 1
        remb = route_rtcp(
            data, self._producers_by_ssrc, self._consumers_by_ssrc, self._on_transport_feedback
        )
        if remb is not None:
            self.remb_bitrate = remb.bitrate_bps
            self._on_remb(remb)

    def _on_remb(self, remb: rtcp.Remb) -> None:
        """The peer's REMB (its estimate is kept in `remb_bitrate`)."""

    def _on_transport_feedback(self, fci: bytes) -> None:
        self.transport_feedbacks_received += 1
        hook = self.on_transport_feedback
        if hook is not None:
            hook(fci, self._clock.now())

    # -- lifecycle ------------------------------------------------------------------
    def close(self, reason: CloseReason = CloseReason.REQUESTED) -> None:
        """Close every producer and consumer, then the transport; idempotent, never raises."""
        if self.closed:
            return
        self.closed = True
        for producer in list(self.producers.values()):
            producer.close(CloseReason.TRANSPORT_CLOSED)
        for consumer in list(self.consumers.values()):
            consumer.close(CloseReason.TRANSPORT_CLOSED)
        if self._egress is not None and hasattr(self._egress, "close"):
            self._egress.close()  # the native sender stops using the socket first
        self._release()
        self._hooks.transport_closed(self)
        self._on_event(TransportClosed(transport_id=self.id, reason=reason))

    def _release(self) -> None:
        """Let go of what carries the packets (sockets, connections, callbacks into us)."""

    def _check_open(self) -> None:
        if self.closed:
            raise InvalidStateError(f"transport {self.id} is closed")
