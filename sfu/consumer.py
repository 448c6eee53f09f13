"""Consumer: one outgoing copy of a producer's stream to one transport.

A viewer's stream must look like one continuous RTP stream of its own: our
SSRC, the viewer's payload type and MID, and sequence numbers/timestamps that
stay continuous across pauses and producer changes. The per-packet part of
that lives in the producer's fan-out (sfu/fanout.py, natively sfu/_fastpath.c)
as this consumer's *slot*; the consumer decides when it flows (negotiated,
connected, not paused) and handles the viewer's feedback. Video starts and
resumes on a key frame, which it requests from the producer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from . import layer_choice
from .bandwidth_allocation import PAUSED, Option, VideoDemand
from .clock import Clock
from .errors import InvalidStateError
from .events import ConsumerClosed, EventSink
from .fastpath import AnyEgress, AnyFanOut, AnyFanOutSlot, FanOutSlotSpec
from .received_stream import ReceivedStream
from .repair_budget import RepairBudget, usefulness
from .report_schedule import phase_of
from .rtp import rtcp
from .rtp.temporal import ALL_TEMPORAL_LAYERS
from .types import CloseReason, ConsumerId, MediaKind, Mid, ProducerId, TransportId

logger = logging.getLogger(__name__)

_RETRANSMIT_MIN_INTERVAL = 0.05
_RETRANSMIT_MEMORY = 2048
# A viewer's own key-frame requests reach the publisher through a bucket of two,
# refilled one per 5 s: a decoder that lost sync recovers at once, but a viewer
# whose link loses a frame every second does not make the publisher send key
# frames every second that every other viewer pays for; its allocator moves it
# to a layer that fits instead.
_VIEWER_KEY_FRAMES_BURST = 2.0
_VIEWER_KEY_FRAME_INTERVAL = 5.0
_REPORTS_REMEMBERED = 4  # a viewer's RR names the last SR it got: ours of up to ~4 s ago


def _no_source_priority() -> int:
    return 1


def _ignore_want(old: int | None, new: int | None) -> None:
    pass


class Consumer:
    """Created inactive; `set_ready()` (after negotiation and connection) lets packets flow."""

    def __init__(
        self,
        *,
        consumer_id: ConsumerId,
        producer_id: ProducerId,
        transport_id: TransportId,
        kind: MediaKind,
        ssrc: int,
        payload_type: int,
        clock_rate: int,
        mid: Mid,
        mid_extension_id: int | None,
        cname: str,
        clock: Clock,
        fanout: AnyFanOut,
        connected_egress: Callable[[], AnyEgress | None],
        send_rtcp: Callable[[bytes], bool],
        request_key_frame: Callable[[int], None],
        on_event: EventSink,
        initial_sequence: int,
        initial_timestamp: int,
        paused: bool = False,
        streams: Sequence[ReceivedStream] = (),
        source_priority: Callable[[], int] = lambda: 1,
        on_want: Callable[[int | None, int | None], None] = _ignore_want,
    ) -> None:
        self.id = consumer_id
        self.producer_id = producer_id
        self.transport_id = transport_id
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
        self._fanout = fanout
        self._connected_egress = connected_egress  # shared; None until it can send
        self._send_rtcp = send_rtcp
        self._request_key_frame = request_key_frame
        # Simulcast: the producer's encodings (0 = lowest; read only), the highest one
        # this viewer should get, and the one chosen from those the publisher sends now.
        self._streams = streams
        self.layers = max(1, len(streams))
        self.preferred_layer = self.layers - 1
        self._tile_height: int | None = None  # the view's, while it sets the preference
        self._target_layer = self.preferred_layer
        # Switches to another encoding begun (each completes at that encoding's next key
        # frame), by direction: read at scrape time and by the viewer's stats.
        self.layer_switches_up = 0
        self.layer_switches_down = 0
        self.hidden = False  # the viewer shows no tile for it: nothing is forwarded
        # What the viewer's downlink allows (sfu/downlink.py): the highest encoding, None
        # while unknown; `starved`: not even the lowest fits, nothing is forwarded.
        self.bandwidth_layer: int | None = None
        # ... and the highest VP8 temporal layer of it (fewer frames a second).
        self.bandwidth_temporal = ALL_TEMPORAL_LAYERS
        self.starved = False
        self.priority = 1  # among the viewer's video when its downlink is short
        self._source_priority = source_priority  # the producer's (shared content ranks high)
        self._pinned = False  # forwards `preferred_layer` only (a pipe's per-encoding copy)
        # What it asks of the publisher (sfu/upstream_rate.py): told to the producer on
        # each change as (before, now).
        self._on_want = on_want
        self._wanted: int | None = None
        # A pipe's copy: whether the far worker's viewers want its encoding (their
        # producer's REMB names it); until told, they do.
        self.wanted_downstream = True
        self._events = on_event
        self._clock_rate = clock_rate
        self._initial = (initial_sequence, initial_timestamp)
        encoded = mid.encode()
        self.mid_element = (
            bytes([(mid_extension_id << 4) | (len(encoded) - 1)]) + encoded
            if mid_extension_id is not None and 0 < len(encoded) <= 16
            else b""
        )
        self._slot: AnyFanOutSlot | None = None  # created once the transport can send
        self._active = False
        self._active_since = 0.0
        self._key_frame_counted = True
        # out seq -> (first NACKed at, last resent at, copies sent)
        self._retransmitted: dict[int, tuple[float, float, int]] = {}
        # The viewer's repair allowance (sfu/repair_budget.py), from its downlink
        # estimate; None: unlimited (no estimate, e.g. aiortc viewers, pipes).
        self.repair_budget: RepairBudget | None = None
        # A pipe's consumer speaks for every viewer on the far worker: their requests
        # are already one viewer's each, so its own are not limited again.
        self.relay = False
        self._key_frame_tokens = _VIEWER_KEY_FRAMES_BURST
        self._key_frame_tokens_at = 0.0
        self._final: tuple[int, int, int, int] | None = None  # slot counters at close
        # Counters read at scrape time.
        self.retransmissions_sent = 0
        self.retransmission_misses = 0
        self.retransmissions_refused = 0  # over the repair budget, or too late to help
        self.nacks_received = 0
        self.key_frame_requests_received = 0
        self.key_frame_requests_held = 0  # a viewer's requests not relayed upstream
        self.fraction_lost = 0
        self.packets_lost = 0  # the viewer's cumulative loss, from its receiver reports
        self.round_trip_time: float | None = None
        self.report_phase = phase_of(ssrc)  # where in each second our SR goes out
        self._reports_sent: dict[int, float] = {}  # NTP middle 32 bits -> our send time
        # Time from becoming active to the first forwarded key frame (video), per
        # epoch; collected lazily from the slot (it notes when the frame went out).
        self._key_frame_wait: float | None = None
        self._key_frame_waits = 0
        self._key_frame_wait_total = 0.0

    # -- what the slot counted ------------------------------------------------
    def counters(self) -> tuple[int, int, int, int]:
        """(packets, bytes, payload bytes, dropped) sent to the viewer, in one read."""
        if self._final is not None:
            return self._final
        slot = self._slot
        if slot is None:
            return (0, 0, 0, 0)
        return slot.counters()

    @property
    def packets_sent(self) -> int:
        return self.counters()[0]

    @property
    def bytes_sent(self) -> int:
        return self.counters()[1]

    @property
    def payload_bytes_sent(self) -> int:
        return self.counters()[2]

    @property
    def packets_dropped(self) -> int:
        return self.counters()[3]

    @property
    def active(self) -> bool:
        return self._active

    @property
    def layer(self) -> int:
        """The encoding forwarded now (the target until the slot exists)."""
        slot = self._slot
        return slot.layer if slot is not None else self._target_layer

    @property
    def target_layer(self) -> int:
        return self._target_layer

    @property
    def layer_switches(self) -> int:
        return self.layer_switches_up + self.layer_switches_down

    @property
    def streams(self) -> Sequence[ReceivedStream]:
        """The producer's encodings, lowest first (read only)."""
        return self._streams

    @property
    def temporal_layer(self) -> int:
        """The highest VP8 temporal layer forwarded now (ALL_TEMPORAL_LAYERS: no limit)."""
        slot = self._slot
        return slot.temporal_layer if slot is not None else self.bandwidth_temporal

    @property
    def wanted_layer(self) -> int | None:
        """The highest encoding this consumer wants the publisher to send: what the
        viewer's tile needs (`preferred_layer`), not what its downlink carries, so that
        one viewer on a bad link never lowers what everyone else gets. None while it
        takes nothing: not connected yet, paused, hidden, closed, or a pipe's copy of
        an encoding no viewer on the far worker wants."""
        if self.closed or not self.ready or self.paused or self.hidden:
            return None
        return self.preferred_layer if self.wanted_downstream else None

    def _update_want(self) -> None:
        wanted = self.wanted_layer
        if wanted != self._wanted:
            before, self._wanted = self._wanted, wanted
            self._on_want(before, wanted)

    def set_wanted_downstream(self, wanted: bool) -> None:
        """A pipe's copy: whether the far worker's viewers want its encoding now."""
        if wanted != self.wanted_downstream:
            self.wanted_downstream = wanted
            self._update_want()

    @property
    def source_bitrate(self) -> int:
        """The measured bitrate of the encoding it forwards (0 while unknown)."""
        streams = self._streams
        layer = self.layer
        return streams[layer].bitrate if layer < len(streams) else 0

    @property
    def waiting_key_frame(self) -> bool:
        """Active video that is held back until the publisher's next key frame."""
        self._collect_key_frame_wait()
        return self._active and self._slot is not None and self._slot.waiting_key_frame

    def _collect_key_frame_wait(self) -> None:
        """Account the key-frame wait once per epoch, when the slot saw the frame."""
        if self._key_frame_counted or self._slot is None:
            return
        sent_at = self._slot.key_frame_at
        if sent_at is None:
            return
        self._key_frame_counted = True
        wait = max(0.0, sent_at - self._active_since)
        self._key_frame_wait = wait
        self._key_frame_waits += 1
        self._key_frame_wait_total += wait

    @property
    def key_frame_wait(self) -> float | None:
        self._collect_key_frame_wait()
        return self._key_frame_wait

    @property
    def key_frame_waits(self) -> int:
        self._collect_key_frame_wait()
        return self._key_frame_waits

    @property
    def key_frame_wait_total(self) -> float:
        self._collect_key_frame_wait()
        return self._key_frame_wait_total

    # -- feedback from the viewer -----------------------------------------------
    def receive_nack(self, sequence_numbers: Iterable[int]) -> None:
        """Answer a viewer's NACK (RFC 4585 §6.2.1) from the fan-out's history, within
        its repair budget and while a copy can still help."""
        self.nacks_received += 1
        slot = self._slot
        if not self._active or slot is None:
            return
        now = self._clock.now()
        memory = self._retransmitted
        budget = self.repair_budget
        too_late = usefulness(self.round_trip_time)
        for out_seq in sequence_numbers:
            first, last, tries = memory.get(out_seq, (now, -1.0, 0))
            if last >= 0 and now - last < _RETRANSMIT_MIN_INTERVAL:
                continue
            if budget is not None:
                if tries >= budget.max_tries or now - first > too_late:
                    self.retransmissions_refused += 1
                    continue
                if not budget.admit(now):
                    self.retransmissions_refused += 1
                    continue
            if len(memory) >= _RETRANSMIT_MEMORY:
                memory.clear()
            memory[out_seq] = (first, now, tries + 1)
            before = slot.counters()[1] if budget is not None else 0
            if self._fanout.retransmit(slot, out_seq, now):  # type: ignore[arg-type]
                self.retransmissions_sent += 1
                if budget is not None:
                    budget.spend(slot.counters()[1] - before)
            else:
                self.retransmission_misses += 1

    def receive_key_frame_request(self) -> None:
        """PLI/FIR from the viewer: relayed (throttled) to the publisher, for the
        encoding the viewer is decoding, within this viewer's own allowance."""
        self.key_frame_requests_received += 1
        if not self._active or self.kind != "video":
            return
        if self.waiting_key_frame:
            self.key_frame_requests_held += 1  # one is on its way, retried until it comes
            return
        if self.relay:
            self._request_key_frame(self.layer)
            return
        now = self._clock.now()
        tokens = self._key_frame_tokens + (now - self._key_frame_tokens_at) / (
            _VIEWER_KEY_FRAME_INTERVAL
        )
        self._key_frame_tokens_at = now
        if tokens < 1:
            self._key_frame_tokens = tokens
            self.key_frame_requests_held += 1
            return
        self._key_frame_tokens = min(tokens, _VIEWER_KEY_FRAMES_BURST) - 1
        self._request_key_frame(self.layer)

    # -- which encoding -----------------------------------------------------------------
    def set_preferred_layer(self, layer: int) -> None:
        """The highest encoding this viewer should get (0 = lowest)."""
        self._check_open()
        self._tile_height = None
        self.preferred_layer = max(0, min(layer, self.layers - 1))
        self._retarget()

    def pin_layer(self, layer: int) -> None:
        """Forward this encoding and no other, whatever the publisher sends (a pipe
        carries each encoding as a stream of its own)."""
        self._check_open()
        self._pinned = True
        self._tile_height = None
        self.preferred_layer = max(0, min(layer, self.layers - 1))
        self._retarget()

    def set_view(self, *, visible: bool, height: int = 0) -> None:
        """What the viewer shows this track in: a hidden tile gets nothing, a visible
        one the smallest encoding that fills its `height` device pixels (0: no limit)."""
        self._check_open()
        if self.layers > 1:
            self._tile_height = height
            self._fit_tile()
        if visible == self.hidden:
            self.hidden = not visible
            self._update_active()

    def on_sizes_changed(self) -> None:
        """The publisher's encodings' picture sizes changed (its key frames say them): a
        view set before they were known (taken as wanting the top) fits again."""
        if not self.closed and self._tile_height is not None:
            self._fit_tile()

    def _fit_tile(self) -> None:
        heights = [stream.height for stream in self._streams]
        assert self._tile_height is not None
        self.preferred_layer = layer_choice.fitting_layer(heights, self._tile_height)
        self._retarget()

    def on_source_restarted(self, layer: int) -> None:
        """The publisher's numbering of encoding `layer` started over (RFC 3550 §A.1):
        a new epoch, from a key frame for video, so the viewer's numbers continue."""
        slot = self._slot
        if self.closed or not self._active or slot is None or slot.layer != layer:
            return
        video = self.kind == "video"
        self._collect_key_frame_wait()
        slot.activate(wait_for_key_frame=video)
        if video:
            self._active_since = self._clock.now()
            self._key_frame_counted = False
            self._request_key_frame(self._target_layer)

    def on_layers_changed(self) -> None:
        """The publisher started or stopped sending an encoding."""
        if not self.closed:
            self._retarget()

    def set_bandwidth_layer(self, layer: int | None, temporal: int = ALL_TEMPORAL_LAYERS) -> None:
        """The highest encoding the viewer's downlink carries for this track now
        (bandwidth_allocation.PAUSED: none; None: no limit), and of it the highest
        VP8 temporal layer."""
        if self.closed:
            return
        starved = layer is not None and layer < 0
        self.bandwidth_layer = None if starved else layer
        if not starved:
            self._retarget()
            self._set_temporal(temporal)
        if starved != self.starved:
            self.starved = starved
            self._update_active()

    def _set_temporal(self, temporal: int) -> None:
        self.bandwidth_temporal = temporal
        slot = self._slot
        if slot is not None and slot.temporal_ceiling != temporal:
            slot.set_temporal_ceiling(temporal)

    def bandwidth_options(self) -> list[Option]:
        """How this track can be forwarded, cheapest first: the lowest encoding its
        tile can use at fewer frames a second (its VP8 temporal layers), whole, then
        each higher one up to what the tile needs; none for a hidden tile."""
        if self.hidden:
            return []
        now = self._clock.now()
        sent = [s for s in self._streams if s.active(now) and s.bitrate > 0]
        if not sent:  # nothing measured yet: it costs nothing, and nothing is known
            return [Option(self.preferred_layer, ALL_TEMPORAL_LAYERS, 0)]
        fitting = [s for s in sent if s.layer <= self.preferred_layer] or sent[:1]
        lowest = fitting[0]
        options = [
            Option(lowest.layer, temporal, bps)
            for temporal, bps in enumerate(lowest.temporal_bitrates[:-1])
        ]
        options += [Option(s.layer, ALL_TEMPORAL_LAYERS, s.bitrate) for s in fitting]
        return options

    def demand(self) -> VideoDemand:
        """What this video track could take of the viewer's downlink."""
        options = self.bandwidth_options()
        current = PAUSED
        if self._active and not self.starved:
            now = (self.layer, self.bandwidth_temporal)
            current = next(
                (i for i, o in enumerate(options) if (o.layer, o.temporal) == now),
                next((i for i, o in enumerate(options) if o.layer == now[0]), PAUSED),
            )
        priority = max(self.priority, self._source_priority())
        return VideoDemand(key=self, priority=priority, options=options, current=current)

    def _retarget(self) -> None:
        """Aim at the best encoding the publisher sends within the preference and the
        downlink: the highest active one not above both, else the lowest active one;
        the limit itself while nothing is known yet."""
        self._update_want()
        now = self._clock.now()
        active = [stream.layer for stream in self._streams if stream.active(now)]
        limit = self.preferred_layer
        if self.bandwidth_layer is not None:
            limit = min(limit, self.bandwidth_layer)
        target = limit if self._pinned else layer_choice.available_layer(limit, active)
        if target == self._target_layer:
            return
        self._target_layer = target
        slot = self._slot
        if slot is None:
            return
        slot.set_target_layer(target)
        if self._active and slot.layer != target:
            if target > slot.layer:
                self.layer_switches_up += 1
            else:
                self.layer_switches_down += 1
            self._request_key_frame(target)

    def receive_report(self, block: rtcp.ReportBlock) -> None:
        self.fraction_lost = block.fraction_lost
        if block.packets_lost > self.packets_lost:  # kept monotonic for counters
            self.packets_lost = block.packets_lost
        sent = self._reports_sent.get(block.last_sr) if block.last_sr else None
        if sent is not None:
            # RFC 3550 §6.4.1: RTT = A - LSR - DLSR; LSR names one of our SRs, whose
            # send time we kept, so no clock but ours is involved.
            rtt = self._clock.now() - sent - block.delay_since_last_sr / 65536.0
            if rtt >= 0:
                self.round_trip_time = rtt

    def send_sender_report(self, ntp_timestamp: int, rtp_timestamp: int, elapsed: float) -> None:
        """Our SR for the viewer, from the publisher's last SR carried `elapsed` seconds
        forward on both clocks (a true NTP/RTP pair, so the viewer keeps lip sync), then
        mapped onto our timeline."""
        slot = self._slot
        if not self._active or slot is None:
            return
        packets, _, payload_bytes, _ = self.counters()
        if not packets:
            return
        carried = (rtp_timestamp + round(elapsed * self._clock_rate)) & 0xFFFF_FFFF
        timestamp = slot.output_timestamp(carried)
        if timestamp is None:
            return
        ntp = (ntp_timestamp + round(elapsed * 0x1_0000_0000)) & 0xFFFF_FFFF_FFFF_FFFF
        self._reports_sent[rtcp.ntp_middle_32(ntp)] = self._clock.now()
        if len(self._reports_sent) > _REPORTS_REMEMBERED:
            del self._reports_sent[next(iter(self._reports_sent))]
        self._send_rtcp(
            rtcp.compound(
                (
                    rtcp.SenderReport(
                        ssrc=self.ssrc,
                        ntp_timestamp=ntp,
                        rtp_timestamp=timestamp,
                        packet_count=packets & 0xFFFFFFFF,
                        octet_count=payload_bytes & 0xFFFFFFFF,
                        reports=(),
                    ),
                    rtcp.SourceDescription(chunks=((self.ssrc, self.cname),)),
                )
            )
        )

    # -- lifecycle ----------------------------------------------------------------
    def set_ready(self) -> None:
        """Negotiation is complete and the transport is connected."""
        if self.closed or self.ready:
            return
        egress = self._connected_egress()
        if egress is None:
            return  # not connected yet; the transport calls again when it is
        spec = FanOutSlotSpec(
            ssrc=self.ssrc,
            payload_type=self.payload_type,
            mid_element=self.mid_element,
            clock_rate=self._clock_rate,
            initial_sequence=self._initial[0],
            initial_timestamp=self._initial[1],
            layer=self._target_layer,
            urgent=self.kind == "audio",
        )
        # Both follow `native_fastpath` and whether the extension was built: a native
        # fan-out always gets a native egress, the Python one a Python egress.
        self._slot = self._fanout.add_slot(spec, egress)  # type: ignore[arg-type]
        if self.bandwidth_temporal != ALL_TEMPORAL_LAYERS:
            self._slot.set_temporal_ceiling(self.bandwidth_temporal)
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
        self._update_want()
        self._on_want = _ignore_want
        self._source_priority = _no_source_priority  # it held the producer: no cycle left
        if self._slot is not None:
            self._collect_key_frame_wait()
            self._final = self.counters()
            self._fanout.remove(self._slot)  # type: ignore[arg-type]
            self._slot = None
        if self.on_close is not None:
            self.on_close(self)
        self._events(
            ConsumerClosed(
                consumer_id=self.id,
                producer_id=self.producer_id,
                transport_id=self.transport_id,
                reason=reason,
            )
        )

    def _update_active(self) -> None:
        self._update_want()
        active = (
            self.ready
            and not self.paused
            and not self.hidden
            and not self.starved
            and not self.producer_paused
            and not self.closed
        )
        slot = self._slot
        if active == self._active or slot is None:
            return
        self._collect_key_frame_wait()
        self._active = active
        if not active:
            slot.deactivate()
            return
        video = self.kind == "video"
        slot.activate(wait_for_key_frame=video)  # a new epoch: numbering stays continuous
        if video:
            self._active_since = self._clock.now()
            self._key_frame_counted = False
            self._request_key_frame(self._target_layer)

    def _check_open(self) -> None:
        if self.closed:
            raise InvalidStateError(f"consumer {self.id} is closed")
