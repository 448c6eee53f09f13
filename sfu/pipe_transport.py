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
frame requests to the real producer and answers NACKs from its history; its REMB
names the encodings its viewers want, and the copies of the others stop counting
as wanted here, so the publisher is not asked for what only a pipe would carry.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from typing import Any, Unpack

from . import fastpath, ortc
from .consumer import Consumer
from .errors import InvalidStateError
from .fanout import CallableEgress
from .producer import Producer
from .rtp import rtcp
from .rtp_parameters import CodecParameters, ReceiveParameters
from .transport import Transport, TransportArgs
from .types import MediaKind, Mid, ProducerId
from .udp import SOCKET_BUFFER, LateFilter, bind_in_range

logger = logging.getLogger(__name__)

Address = tuple[str, int]


# Datagrams read per wake-up at most. The event loop's own datagram transports read a
# few dozen per socket per turn; a pipe carries all of a room's streams in one socket,
# so on a busy worker that fair share left it behind its rooms' publishers.
_READ_BATCH = 1024


class PipeTransport(Transport):
    """Created by `Router.create_pipe_transport()`; `connect()` names the other end."""

    def __init__(self, **common: Unpack[TransportArgs]) -> None:
        super().__init__(**common)
        self.remote: Address | None = None
        self._socket: socket.socket | None = None
        self._fd = -1
        self._local: Address = ("", 0)
        self._late: LateFilter | None = None
        self._copies: dict[ProducerId, tuple[Consumer, ...]] = {}  # one per encoding
        self.packets_from_strangers = 0  # counted at scrape time, like the base's

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
    def consume(self, producer: Producer) -> tuple[Consumer, ...]:
        """Pipe `producer` to the other end: one consumer per encoding, each pinned to
        it, so the far side's viewers can be given any of them. Mirror it there with
        `produce(ssrcs=...)` naming the consumers' SSRCs in this order."""
        self._check_open()
        consumers = []
        for layer in range(len(producer.streams)):
            consumer = self._new_consumer(producer, send_rtcp=self._send)
            consumer.relay = True
            if producer.simulcast:
                consumer.pin_layer(layer)
            if self.remote is not None:
                consumer.set_ready()
            consumers.append(consumer)
        self._copies[producer.id] = tuple(consumers)
        return self._copies[producer.id]

    def _on_remb(self, remb: rtcp.Remb) -> None:
        """The far end's mirror producer names the encodings its viewers want (the SSRCs
        of our copies of them): the other copies want nothing until named again."""
        named = set(remb.ssrcs)
        consumer = next(
            (c for ssrc in remb.ssrcs if (c := self._consumers_by_ssrc.get(ssrc)) is not None),
            None,
        )
        if consumer is None:
            return
        for copy in self._copies.get(consumer.producer_id, ()):
            copy.set_wanted_downstream(copy.ssrc in named)

    def _consumer_closed(self, consumer: Consumer) -> None:
        copies = self._copies.get(consumer.producer_id)
        if copies is not None and all(copy.closed for copy in copies):
            del self._copies[consumer.producer_id]
        super()._consumer_closed(consumer)

    def _open_egress(self) -> fastpath.AnyEgress | None:
        if self.remote is None or self._socket is None:
            return None
        if self._native_egress:
            # Flushed before the viewers' egresses: the far worker's viewers wait
            # for the pipe, so it starts its fan-out while this one does its own.
            return fastpath.native_egress(
                profile="NONE", key=b"", salt=b"", auth_key=b"", fd=self._fd,
                address=self.remote, first=True,
            )  # fmt: skip
        return CallableEgress(self._send)

    # -- receiving side ---------------------------------------------------------
    def produce(
        self,
        *,
        kind: MediaKind,
        codec_name: str,
        clock_rate: int,
        channels: int | None,
        parameters: tuple[tuple[str, str], ...],
        ssrcs: tuple[int, ...],
        stream_id: str,
        track_id: str,
        producer_id: ProducerId | None = None,
    ) -> Producer:
        """A mirror of a producer piped from the other end, as its pipe consumers send
        it: one SSRC per encoding, lowest first."""
        self._check_open()
        if not ssrcs or any(ssrc in self._producers_by_ssrc for ssrc in ssrcs):
            raise InvalidStateError(f"ssrcs {ssrcs}: none, or already produced on {self.id}")
        codec = CodecParameters(
            kind=kind,
            name=codec_name,
            payload_type=ortc.PAYLOAD_TYPES[codec_name],
            clock_rate=clock_rate,
            channels=channels,
            parameters=parameters,
        )
        return self._new_producer(
            producer_id=producer_id or ProducerId(uuid.uuid4().hex),
            parameters=ReceiveParameters(
                mid=Mid(""),
                codec=codec,
                ssrc=ssrcs[0],
                encoding_ssrcs=ssrcs if len(ssrcs) > 1 else (),
                extensions=dict(ortc.EXTENSION_IDS),
            ),
            stream_id=stream_id,
            track_id=track_id,
            send_rtcp=self._send,
        )

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
            self._on_rtcp(data)
            return
        self._on_rtp(data)  # a pipe learns no SSRC: its streams are all signalled

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
    def _release(self) -> None:
        if self._socket is not None:
            self._loop.remove_reader(self._fd)
            self._socket.close()
            self._socket = None
