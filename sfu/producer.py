"""Producer: one incoming media stream from a publisher, fanned out to consumers.

Per packet (synchronous, no allocation beyond the canonical extension body):
unwrap RTX, update reception statistics and the upstream NACK state, detect
key frames, read the audio level, then one fan-out call does the rest for
every consumer (rewrite, SRTP, send, retransmission history).
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
from .report_schedule import ReportSchedule
from .rtp import rtcp
from .rtp.codecs import is_h264_keyframe, is_vp8_keyframe, is_vp9_keyframe
from .rtp.header import RtpPacketView, audio_level, iter_extensions, rewrite
from .rtp.nack import NackGenerator
from .rtp.receive_stats import ReceiveStatistics
from .rtp_parameters import URI_ABS_SEND_TIME, URI_MID, URI_REPAIRED_RID, URI_RID, ReceiveParameters
from .types import CloseReason, LevelTap, MediaKind, PayloadTap, ProducerId

if TYPE_CHECKING:
    from .consumer import Consumer

logger = logging.getLogger(__name__)

_KEYFRAME_DETECTORS: dict[str, Callable[[bytes], bool]] = {
    "VP8": is_vp8_keyframe,
    "VP9": is_vp9_keyframe,
    "H264": is_h264_keyframe,
}
_NOT_FORWARDED = frozenset({URI_MID, URI_RID, URI_REPAIRED_RID})
_REPORT_INTERVAL = 1.0

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
        self._max_bitrate = options.publisher_max_bitrate
        codec = parameters.codec
        self.ssrc = parameters.ssrc
        self.rtx_ssrc = parameters.rtx_ssrc
        self._payload_type = codec.payload_type
        self._rtx_payload_type = parameters.rtx_payload_type
        self._detect_keyframe = (
            _KEYFRAME_DETECTORS.get(codec.name) if self.kind == "video" else None
        )
        self._id_map = {
            pid: canonical_ext_ids[uri]
            for uri, pid in parameters.extensions.items()
            if uri in canonical_ext_ids and uri not in _NOT_FORWARDED
        }
        self._abs_send_time_id = parameters.extensions.get(URI_ABS_SEND_TIME, -1)
        self.audio_level_id = parameters.extensions.get(
            "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
        )
        self._stats = ReceiveStatistics(codec.clock_rate)
        self._throttle = KeyFrameRequestThrottle(min_interval=options.key_frame_min_interval)
        video = self.kind == "video"
        self._nack: NackGenerator | None = NackGenerator() if video else None
        self.fanout: AnyFanOut = create_fanout(
            native=options.native_fastpath,
            history=options.retransmission_buffer if video else 0,  # audio is not NACKed
            max_age=options.retransmission_max_age,
        )
        self._next_report = 0.0
        # The publisher's last SR (NTP, RTP, our arrival time); each consumer carries it
        # forward to its own report time, spread over the second (sfu/report_schedule.py).
        self._sender_report: tuple[int, int, float] | None = None
        self._consumer_reports: ReportSchedule[Consumer] = ReportSchedule(
            lambda consumer: consumer.report_phase, _REPORT_INTERVAL
        )
        # Counters read at scrape time; plain ints on the hot path.
        self.packets_received = 0
        self.bytes_received = 0
        self.packets_discarded = 0
        self.retransmissions_received = 0
        self.key_frames_received = 0
        self.key_frame_requests_sent = 0
        self.nacks_sent = 0

    # -- hot path ---------------------------------------------------------
    def receive_rtp(self, view: RtpPacketView) -> None:
        now = self._clock.now()
        retransmit = False
        if view.ssrc == self.rtx_ssrc and view.ssrc is not None:
            unwrapped = self._unwrap_rtx(view)
            if unwrapped is None:
                self.packets_discarded += 1  # padding-only probe
                return
            view = unwrapped
            retransmit = True
            self.retransmissions_received += 1
        elif view.payload_type != self._payload_type:
            self.packets_discarded += 1
            return
        self.packets_received += 1
        self.bytes_received += len(view.data)
        seq = view.sequence_number
        self._stats.add(seq, view.timestamp, now, retransmit=retransmit)
        keyframe = False
        if self._nack is not None:
            self._nack.on_packet(seq, now)
            detect = self._detect_keyframe
            if detect is not None and view.payload_end > view.payload_start:
                keyframe = detect(view.data[view.payload_start : view.payload_end])
                if keyframe and self.ssrc is not None:
                    self.key_frames_received += 1
                    self._throttle.key_frame_received(self.ssrc)
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
        self.fanout.forward(
            view.data, view.payload_start, self._canonical_ext_body(view, now), keyframe, now
        )

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

    def _unwrap_rtx(self, view: RtpPacketView) -> RtpPacketView | None:
        """RFC 4588 §4: the payload starts with the original sequence number."""
        if view.payload_end - view.payload_start < 3 or self.ssrc is None:
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
                ssrc=self.ssrc,
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
        now = self._clock.now()
        self._stats.sender_report_received(rtcp.ntp_middle_32(report.ntp_timestamp), now)
        self._sender_report = (report.ntp_timestamp, report.rtp_timestamp, now)

    def request_key_frame(self) -> None:
        """Ask the publisher for a key frame, at most once per interval (deferred otherwise)."""
        if self.kind != "video" or self.ssrc is None or self.closed:
            return
        if self._throttle.request(self.ssrc, self._clock.now()):
            self._send_pli(self.ssrc)

    def tick(self, now: float) -> None:
        """Periodic RTCP: upstream deferred PLIs, NACKs, and once a second RR + REMB;
        downstream this tick's share of the consumers' sender reports."""
        if self.closed or self.ssrc is None:
            return
        reporting = self._consumer_reports.due(self.consumers, now)
        if self._sender_report is not None:
            ntp, rtp_timestamp, received = self._sender_report
            for consumer in reporting:
                consumer.send_sender_report(ntp, rtp_timestamp, now - received)
        for ssrc in self._throttle.due(now):
            self._send_pli(ssrc)
        if self._nack is not None:
            missing = self._nack.due(now)
            if missing:
                self.nacks_sent += 1
                self._send_rtcp(
                    rtcp.serialize(
                        rtcp.GenericNack(
                            sender_ssrc=self._feedback_ssrc,
                            media_ssrc=self.ssrc,
                            lost=tuple(missing),
                        )
                    )
                )
        if now >= self._next_report and self.packets_received:
            self._next_report = now + _REPORT_INTERVAL
            self._send_reports(now)

    def _send_reports(self, now: float) -> None:
        assert self.ssrc is not None
        fraction, lost, highest, jitter, lsr, dlsr = self._stats.report_fields(now)
        packets: list[rtcp.RtcpPacket] = [
            rtcp.ReceiverReport(
                ssrc=self._feedback_ssrc,
                reports=(
                    rtcp.ReportBlock(
                        ssrc=self.ssrc,
                        fraction_lost=fraction,
                        packets_lost=lost,
                        highest_sequence=highest,
                        jitter=jitter,
                        last_sr=lsr,
                        delay_since_last_sr=dlsr,
                    ),
                ),
            )
        ]
        if self.kind == "video":
            # A fixed ceiling rather than the slowest viewer's estimate: one bad
            # downlink must not starve the publisher for everyone else.
            packets.append(
                rtcp.Remb(
                    sender_ssrc=self._feedback_ssrc,
                    bitrate_bps=self._max_bitrate,
                    ssrcs=(self.ssrc,),
                )
            )
        self._send_rtcp(rtcp.compound(packets))

    def _send_pli(self, ssrc: int) -> None:
        self.key_frame_requests_sent += 1
        logger.debug("> PLI producer=%s ssrc=%d", self.id, ssrc)
        self._send_rtcp(
            rtcp.serialize(
                rtcp.PictureLossIndication(sender_ssrc=self._feedback_ssrc, media_ssrc=ssrc)
            )
        )

    # -- lifecycle --------------------------------------------------------
    def learn_ssrc(self, ssrc: int, *, rtx: bool) -> None:
        """Bind an SSRC found on the wire (offers without a=ssrc, e.g. simulcast)."""
        if rtx:
            self.rtx_ssrc = ssrc
        else:
            self.ssrc = ssrc

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

    @property
    def statistics(self) -> ReceiveStatistics:
        return self._stats
