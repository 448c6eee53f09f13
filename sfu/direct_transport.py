"""DirectTransport: media in and out of this process, with no sockets (mediasoup's
DirectTransport).

A producer is fed by calling `send_rtp()` with RTP bytes, as if they had arrived
from a publisher; what the transport's consumers send goes to the `on_rtp`
callback, and the RTCP it would send (reports, key frame requests, NACKs) to
`on_rtcp`. Everything between is the real thing: router, producers, fan-out,
consumers. So room and router behaviour can be tested, and the forwarding core
benchmarked, without UDP, ICE or DTLS.

With the pure-Python fan-out, consumers deliver as they forward. With the native
one, they queue into a capture-mode egress like any peer's, and the packets are
delivered when the loop flushes the queues (at once where no loop runs).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Unpack

from . import fastpath
from .consumer import Consumer
from .fanout import CallableEgress
from .native_types import NativeEgress
from .producer import Producer
from .rtp_parameters import ReceiveParameters
from .transport import Transport, TransportArgs
from .types import ProducerId

Deliver = Callable[[bytes], None]


class DirectTransport(Transport):
    """Created by `Router.create_direct_transport()`; ready to send and receive at once."""

    def __init__(
        self, *, on_rtp: Deliver, on_rtcp: Deliver | None = None, **common: Unpack[TransportArgs]
    ) -> None:
        super().__init__(**common)
        self._on_rtp_out = on_rtp
        self._capture: NativeEgress | None = None  # the native egress, read after each flush
        self._on_rtcp_out = on_rtcp

    # -- in: what a publisher would send ----------------------------------------------
    def produce(
        self, parameters: ReceiveParameters, *, stream_id: str = "", track_id: str = ""
    ) -> Producer:
        """A producer of the stream `parameters` describe (payload type, SSRCs, extension
        ids as the packets given to `send_rtp()` carry them)."""
        self._check_open()
        return self._new_producer(
            producer_id=ProducerId(uuid.uuid4().hex),
            parameters=parameters,
            stream_id=stream_id or uuid.uuid4().hex,
            track_id=track_id or uuid.uuid4().hex,
            send_rtcp=self._send_rtcp,
        )

    def send_rtp(self, data: bytes) -> None:
        """One RTP packet for the producer its SSRC names (dropped and counted otherwise)."""
        if not self.closed:
            self._on_rtp(data)

    def send_rtcp(self, data: bytes) -> None:
        """One compound RTCP packet, e.g. a viewer's PLI or NACK for one of our consumers."""
        if not self.closed:
            self._on_rtcp(data)

    # -- out: what a viewer would receive ---------------------------------------------
    def consume(self, producer: Producer, *, paused: bool = False) -> Consumer:
        """A consumer of `producer`, flowing at once (unless paused)."""
        self._check_open()
        consumer = self._new_consumer(producer, send_rtcp=self._send_rtcp, paused=paused)
        consumer.set_ready()
        return consumer

    def _open_egress(self) -> fastpath.AnyEgress | None:
        if not self._native_egress:
            return CallableEgress(_delivering(self._on_rtp_out))
        fastpath.add_flush_listener(self._deliver_captured)
        self._capture = fastpath.native_egress(
            profile="NONE", key=b"", salt=b"", auth_key=b"", fd=-1, address=("0.0.0.0", 0)
        )  # fmt: skip
        return self._capture

    def _deliver_captured(self) -> None:
        capture = self._capture
        if capture is not None:
            for packet in capture.take_captured():
                self._on_rtp_out(packet)

    def _send_rtcp(self, data: bytes) -> bool:
        if self.closed or self._on_rtcp_out is None:
            return False
        self._on_rtcp_out(data)
        return True

    def _release(self) -> None:
        # The flush listener is the one reference to us from outside the router.
        fastpath.remove_flush_listener(self._deliver_captured)


def _delivering(deliver: Deliver) -> Callable[[bytes], bool]:
    """An egress's send that calls `deliver`; it holds no reference to the transport,
    so a closed transport is freed by reference counting (no cycle through its egress)."""

    def send(packet: bytes) -> bool:
        deliver(packet)
        return True

    return send
