"""Producer: one incoming media track from a publisher, fanned out to consumers.

A track arrives as one RTP stream, or as several simulcast encodings
(sfu/received_stream.py), all fanned out by one fan-out in which each consumer
forwards one encoding at a time.

Per packet (synchronous, no allocation beyond the canonical extension body):
find its stream, unwrap RTX, update reception statistics and the upstream NACK
state, detect key frames, read the audio level, then one fan-out call does the
rest for every consumer (rewrite, SRTP, send, retransmission history).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from .clock import Clock
from .errors import InvalidStateError
from .events import EventSink, ProducerClosed
from .fastpath import AnyFanOut, create_fanout
from .keyframes import KeyFrameRequestThrottle
from .options import MediaOptions
from .received_stream import ReceivedStream
from .report_schedule import ReportSchedule
from .rtp import h264, rtcp, vp8
from .rtp.codecs import is_h264_keyframe, is_vp8_keyframe, is_vp9_keyframe
from .rtp.header import RtpPacketView, audio_level, iter_extensions, rewrite
from .rtp.receive_stats import ReceiveStatistics
from .rtp.seq import NumberingRestart
from .rtp_parameters import URI_ABS_SEND_TIME, URI_MID, URI_REPAIRED_RID, URI_RID, ReceiveParameters
from .types import CloseReason, LevelTap, MediaKind, PayloadTap, ProducerId
from .upstream_rate import UpstreamRate

if TYPE_CHECKING:
    from .consumer import Consumer

logger = logging.getLogger(__name__)

_KEYFRAME_DETECTORS: dict[str, Callable[[bytes], bool]] = {
    "VP8": is_vp8_keyframe,
    "VP9": is_vp9_keyframe,
    "H264": is_h264_keyframe,
}
# Each encoding's picture size, read from its key frames (for the layer a tile needs).
_KEY_FRAME_SIZES: dict[str, Callable[[bytes], tuple[int, int] | None]] = {
    "VP8": vp8.key_frame_size,
    "H264": h264.key_frame_size,
}
_NOT_FORWARDED = frozenset({URI_MID, URI_RID, URI_REPAIRED_RID})
_REPORT_INTERVAL = 1.0
_TS_MASK = 0xFFFFFFFF

class Producer:
    """Receives one publisher stream (plus its RTX) on a transport.

    `canonical_ext_ids` is the SFU-wide URI -> id table consumers announce, so
    the extension body is translated once here instead of once per consumer.
    """

    def __init__(
        self,
        *,
        producer_id: ProducerId,
        parameters: ReceiveParameters,
        stream_id: str,
        track_id: str,
        canonical_ext_ids: dict[str, int],
        options: MediaOptions,
        clock: Clock,
        send_rtcp: Callable[[bytes], bool],
        on_event: EventSink,
    ) -> None:
        self.id = producer_id
        self.parameters = parameters
        self.kind: MediaKind = parameters.kind
        self.stream_id = stream_id
        self.track_id = track_id
        self.closed = False
        self.paused = False
        self.consumers: tuple[Consumer, ...] = ()
        self.level_tap: LevelTap | None = None
        # Only for publishers without RFC 6464 levels, when the decode fallback is on.
        self.payload_tap: PayloadTap | None = None
        self.on_close: Callable[[Producer], None] | None = None
        self._clock = clock
        self._send_rtcp = send_rtcp
        self._on_event = on_event
        self._feedback_ssrc = random.getrandbits(32) or 1
        codec = parameters.codec
        self._payload_type = codec.payload_type
        self._rtx_payload_type = parameters.rtx_payload_type
        self._clock_rate = codec.clock_rate
        video = self.kind == "video"
        self._detect_keyframe = _KEYFRAME_DETECTORS.get(codec.name) if video else None
        self._vp8 = codec.name == "VP8"
        self._key_frame_size = _KEY_FRAME_SIZES.get(codec.name)
        encodings: list[tuple[str | None, int | None, int | None]]  # rid, ssrc, rtx ssrc
        if parameters.rids:  # SSRCs learned from the wire by rid
            encodings = [(rid, None, None) for rid in parameters.rids]
        elif len(parameters.encoding_ssrcs) > 1:
            encodings = [(None, ssrc, None) for ssrc in parameters.encoding_ssrcs]
        else:
            encodings = [(None, parameters.ssrc, parameters.rtx_ssrc)]
        self.streams: tuple[ReceivedStream, ...] = tuple(
            ReceivedStream(
                layer=layer,
                rid=rid,
                ssrc=ssrc,
                rtx_ssrc=rtx_ssrc,
                clock_rate=codec.clock_rate,
                video=video,
            )
            for layer, (rid, ssrc, rtx_ssrc) in enumerate(encodings)
        )
        self.simulcast = len(self.streams) > 1
        # The REMB: the ceiling for one encoding (nothing to choose), else what the
        # viewers' tiles need (sfu/upstream_rate.py).
        self._upstream = UpstreamRate(
            layers=len(self.streams), ceiling=options.publisher_max_bitrate
        )
        self.requested_bitrate = 0  # the last REMB sent (0: none yet)
        # SSRC -> (stream, whether it is that stream's RTX)
        self._by_ssrc: dict[int, tuple[ReceivedStream, bool]] = {}
        for stream in self.streams:
            self._bind(stream)
        self._rid_id = parameters.extensions.get(URI_RID)
        self._repaired_rid_id = parameters.extensions.get(URI_REPAIRED_RID)
        self._id_map = {
            pid: canonical_ext_ids[uri]
            for uri, pid in parameters.extensions.items()
            if uri in canonical_ext_ids and uri not in _NOT_FORWARDED
        }
        self._abs_send_time_id = parameters.extensions.get(URI_ABS_SEND_TIME, -1)
        self.audio_level_id = parameters.extensions.get(
            "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
        )
        self._throttle = KeyFrameRequestThrottle(min_interval=options.key_frame_min_interval)
        self.fanout: AnyFanOut = create_fanout(
            native=options.native_fastpath,
            history=options.retransmission_buffer if video else 0,  # audio is not NACKed
            max_age=options.retransmission_max_age,
            layers=len(self.streams),
            vp8=self._vp8,
        )
        if self.simulcast:
            self.fanout.set_timestamp_shift(0, None)  # aligned by sender reports instead
        self._next_report = 0.0
        self._active_layers: tuple[int, ...] = ()
        self._heights: tuple[int, ...] = ()
        self._consumer_reports: ReportSchedule[Consumer] = ReportSchedule(
            lambda consumer: consumer.report_phase, _REPORT_INTERVAL
        )
        # Counters read at scrape time; plain ints on the hot path.
        self.packets_discarded = 0
        self.numbering_restarts = 0
        # How viewers' downlinks rank it when they are short (sfu/bandwidth_allocation.py):
        # the application raises shared content above cameras.
        self.priority = 1
        self.retransmissions_received = 0
        self.key_frame_requests_sent = 0
        self.nacks_sent = 0
        self.remb_raises = 0  # REMBs sent at once because the viewers' need went up

    # -- hot path ---------------------------------------------------------
    def receive_rtp(self, view: RtpPacketView) -> None:
        now = self._clock.now()
        found = self._by_ssrc.get(view.ssrc)
        if found is None:
            self.packets_discarded += 1
            return
        stream, is_rtx = found
        retransmit = False
        if is_rtx:
            unwrapped = self._unwrap_rtx(view, stream)
            if unwrapped is None:
                self.packets_discarded += 1  # padding-only probe
                return
            view = unwrapped
            retransmit = True
            self.retransmissions_received += 1
        elif view.payload_type != self._payload_type:
            self.packets_discarded += 1
            return
        seq = view.sequence_number
        if not retransmit:
            verdict = stream.numbering.check(seq)
            if verdict:
                if verdict == NumberingRestart.STRAY:
                    self.packets_discarded += 1
                    return
                self._numbering_restarted(stream)
        stream.statistics.add(seq, view.timestamp, now, retransmit=retransmit)
        if not retransmit:
            temporal_id = -1
            if self._vp8 and view.payload_end > view.payload_start:
                temporal_id = vp8.temporal_id(view.data, view.payload_start)
            stream.count(len(view.data), view.timestamp, now, temporal_id)
        keyframe = False
        nack = stream.nack
        if nack is not None:
            nack.on_packet(seq, now)
            detect = self._detect_keyframe
            if detect is not None and view.payload_end > view.payload_start:
                payload = view.data[view.payload_start : view.payload_end]
                keyframe = detect(payload)
                if keyframe and stream.ssrc is not None:
                    stream.key_frames_received += 1
                    self._throttle.key_frame_received(stream.ssrc)
                    read_size = self._key_frame_size
                    if read_size is not None:
                        stream.width, stream.height = read_size(payload) or (0, 0)
        elif self.paused:
            return  # muted: nothing forwarded and no levels, so never shown speaking
        elif self.level_tap is not None and self.audio_level_id is not None:
            level = audio_level(view, self.audio_level_id)
            if level is not None:
                self.level_tap(self.id, level, now)
        elif self.payload_tap is not None:
            self.payload_tap(view.data[view.payload_start : view.payload_end], now)
        if self.paused:
            return
        ext_body = self._canonical_ext_body(view, now)
        if stream.layer:
            self.fanout.forward(
                view.data, view.payload_start, ext_body, keyframe, now, stream.layer
            )
        else:
            self.fanout.forward(view.data, view.payload_start, ext_body, keyframe, now)

    def _numbering_restarted(self, stream: ReceivedStream) -> None:
        """The publisher's numbering of `stream` started over: its viewers start a new
        epoch there, so they see their own numbers continue, not silence (a jump back
        looks like old packets) or a jump ahead (thousands of losses to NACK)."""
        self.numbering_restarts += 1
        stream.restart_numbering()
        for consumer in self.consumers:
            consumer.on_source_restarted(stream.layer)

    def _canonical_ext_body(self, view: RtpPacketView, now: float) -> bytes:
        if view.ext_end == view.ext_start:
            return b""
        id_map = self._id_map
        body = bytearray()
        for element_id, value in iter_extensions(
            view.data, view.ext_profile, view.ext_start, view.ext_end
        ):
            canonical = id_map.get(element_id)
            if canonical is None or not 0 < len(value) <= 16:
                continue
            if element_id == self._abs_send_time_id:
                # Our send time, not the publisher's: viewers estimate bandwidth from it.
                value = (int(now * 262144) & 0xFFFFFF).to_bytes(3, "big")
            body.append((canonical << 4) | (len(value) - 1))
            body += value
        return bytes(body)

    def _unwrap_rtx(self, view: RtpPacketView, stream: ReceivedStream) -> RtpPacketView | None:
        """RFC 4588 §4: the payload starts with the original sequence number."""
        if view.payload_end - view.payload_start < 3 or stream.ssrc is None:
            return None
        data = view.data
        start = view.payload_start
        original_seq = (data[start] << 8) | data[start + 1]
        restored = bytearray(
            rewrite(
                view,
                payload_type=self._payload_type,
                sequence_number=original_seq,
                timestamp=view.timestamp,
                ssrc=stream.ssrc,
                extension_block=data[view.ext_start - 4 : view.ext_end]
                if view.ext_end > view.ext_start
                else b"",
            )
        )
        header = len(restored) - (len(data) - start)
        del restored[header : header + 2]
        return RtpPacketView.parse(bytes(restored))

    # -- feedback from the publisher and toward it ----------------------------
    def receive_sender_report(self, report: rtcp.SenderReport) -> None:
        found = self._by_ssrc.get(report.ssrc)
        if found is None or found[1]:
            return
        stream = found[0]
        now = self._clock.now()
        stream.statistics.sender_report_received(rtcp.ntp_middle_32(report.ntp_timestamp), now)
        stream.sender_report = (report.ntp_timestamp, report.rtp_timestamp, now)
        if self.simulcast:
            # Every encoding is stamped from the same capture clock the SR's NTP time
            # reads: NTP time in RTP ticks is a timeline they all share.
            ntp = report.ntp_timestamp
            ticks = (ntp >> 32) * self._clock_rate + (((ntp & 0xFFFFFFFF) * self._clock_rate) >> 32)
            self.fanout.set_timestamp_shift(stream.layer, (ticks - report.rtp_timestamp) & _TS_MASK)

    def request_key_frame(self, layer: int = 0) -> None:
        """Ask the publisher for a key frame of one encoding, at most once per interval
        (deferred otherwise)."""
        if self.kind != "video" or self.closed or not 0 <= layer < len(self.streams):
            return
        ssrc = self.streams[layer].ssrc
        if ssrc is not None and self._throttle.request(ssrc, self._clock.now()):
            self._send_pli(ssrc)

    def tick(self, now: float) -> None:
        """Periodic RTCP: upstream deferred PLIs, NACKs, and once a second RR + REMB;
        downstream this tick's share of the consumers' sender reports."""
        if self.closed:
            return
        streams = self.streams
        for consumer in self._consumer_reports.due(self.consumers, now):
            layer = consumer.layer
            report = streams[layer].sender_report if layer < len(streams) else None
            if report is not None:
                ntp, rtp_timestamp, received = report
                consumer.send_sender_report(ntp, rtp_timestamp, now - received)
        for ssrc in self._throttle.due(now, self._wants_key_frame):
            self._send_pli(ssrc)
        for stream in streams:
            nack = stream.nack
            if nack is None or stream.ssrc is None:
                continue
            missing = nack.due(now)
            if missing:
                self.nacks_sent += 1
                self._send_rtcp(
                    rtcp.serialize(
                        rtcp.GenericNack(
                            sender_ssrc=self._feedback_ssrc,
                            media_ssrc=stream.ssrc,
                            lost=tuple(missing),
                        )
                    )
                )
        if now >= self._next_report and self.packets_received:
            self._next_report = now + _REPORT_INTERVAL
            self._send_reports(now)
            self._measure(now)
        elif self.simulcast and self._upstream.rose(now):
            remb = self._remb(now)
            if remb is not None:
                self.remb_raises += 1
                self._send_rtcp(rtcp.serialize(remb))

    def _wants_key_frame(self, ssrc: int) -> bool:
        """Whether a consumer still waits for a key frame of `ssrc`'s encoding (to start
        or to switch to it): an unanswered request is retried only then."""
        found = self._by_ssrc.get(ssrc)
        if found is None:
            return False
        layer = found[0].layer
        return any(
            consumer.target_layer == layer
            and (consumer.waiting_key_frame or consumer.layer != layer)
            for consumer in self.consumers
            if consumer.active
        )

    def _measure(self, now: float) -> None:
        """Once a second: each stream's rate, and the consumers told when an encoding
        started or stopped or its picture size changed."""
        for stream in self.streams:
            stream.measure(now)
        self._upstream.measured([stream.bitrate for stream in self.streams])
        active = self.active_layers()
        if active != self._active_layers:
            self._active_layers = active
            if self.simulcast:
                for consumer in self.consumers:
                    consumer.on_layers_changed()
        heights = tuple(stream.height for stream in self.streams)
        if heights != self._heights:
            self._heights = heights
            if self.simulcast:
                for consumer in self.consumers:
                    consumer.on_sizes_changed()

    def active_layers(self) -> tuple[int, ...]:
        """The encodings the publisher is sending now, lowest first."""
        now = self._clock.now()
        return tuple(stream.layer for stream in self.streams if stream.active(now))

    def _send_reports(self, now: float) -> None:
        blocks = []
        for stream in self.streams:
            if stream.ssrc is None or not stream.packets_received:
                continue
            fraction, lost, highest, jitter, lsr, dlsr = stream.statistics.report_fields(now)
            blocks.append(
                rtcp.ReportBlock(
                    ssrc=stream.ssrc,
                    fraction_lost=fraction,
                    packets_lost=lost,
                    highest_sequence=highest,
                    jitter=jitter,
                    last_sr=lsr,
                    delay_since_last_sr=dlsr,
                )
            )
        if not blocks:
            return
        packets: list[rtcp.RtcpPacket] = [
            rtcp.ReceiverReport(ssrc=self._feedback_ssrc, reports=tuple(blocks))
        ]
        remb = self._remb(now)
        if remb is not None:
            packets.append(remb)
        self._send_rtcp(rtcp.compound(packets))

    def _remb(self, now: float) -> rtcp.Remb | None:
        """What the viewers need of the publisher (video only), naming the encodings
        they want: a pipe's far end tells the home worker so which of its copies its
        viewers want (sfu/pipe_transport.py)."""
        if self.kind != "video":
            return None
        layer = self._upstream.layer(now)
        known = [s.ssrc for s in self.streams if s.ssrc is not None]
        if not known:
            return None
        # Until a wanted encoding's SSRC is learned, the ones known: a REMB always goes out.
        ssrcs = tuple(s.ssrc for s in self.streams[: layer + 1] if s.ssrc is not None)
        ssrcs = ssrcs or tuple(known)
        bitrate, _ = self._upstream.ask(now)
        self.requested_bitrate = bitrate
        return rtcp.Remb(sender_ssrc=self._feedback_ssrc, bitrate_bps=bitrate, ssrcs=ssrcs)

    def consumer_wants(self, before: int | None, now: int | None) -> None:
        """A consumer's wanted encoding changed (`Consumer.wanted_layer`)."""
        self._upstream.want(before, now)

    def _send_pli(self, ssrc: int) -> None:
        self.key_frame_requests_sent += 1
        logger.debug("> PLI producer=%s ssrc=%d", self.id, ssrc)
        self._send_rtcp(
            rtcp.serialize(
                rtcp.PictureLossIndication(sender_ssrc=self._feedback_ssrc, media_ssrc=ssrc)
            )
        )

    # -- lifecycle --------------------------------------------------------
    def learn_ssrc(self, view: RtpPacketView) -> bool:
        """Bind the SSRC of a packet the transport routed here by its MID (offers
        without a=ssrc; simulcast encodings, told apart by their RID extension)."""
        rtx = view.payload_type == self._rtx_payload_type
        stream = self._stream_of(view, rtx=rtx)
        if stream is None:
            return False
        previous = stream.rtx_ssrc if rtx else stream.ssrc
        if previous is not None and previous != view.ssrc:
            self._by_ssrc.pop(previous, None)
            if not rtx:
                stream.forget_ssrc()
                self._throttle.forget(previous)
        if rtx:
            stream.rtx_ssrc = view.ssrc
        else:
            stream.ssrc = view.ssrc
        self._bind(stream)
        return True

    def _stream_of(self, view: RtpPacketView, *, rtx: bool) -> ReceivedStream | None:
        if not self.simulcast:
            return self.streams[0]
        if not self.parameters.rids:
            return None  # every encoding's SSRC was signalled
        ext_id = self._repaired_rid_id if rtx else self._rid_id
        value = view.extension(ext_id) if ext_id is not None else None
        if not value:
            return None
        rid = value.decode("ascii", "replace")
        return next((s for s in self.streams if s.rid == rid), None)

    def _bind(self, stream: ReceivedStream) -> None:
        if stream.ssrc is not None:
            self._by_ssrc[stream.ssrc] = (stream, False)
        if stream.rtx_ssrc is not None:
            self._by_ssrc[stream.rtx_ssrc] = (stream, True)

    @property
    def ssrcs(self) -> tuple[int, ...]:
        """Every SSRC this producer receives (its streams' and their RTX)."""
        return tuple(self._by_ssrc)

    def pause(self) -> None:
        self._check_open()
        if not self.paused:
            self.paused = True
            for consumer in self.consumers:
                consumer.on_producer_paused()

    def resume(self) -> None:
        self._check_open()
        if self.paused:
            self.paused = False
            for consumer in self.consumers:
                consumer.on_producer_resumed()

    def close(self, reason: CloseReason = CloseReason.REQUESTED) -> None:
        if self.closed:
            return
        self.closed = True
        consumers, self.consumers = self.consumers, ()
        for consumer in consumers:
            consumer.close(CloseReason.PRODUCER_CLOSED)
        self._consumer_reports.clear()
        self.fanout.close()
        if self.on_close is not None:
            self.on_close(self)
        self._on_event(ProducerClosed(producer_id=self.id, reason=reason))

    def _check_open(self) -> None:
        if self.closed:
            raise InvalidStateError(f"producer {self.id} is closed")

    # -- totals over the streams, read at scrape time ----------------------------------
    @property
    def ssrc(self) -> int | None:
        """The lowest encoding's SSRC (the only one without simulcast)."""
        return self.streams[0].ssrc

    @property
    def statistics(self) -> ReceiveStatistics:
        """The lowest encoding's reception statistics (the only one without simulcast)."""
        return self.streams[0].statistics

    @property
    def packets_received(self) -> int:
        return sum(stream.packets_received for stream in self.streams)

    @property
    def bytes_received(self) -> int:
        return sum(stream.bytes_received for stream in self.streams)

    @property
    def key_frames_received(self) -> int:
        return sum(stream.key_frames_received for stream in self.streams)

    @property
    def packets_lost(self) -> int:
        return sum(stream.statistics.cumulative_lost for stream in self.streams)
