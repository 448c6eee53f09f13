"""A publisher bot's media: replay the cached clip as RTP at real-time rates.

Per packet the work is a header rewrite (sequence number, timestamp, abs-send-time)
from a precomputed template, the payload plus an 8-byte send-time stamp, and
`PeerConnection.send_rtp` (SRTP protect + sendto). Nothing is encoded at run time.

Video goes through a pacer (`benchmarks.pacer`) at `pacing_rate` bits/s, like
Chromium's, so a key frame's packets are spread out instead of leaving back to back;
audio is sent when due, never behind queued video. A PLI or FIR from the SFU makes the
next frame captured the next cached key frame, right away (it queues behind whatever
the pacer still holds); every one received is counted (the upstream key-frame request
rate). A send clock (`benchmarks.send_clock`), shared by the process's publishers,
serves each one when its next audio frame, video frame, paced packet or sender report
is due; a key-frame request or stop() wakes the clock early.
"""

from __future__ import annotations

import math
import random
import struct
import time
from collections.abc import Callable

from sfu.aiortc_bridge import PeerConnection
from sfu.ortc import EXTENSION_IDS, PAYLOAD_TYPES
from sfu.rtp import rtcp
from sfu.rtp_parameters import URI_ABS_SEND_TIME, URI_AUDIO_LEVEL, URI_MID

from .media import FPS, OPUS_FRAME_MS, MediaClip
from .negotiation import AUDIO_MID, VIDEO_MID
from .pacer import LOOKAHEAD, Pacer
from .send_clock import SendClock

_HEADER = struct.Struct("!BBHII")
_SEQ_TS = struct.Struct("!HI")
_STAMP = struct.Struct("!Q")
_AUDIO_LEVEL = 0x80 | 30  # RFC 6464: voice activity, -30 dBov: a speaking participant
_MAX_LAG = 0.2  # seconds behind schedule before the replay resynchronises instead of bursting
_REPORT_INTERVAL = 1.0


def _template(*, payload_type: int, ssrc: int, mid: str, audio: bool) -> tuple[bytearray, int]:
    """RTP header + one-byte extension block; returns it and the abs-send-time offset."""
    body = bytearray()
    body += bytes([(EXTENSION_IDS[URI_MID] << 4) | (len(mid) - 1)]) + mid.encode()
    if audio:
        body += bytes([EXTENSION_IDS[URI_AUDIO_LEVEL] << 4, _AUDIO_LEVEL])
    body.append((EXTENSION_IDS[URI_ABS_SEND_TIME] << 4) | 2)
    abs_offset = 12 + 4 + len(body)
    body += b"\x00\x00\x00"
    body += b"\x00" * (-len(body) % 4)
    header = bytearray(_HEADER.pack(0x90, payload_type, 0, 0, ssrc))
    header += struct.pack("!HH", 0xBEDE, len(body) // 4) + body
    return header, abs_offset


class _Track:
    __slots__ = ("abs_offset", "header", "seq", "ssrc", "timestamp")

    def __init__(self, *, payload_type: int, ssrc: int, mid: str, audio: bool) -> None:
        self.ssrc = ssrc
        self.header, self.abs_offset = _template(
            payload_type=payload_type, ssrc=ssrc, mid=mid, audio=audio
        )
        self.seq = random.getrandbits(16)
        self.timestamp = random.getrandbits(32)


class Publisher:
    """Sends `clip` on a connected `peer` until `deadline` (time.monotonic()) or stop()."""

    def __init__(
        self,
        peer: PeerConnection,
        clip: MediaClip,
        *,
        audio_ssrc: int | None,
        video_ssrc: int | None,
        stamp: bool,
        deadline: float,
        pacing_rate: float = 0.0,
    ) -> None:
        self._peer = peer
        self._clip = clip
        self._stamp = stamp
        self._deadline = deadline
        self._audio = (
            _Track(payload_type=PAYLOAD_TYPES["opus"], ssrc=audio_ssrc, mid=AUDIO_MID, audio=True)
            if audio_ssrc is not None
            else None
        )
        self._video = (
            _Track(payload_type=PAYLOAD_TYPES["VP8"], ssrc=video_ssrc, mid=VIDEO_MID, audio=False)
            if video_ssrc is not None
            else None
        )
        self._keyframes = clip.keyframe_indexes
        self._frame = 0
        self._audio_index = 0
        self._key_frame_wanted = False
        self._stopped = False
        self._next_audio = self._next_video = self._next_report = math.inf
        self.wake: Callable[[], None] = _nothing  # the clock's, once it drives us
        self.pacer = Pacer(pacing_rate)
        self._packet_counts = {ssrc: [0, 0] for ssrc in (audio_ssrc, video_ssrc) if ssrc}
        self.packets_sent = 0
        self.key_frame_requests = 0
        self.key_frames_sent = 0
        peer.on_rtcp = self._on_rtcp

    def stop(self) -> None:
        self._stopped = True
        self.wake()

    async def run(self, clock: SendClock | None = None) -> None:
        """Send until stopped or the deadline, on the process's shared `clock` (or a
        clock of its own)."""
        await (clock or SendClock()).drive(self)

    # -- driven by the send clock ---------------------------------------------------
    def start(self, now: float) -> None:
        self._next_audio = now if self._audio is not None else math.inf
        self._next_video = now if self._video is not None else math.inf
        self._next_report = now + _REPORT_INTERVAL

    @property
    def wake_at(self) -> float:
        if self._stopped or self._key_frame_wanted:
            return -math.inf
        return min(
            self._next_audio,
            self._next_video,
            self.pacer.wake_at,
            self._next_report,
            self._deadline,
        )

    def service(self, now: float) -> bool:
        """Send everything due within LOOKAHEAD of `now`; False once finished."""
        if self._stopped or now >= self._deadline:
            return False
        horizon = now + LOOKAHEAD
        if self._key_frame_wanted and self._video is not None:
            self._key_frame_wanted = False
            self._jump_to_key_frame()
            self._next_video = now
        if self._next_audio <= horizon:
            self._send_audio()
            self._next_audio += OPUS_FRAME_MS / 1000
            if now - self._next_audio > _MAX_LAG:
                self._next_audio = now + OPUS_FRAME_MS / 1000
        if self._next_video <= horizon:
            self._capture_video(now)
            self._next_video += 1 / FPS
            if now - self._next_video > _MAX_LAG:
                self._next_video = now + 1 / FPS
        if self.pacer.queued:
            self._send_paced(now)
        if self._next_report <= horizon:
            self._send_sender_reports()
            self._next_report = now + _REPORT_INTERVAL
        return True

    # -- sending ------------------------------------------------------------------
    def _send(self, track: _Track, payload: bytes, marker: bool, timestamp: int) -> None:
        header = track.header
        header[1] = (header[1] & 0x7F) | (0x80 if marker else 0)
        _SEQ_TS.pack_into(header, 2, track.seq, timestamp)
        now_ns = time.monotonic_ns()
        offset = track.abs_offset
        abs_time = (now_ns * 262144 // 1_000_000_000) & 0xFFFFFF  # 6.18 fixed-point seconds
        header[offset : offset + 3] = abs_time.to_bytes(3, "big")
        track.seq = (track.seq + 1) & 0xFFFF
        if self._stamp:
            packet = bytes(header) + payload + _STAMP.pack(time.monotonic_ns())
        else:
            packet = bytes(header) + payload
        if self._peer.send_rtp(packet):
            self.packets_sent += 1
            counts = self._packet_counts[track.ssrc]
            counts[0] += 1
            counts[1] += len(payload)

    def _send_audio(self) -> None:
        track = self._audio
        assert track is not None
        audio = self._clip.audio
        payload = audio[self._audio_index % len(audio)]
        self._audio_index += 1
        self._send(track, payload, self._audio_index == 1, track.timestamp)
        track.timestamp = (track.timestamp + 48 * OPUS_FRAME_MS) & 0xFFFFFFFF

    def _capture_video(self, now: float) -> None:
        """The next frame enters the pacer (all due at once when pacing is off)."""
        track = self._video
        assert track is not None
        frames = self._clip.video
        frame = frames[self._frame % len(frames)]
        self._frame = (self._frame + 1) % len(frames)
        if frame.keyframe:
            self.key_frames_sent += 1
        self.pacer.push(frame.payloads, track.timestamp, now)
        track.timestamp = (track.timestamp + 90000 // FPS) & 0xFFFFFFFF

    def _send_paced(self, now: float) -> None:
        track = self._video
        assert track is not None
        for packet in self.pacer.due(now):
            self._send(track, packet.payload, packet.marker, packet.timestamp)

    def _jump_to_key_frame(self) -> None:
        current = self._frame
        following = [i for i in self._keyframes if i >= current]
        self._frame = following[0] if following else self._keyframes[0]

    def _send_sender_reports(self) -> None:
        ntp = rtcp.ntp_from_unix(time.time())
        packets: list[rtcp.RtcpPacket] = []
        for track in (self._audio, self._video):
            if track is None:
                continue
            count, octets = self._packet_counts[track.ssrc]
            # The next packet's RTP timestamp with the current wall clock: close enough.
            packets.append(
                rtcp.SenderReport(
                    ssrc=track.ssrc,
                    ntp_timestamp=ntp,
                    rtp_timestamp=track.timestamp,
                    packet_count=count & 0xFFFFFFFF,
                    octet_count=octets & 0xFFFFFFFF,
                )
            )
        if packets:
            self._peer.send_rtcp(rtcp.compound(packets))

    # -- feedback -----------------------------------------------------------------
    def _on_rtcp(self, data: bytes) -> None:
        video = self._video
        if video is None:
            return
        try:
            packets = rtcp.parse_compound(data)
        except Exception:  # feedback we cannot read is ignored
            return
        for packet in packets:
            if isinstance(packet, rtcp.PictureLossIndication):
                wanted = packet.media_ssrc == video.ssrc
            elif isinstance(packet, rtcp.FullIntraRequest):
                wanted = any(ssrc == video.ssrc for ssrc, _ in packet.entries)
            else:
                wanted = False
            if wanted:
                self._key_frame_request()

    def _key_frame_request(self) -> None:
        self.key_frame_requests += 1
        self._key_frame_wanted = True
        self.wake()


def _nothing() -> None:
    pass
