"""PipeTransport: plain RTP/RTCP between two routers of one deployment.

One room's media can live in several worker processes: publishers send to the
room's home worker, whose router *pipes* each stream once to every other
worker that has viewers of the room, where a mirror producer fans it out to
them (mediasoup's `pipeToRouter`). A pipe is a UDP socket pair on a trusted
network (loopback between workers of one host), so there is no ICE, DTLS or
SRTP: datagrams from any address but the connected peer's are dropped.

Streams keep the SFU-wide payload types and extension ids on the pipe (the
sending side is an ordinary consumer), so the mirror producer rewrites nothing
but what every producer does. Feedback flows back the usual way: the mirror
producer's PLIs and NACKs reach the pipe consumer by SSRC, which relays key
frame requests to the real producer and answers NACKs from its history.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import uuid
from typing import Any, Protocol

from . import fastpath, ortc
from .clock import Clock
from .consumer import Consumer
from .errors import InvalidStateError
from .events import EventSink, TransportClosed
from .fanout import CallableEgress
from .options import WorkerOptions
from .producer import Producer
from .rtcp_routing import route_rtcp
from .rtp.header import RtpPacketView
from .rtp_parameters import CodecParameters, ReceiveParameters
from .types import CloseReason, ConsumerId, MediaKind, Mid, ProducerId, TransportId, new_ssrc
from .udp import SOCKET_BUFFER, LateFilter, bind_in_range

logger = logging.getLogger(__name__)

Address = tuple[str, int]


class PipeHooks(Protocol):
    def pipe_producer_added(self, producer: Producer) -> None: ...
    def pipe_producer_closed(self, producer: Producer) -> None: ...
    def consumer_added(self, consumer: Consumer, producer: Producer) -> None: ...
    def pipe_consumer_closed(self, consumer: Consumer) -> None: ...
    def pipe_closed(self, pipe: PipeTransport) -> None: ...


# Datagrams read per wake-up at most. The event loop's own datagram transports read a
# few dozen per socket per turn; a pipe carries all of a room's streams in one socket,
# so on a busy worker that fair share left it behind its rooms' publishers.
_READ_BATCH = 1024


class PipeTransport:
    """Created by `Router.create_pipe_transport()`; `connect()` names the other end."""

    def __init__(
        self,
        *,
        transport_id: TransportId,
        options: WorkerOptions,
        clock: Clock,
        sink: EventSink,
        hooks: PipeHooks,
    ) -> None:
        self.id = transport_id
        self.closed = False
        self.producers: dict[ProducerId, Producer] = {}
        self.consumers: dict[ConsumerId, Consumer] = {}
        self.remote: Address | None = None
        self._options = options
        self._clock = clock
        self._sink = sink
        self._hooks = hooks
        self._socket: socket.socket | None = None
        self._fd = -1
        self._local: Address = ("", 0)
        self._egress: Any = None
        self._late: LateFilter | None = None
        self._producers_by_ssrc: dict[int, Producer] = {}
        self._consumers_by_ssrc: dict[int, Consumer] = {}
        # Counters read at scrape time.
        self.rtp_packets_received = 0
        self.rtcp_packets_received = 0
        self.packets_malformed = 0
        self.packets_unknown_ssrc = 0
        self.packets_from_strangers = 0

    def _read(self) -> None:
        """Drain the socket (up to a batch) whenever it is readable."""
        sock = self._socket
        for _ in range(_READ_BATCH):
            if sock is None or self.closed:
                return
            try:
                data, addr = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ICMP port unreachable from a peer that went away
                continue
            self._on_datagram(data, addr)

    async def bind(self, address: str) -> None:
        network = self._options.network
        # A pipe carries every stream of a room at once: it gets the larger buffer.
        sock = bind_in_range(
            address, network.port_min, network.port_max, receive_buffer=SOCKET_BUFFER
        )
        host, port = sock.getsockname()[:2]
        self._fd = sock.fileno()
        self._local = (str(host), int(port))
        delay = self._options.media.max_ingress_delay
        self._late = LateFilter(self._fd, delay) if delay > 0 else None
        if self.closed:  # closed before binding finished
            sock.close()
            return
        self._socket = sock
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._fd, self._read)

    @property
    def packets_late(self) -> int:
        return self._late.dropped if self._late is not None else 0

    @property
    def local_address(self) -> Address:
        return self._local

    def connect(self, host: str, port: int) -> None:
        """Where the other end listens; consumers start flowing now."""
        self._check_open()
        if self.remote is not None:
            raise InvalidStateError(f"pipe {self.id} is already connected")
        if not 0 < port < 65536:
            raise ValueError(f"port: must be 1..65535, got {port}")
        self.remote = (host, port)
        for consumer in self.consumers.values():
            consumer.set_ready()

    # -- sending side ---------------------------------------------------------
    def consume(self, producer: Producer) -> Consumer:
        """Pipe `producer` to the other end; describe it there with `pipe_parameters()`."""
        self._check_open()
        if producer.closed:
            raise InvalidStateError(f"producer {producer.id} is closed")
        codec = ortc.consumer_codec(producer.parameters.codec)
        consumer = Consumer(
            consumer_id=ConsumerId(uuid.uuid4().hex),
            producer_id=producer.id,
            transport_id=self.id,
            kind=producer.kind,
            ssrc=new_ssrc(self._consumers_by_ssrc),
            payload_type=codec.payload_type,
            clock_rate=codec.clock_rate,
            mid=Mid(""),
            mid_extension_id=None,  # the SSRC names the stream on a pipe
            cname=producer.stream_id,
            clock=self._clock,
            fanout=producer.fanout,
            egress=self._sink_egress,
            send_rtcp=self._send,
            request_key_frame=producer.request_key_frame,
            sink=self._sink,
            initial_sequence=random.getrandbits(15),
            initial_timestamp=random.getrandbits(31),
        )
        consumer.on_close = self._consumer_closed
        self.consumers[consumer.id] = consumer
        self._consumers_by_ssrc[consumer.ssrc] = consumer
        self._hooks.consumer_added(consumer, producer)
        if self.remote is not None:
            consumer.set_ready()
        return consumer

    def _sink_egress(self) -> Any:
        if self._egress is None and self.remote is not None and self._socket is not None:
            if self._options.media.native_fastpath and fastpath.native_available():
                # Flushed before the viewers' egresses: the far worker's viewers wait
                # for the pipe, so it starts its fan-out while this one does its own.
                self._egress = fastpath.native_egress(
                    profile="NONE", key=b"", salt=b"", auth_key=b"", fd=self._fd,
                    address=self.remote, first=True,
                )  # fmt: skip
            else:
                self._egress = CallableEgress(self._send)
        return self._egress

    def _consumer_closed(self, consumer: Consumer) -> None:
        self.consumers.pop(consumer.id, None)
        self._consumers_by_ssrc.pop(consumer.ssrc, None)
        self._hooks.pipe_consumer_closed(consumer)

    # -- receiving side ---------------------------------------------------------
    def produce(
        self,
        *,
        kind: MediaKind,
        codec_name: str,
        clock_rate: int,
        channels: int | None,
        parameters: tuple[tuple[str, str], ...],
        ssrc: int,
        stream_id: str,
        track_id: str,
        producer_id: ProducerId | None = None,
    ) -> Producer:
        """A mirror of a producer piped from the other end, as its pipe consumer sends it."""
        self._check_open()
        if ssrc in self._producers_by_ssrc:
            raise InvalidStateError(f"ssrc {ssrc} is already produced on pipe {self.id}")
        codec = CodecParameters(
            kind=kind,
            name=codec_name,
            payload_type=ortc.PAYLOAD_TYPES[codec_name],
            clock_rate=clock_rate,
            channels=channels,
            parameters=parameters,
        )
        producer = Producer(
            producer_id=producer_id or ProducerId(uuid.uuid4().hex),
            parameters=ReceiveParameters(
                mid=Mid(""), codec=codec, ssrc=ssrc, extensions=dict(ortc.EXTENSION_IDS)
            ),
            stream_id=stream_id,
            track_id=track_id,
            canonical_ext_ids=ortc.EXTENSION_IDS,
            options=self._options.media,
            clock=self._clock,
            send_rtcp=self._send,
            sink=self._sink,
        )
        producer.on_close = self._producer_closed
        self.producers[producer.id] = producer
        self._producers_by_ssrc[ssrc] = producer
        self._hooks.pipe_producer_added(producer)
        return producer

    def _producer_closed(self, producer: Producer) -> None:
        self.producers.pop(producer.id, None)
        if producer.ssrc is not None:
            self._producers_by_ssrc.pop(producer.ssrc, None)
        self._hooks.pipe_producer_closed(producer)

    def _on_datagram(self, data: bytes, addr: Any) -> None:
        if self.closed or addr is None or (addr[0], addr[1]) != self.remote:
            self.packets_from_strangers += 1
            return
        if len(data) < 2 or not 127 < data[0] < 192:
            self.packets_malformed += 1
            return
        if self._late is not None and self._late.drop(data):
            return
        if len(data) > 1 and 191 < data[1] < 224:  # RFC 5761 §4: RTCP packet types 192-223
            self.rtcp_packets_received += 1
            route_rtcp(data, self._producers_by_ssrc, self._consumers_by_ssrc)
            return
        self.rtp_packets_received += 1
        view = RtpPacketView.parse(data)
        if view is None:
            self.packets_malformed += 1
            return
        producer = self._producers_by_ssrc.get(view.ssrc)
        if producer is None:
            self.packets_unknown_ssrc += 1
            return
        producer.receive_rtp(view)

    def _send(self, data: bytes) -> bool:
        sock = self._socket
        if sock is None or self.remote is None or self.closed:
            return False
        try:
            sock.sendto(data, self.remote)
        except OSError:  # full (a stalled peer worker) or unreachable: dropped
            return False
        return True

    # -- lifecycle ----------------------------------------------------------------
    def close(self, reason: CloseReason = CloseReason.REQUESTED) -> None:
        if self.closed:
            return
        self.closed = True
        for producer in list(self.producers.values()):
            producer.close(CloseReason.TRANSPORT_CLOSED)
        for consumer in list(self.consumers.values()):
            consumer.close(CloseReason.TRANSPORT_CLOSED)
        if self._egress is not None and hasattr(self._egress, "close"):
            self._egress.close()  # the native sender stops using the socket first
        if self._socket is not None:
            self._loop.remove_reader(self._fd)
            self._socket.close()
            self._socket = None
        self._hooks.pipe_closed(self)
        self._sink(TransportClosed(transport_id=self.id, reason=reason))

    def _check_open(self) -> None:
        if self.closed:
            raise InvalidStateError(f"pipe {self.id} is closed")
