"""Consumer: one outgoing copy of a producer's stream to one transport.

The consumer owns everything that makes a viewer's stream look like one
continuous RTP stream of its own: our SSRC, the viewer's payload type, the
viewer's MID, and sequence numbers/timestamps that stay continuous across
pauses and producer changes (`OutputSequencer`). Video starts and resumes on
a key frame, which it requests from the producer.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable

from .clock import Clock
from .errors import InvalidStateError
from .events import ConsumerClosed, EventSink
from .producer import ForwardedPacket
from .rtp import rtcp
from .rtp.header import rewrite
from .rtp.seq import OutputSequencer
from .types import CloseReason, ConsumerId, MediaKind, Mid, ProducerId

logger = logging.getLogger(__name__)

_EXT_HEADER = struct.Struct("!HH")
_RETRANSMIT_MIN_INTERVAL = 0.05
_RETRANSMIT_MEMORY = 2048


class Consumer:
    """Created inactive; `set_ready()` (after negotiation) lets packets flow."""

    def __init__(
        self,
        *,
        consumer_id: ConsumerId,
        producer_id: ProducerId,
        kind: MediaKind,
        ssrc: int,
        payload_type: int,
        clock_rate: int,
        mid: Mid,
        mid_extension_id: int | None,
        cname: str,
        clock: Clock,
        send_rtp: Callable[[bytes], bool],
        send_rtcp: Callable[[bytes], bool],
        request_key_frame: Callable[[], None],
        retransmission_source: Callable[[int], ForwardedPacket | None],
        sink: EventSink,
        initial_sequence: int,
        initial_timestamp: int,
        paused: bool = False,
    ) -> None:
        self.id = consumer_id
        self.producer_id = producer_id
        self.kind = kind
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.mid = mid
        self.cname = cname
        self.closed = False
        self.paused = paused
        self.producer_paused = False
        self.ready = False
        self.on_close: Callable[[Consumer], None] | None = None
        self._clock = clock
        self._send_rtp = send_rtp
        self._send_rtcp = send_rtcp
        self._request_key_frame = request_key_frame
        self._retransmission_source = retransmission_source
        self._sink = sink
        self._sequencer = OutputSequencer(clock_rate, initial_sequence, initial_timestamp)
        self._mid_element = (
            bytes([(mid_extension_id << 4) | (len(mid.encode()) - 1)]) + mid.encode()
            if mid_extension_id is not None and 0 < len(mid.encode()) <= 16
            else b""
        )
        self._active = False
        self._waiting_key_frame = False
        self._active_since = 0.0
        self._retransmitted: dict[int, float] = {}
        # Counters read at scrape time.
        self.packets_sent = 0
        self.bytes_sent = 0
        self.payload_bytes_sent = 0
        self.packets_dropped = 0
        self.retransmissions_sent = 0
        self.retransmission_misses = 0
        self.nacks_received = 0
        self.key_frame_requests_received = 0
        self.fraction_lost = 0
        self.packets_lost = 0  # the viewer's cumulative loss, from its receiver reports
        self.round_trip_time: float | None = None
        # Time from becoming active to the first forwarded key frame (video), per epoch.
        self.key_frame_wait: float | None = None
        self.key_frame_waits = 0
        self.key_frame_wait_total = 0.0

    @property
    def active(self) -> bool:
        return self._active

    @property
    def waiting_key_frame(self) -> bool:
        """Active video that is held back until the publisher's next key frame."""
        return self._active and self._waiting_key_frame

    # -- hot path ---------------------------------------------------------
    def forward(self, packet: ForwardedPacket) -> None:
        if not self._active:
            return
        if self._waiting_key_frame:
            if not packet.keyframe:
                return
            self._waiting_key_frame = False
            self._key_frame_arrived(packet.arrival)
        view = packet.view
        mapped = self._sequencer.map(view.sequence_number, view.timestamp, packet.arrival)
        if mapped is None:
            return
        self._send(packet, mapped[0], mapped[1])

    def _send(self, packet: ForwardedPacket, seq: int, timestamp: int) -> bool:
        view = packet.view
        body = self._mid_element + packet.ext_body
        if body:
            pad = -len(body) % 4
            block = _EXT_HEADER.pack(0xBEDE, (len(body) + pad) >> 2) + body + b"\x00" * pad
        else:
            block = b""
        data = rewrite(
            view,
            payload_type=self.payload_type,
            sequence_number=seq,
            timestamp=timestamp,
            ssrc=self.ssrc,
            extension_block=block,
        )
        if self._send_rtp(data):
            self.packets_sent += 1
            self.bytes_sent += len(data)
            self.payload_bytes_sent += view.payload_end - view.payload_start
            return True
        self.packets_dropped += 1
        return False

    def _key_frame_arrived(self, arrival: float) -> None:
        # Once per epoch, not per packet.
        wait = max(0.0, arrival - self._active_since)
        self.key_frame_wait = wait
        self.key_frame_waits += 1
        self.key_frame_wait_total += wait

    # -- feedback from the viewer -----------------------------------------
    def receive_nack(self, sequence_numbers: Iterable[int]) -> None:
        """Answer a viewer's NACK (RFC 4585 §6.2.1) from the producer's history."""
        self.nacks_received += 1
        if not self._active:
            return
        now = self._clock.now()
        memory = self._retransmitted
        for out_seq in sequence_numbers:
            last = memory.get(out_seq)
            if last is not None and now - last < _RETRANSMIT_MIN_INTERVAL:
                continue
            in_seq = self._sequencer.input_sequence(out_seq)
            packet = None if in_seq is None else self._retransmission_source(in_seq)
            if packet is None:
                self.retransmission_misses += 1
                continue
            mapped = self._sequencer.map(
                packet.view.sequence_number, packet.view.timestamp, packet.arrival
            )
            if mapped is None or mapped[0] != out_seq:
                self.retransmission_misses += 1
                continue
            if len(memory) >= _RETRANSMIT_MEMORY:
                memory.clear()
            memory[out_seq] = now
            if self._send(packet, out_seq, mapped[1]):
                self.retransmissions_sent += 1

    def receive_key_frame_request(self) -> None:
        """PLI/FIR from the viewer: relayed (throttled) to the publisher."""
        self.key_frame_requests_received += 1
        if self._active and self.kind == "video":
            self._request_key_frame()

    def receive_report(self, block: rtcp.ReportBlock) -> None:
        self.fraction_lost = block.fraction_lost
        if block.packets_lost > self.packets_lost:  # kept monotonic for counters
            self.packets_lost = block.packets_lost
        if block.last_sr:
            # RFC 3550 §6.4.1: RTT = A - LSR - DLSR, in 1/65536 s units.
            arrival = rtcp.ntp_middle_32(rtcp.ntp_from_unix(self._clock.wall()))
            rtt = (arrival - block.last_sr - block.delay_since_last_sr) & 0xFFFFFFFF
            if rtt < 0x80000000:
                self.round_trip_time = rtt / 65536.0

    def on_sender_report(self, ntp_timestamp: int, rtp_timestamp: int) -> None:
        """Translate the publisher's SR into ours so the viewer keeps lip sync."""
        if not self._active or not self.packets_sent:
            return
        timestamp = self._sequencer.output_timestamp(rtp_timestamp)
        if timestamp is None:
            return
        self._send_rtcp(
            rtcp.compound(
                (
                    rtcp.SenderReport(
                        ssrc=self.ssrc,
                        ntp_timestamp=ntp_timestamp,
                        rtp_timestamp=timestamp,
                        packet_count=self.packets_sent & 0xFFFFFFFF,
                        octet_count=self.payload_bytes_sent & 0xFFFFFFFF,
                        reports=(),
                    ),
                    rtcp.SourceDescription(chunks=((self.ssrc, self.cname),)),
                )
            )
        )

    # -- lifecycle --------------------------------------------------------
    def set_ready(self) -> None:
        """Negotiation is complete and the transport is connected."""
        if self.closed or self.ready:
            return
        self.ready = True
        self._update_active()

    def pause(self) -> None:
        self._check_open()
        self.paused = True
        self._update_active()

    def resume(self) -> None:
        self._check_open()
        self.paused = False
        self._update_active()

    def on_producer_paused(self) -> None:
        self.producer_paused = True
        self._update_active()

    def on_producer_resumed(self) -> None:
        self.producer_paused = False
        self._update_active()

    def close(self, reason: CloseReason = CloseReason.REQUESTED) -> None:
        if self.closed:
            return
        self.closed = True
        self._active = False
        if self.on_close is not None:
            self.on_close(self)
        self._sink(ConsumerClosed(consumer_id=self.id, producer_id=self.producer_id, reason=reason))

    def _update_active(self) -> None:
        active = self.ready and not self.paused and not self.producer_paused and not self.closed
        if active == self._active:
            return
        self._active = active
        if active:
            # A new epoch: continuous numbering for the viewer, whatever the gap.
            self._sequencer.resync()
            if self.kind == "video":
                self._waiting_key_frame = True
                self._active_since = self._clock.now()
                self._request_key_frame()

    def _check_open(self) -> None:
        if self.closed:
            raise InvalidStateError(f"consumer {self.id} is closed")
