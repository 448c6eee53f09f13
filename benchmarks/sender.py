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

Simulcast (`encodings`): video goes out as several encodings of the same capture, each
its own RTP stream (SSRC, random sequence and timestamp bases) carrying its rid in the
RFC 8852 extension on every packet, each frame captured for all of them at once (lowest
first) through the one pacer, and its own VP8 PictureIDs (from a random first one, +1
per frame sent, as an encoder numbers them: a jump to a key frame skips clip frames, not
picture numbers; H.264 payloads go out as cached). Every encoding gets its own sender
report from the same
wall-clock instant, which is what lets the SFU line their timestamps up. A PLI or FIR
for any of them makes all of them jump to their next key frame (the clips have key
frames at the same frames); an encoding can be stopped and started (`set_sending`), as
a browser stops its upper encodings when bandwidth or CPU run short.
"""

from __future__ import annotations

import math
import random
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sfu.aiortc_bridge import PeerConnection
from sfu.ortc import EXTENSION_IDS, PAYLOAD_TYPES
from sfu.rtp import rtcp
from sfu.rtp_parameters import URI_ABS_SEND_TIME, URI_AUDIO_LEVEL, URI_MID

from .media import FPS, OPUS_FRAME_MS, MediaClip, VideoFrame
from .negotiation import AUDIO_MID, RID_EXTENSION_ID, VIDEO_MID
from .pacer import LOOKAHEAD, Pacer
from .send_clock import SendClock

_HEADER = struct.Struct("!BBHII")
_SEQ_TS = struct.Struct("!HI")
_STAMP = struct.Struct("!Q")
_AUDIO_LEVEL = 0x80 | 30  # RFC 6464: voice activity, -30 dBov: a speaking participant
_MAX_LAG = 0.2  # seconds behind schedule before the replay resynchronises instead of bursting
_REPORT_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class Encoding:
    """One simulcast encoding a publisher sends: its rid, SSRC and clip (its video)."""

    rid: str
    ssrc: int
    clip: MediaClip


def _template(
    *, payload_type: int, ssrc: int, mid: str, audio: bool, rid: str | None = None
) -> tuple[bytearray, int]:
    """RTP header + one-byte extension block; returns it and the abs-send-time offset."""
    body = bytearray()
    body += bytes([(EXTENSION_IDS[URI_MID] << 4) | (len(mid) - 1)]) + mid.encode()
    if rid is not None:
        body += bytes([(RID_EXTENSION_ID << 4) | (len(rid) - 1)]) + rid.encode()
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

    def __init__(
        self, *, payload_type: int, ssrc: int, mid: str, audio: bool, rid: str | None = None
    ) -> None:
        self.ssrc = ssrc
        self.header, self.abs_offset = _template(
            payload_type=payload_type, ssrc=ssrc, mid=mid, audio=audio, rid=rid
        )
        self.seq = random.getrandbits(16)
        self.timestamp = random.getrandbits(32)


class Publisher:
    """Sends `clip` on a connected `peer` until `deadline` (time.monotonic()) or stop().

    Video is `clip`'s on `video_ssrc`, or with `encodings` (and no `video_ssrc`) those
    simulcast encodings, lowest first, all in one codec; audio is `clip`'s in both
    cases."""

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
        encodings: Sequence[Encoding] = (),
    ) -> None:
        if encodings and video_ssrc is not None:
            raise ValueError("video_ssrc: simulcast video is sent as `encodings` only")
        self._peer = peer
        self._clip = clip
        self._stamp = stamp
        self._deadline = deadline
        self._audio = (
            _Track(payload_type=PAYLOAD_TYPES["opus"], ssrc=audio_ssrc, mid=AUDIO_MID, audio=True)
            if audio_ssrc is not None
            else None
        )
        # The video streams: the one encoding, or each simulcast encoding, with its frames.
        self._videos: tuple[_Track, ...]
        self._video_frames: tuple[tuple[VideoFrame, ...], ...]
        codecs = {e.clip.codec for e in encodings} or {clip.codec}
        if len(codecs) > 1:
            raise ValueError(f"encodings: one codec for all, not {sorted(codecs)}")
        (codec,) = codecs
        if encodings:
            self._videos = tuple(
                _Track(
                    payload_type=PAYLOAD_TYPES[codec],
                    ssrc=e.ssrc,
                    mid=VIDEO_MID,
                    audio=False,
                    rid=e.rid,
                )
                for e in encodings
            )
            self._video_frames = tuple(e.clip.video for e in encodings)
        elif video_ssrc is not None:
            self._videos = (
                _Track(
                    payload_type=PAYLOAD_TYPES[codec], ssrc=video_ssrc, mid=VIDEO_MID, audio=False
                ),
            )
            self._video_frames = (clip.video,)
        else:
            self._videos = self._video_frames = ()
        if len({len(frames) for frames in self._video_frames}) > 1:
            raise ValueError("encodings: every clip must have as many frames")
        self._rids = tuple(e.rid for e in encodings)
        self._sending = [True] * len(self._videos)
        numbered = bool(encodings) and codec == "VP8"
        for frames in self._video_frames if numbered else ():
            if not all(_wide_picture_id(p) for frame in frames for p in frame.payloads):
                raise ValueError("encodings: VP8 payloads need a 15-bit PictureID")
        # VP8 simulcast only: the next PictureID of each encoding (the one clip keeps its
        # own; H.264 has no picture numbering in its payload).
        self._picture_ids = [random.getrandbits(15) for _ in encodings] if numbered else []
        # Frames that are key frames in every encoding: where a key-frame request jumps.
        self._keyframes = tuple(
            sorted(
                set.intersection(
                    *(
                        {i for i, frame in enumerate(frames) if frame.keyframe}
                        for frames in self._video_frames
                    )
                )
            )
            if self._video_frames
            else ()
        )
        self._frame = 0
        self._audio_index = 0
        self._key_frame_wanted = False
        self._stopped = False
        self._next_audio = self._next_video = self._next_report = math.inf
        self.wake: Callable[[], None] = _nothing  # the clock's, once it drives us
        self.pacer = Pacer(pacing_rate)
        self._packet_counts = {
            ssrc: [0, 0]
            for ssrc in (audio_ssrc, *(track.ssrc for track in self._videos))
            if ssrc is not None
        }
        self.packets_sent = 0
        self.key_frame_requests = 0
        self.key_frames_sent = 0
        peer.on_rtcp = self._on_rtcp

    def stop(self) -> None:
        self._stopped = True
        self.wake()

    @property
    def video_ssrcs(self) -> dict[str, int]:
        """rid -> SSRC of each simulcast encoding (empty for one encoding)."""
        return {rid: track.ssrc for rid, track in zip(self._rids, self._videos, strict=True)}

    def set_sending(self, rid: str, sending: bool) -> None:
        """Stop or restart one simulcast encoding; a restarted one starts with a key frame
        (all encodings jump to their next one, as for a key-frame request)."""
        index = self._rids.index(rid)
        if self._sending[index] == sending:
            return
        self._sending[index] = sending
        if sending:
            self._key_frame_wanted = True
            self.wake()

    async def run(self, clock: SendClock | None = None) -> None:
        """Send until stopped or the deadline, on the process's shared `clock` (or a
        clock of its own)."""
        await (clock or SendClock()).drive(self)

    # -- driven by the send clock ---------------------------------------------------
    def start(self, now: float) -> None:
        self._next_audio = now if self._audio is not None else math.inf
        self._next_video = now if self._videos else math.inf
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
        if self._key_frame_wanted and self._videos:
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
        """The next frame enters the pacer (all due at once when pacing is off), in each
        encoding being sent, lowest first; a stopped encoding's clock runs on."""
        index = self._frame
        for stream, track in enumerate(self._videos):
            frames = self._video_frames[stream]
            if self._sending[stream]:
                frame = frames[index % len(frames)]
                if frame.keyframe:
                    self.key_frames_sent += 1
                payloads = frame.payloads
                if self._picture_ids:
                    picture_id = self._picture_ids[stream]
                    self._picture_ids[stream] = (picture_id + 1) & 0x7FFF
                    numbered = (0x8000 | picture_id).to_bytes(2, "big")
                    payloads = tuple(p[:2] + numbered + p[4:] for p in payloads)
                self.pacer.push(payloads, track.timestamp, now, stream)
            track.timestamp = (track.timestamp + 90000 // FPS) & 0xFFFFFFFF
        self._frame = (index + 1) % len(self._video_frames[0])

    def _send_paced(self, now: float) -> None:
        tracks = self._videos
        for packet in self.pacer.due(now):
            self._send(tracks[packet.stream], packet.payload, packet.marker, packet.timestamp)

    def _jump_to_key_frame(self) -> None:
        current = self._frame
        following = [i for i in self._keyframes if i >= current]
        self._frame = following[0] if following else self._keyframes[0]

    def _send_sender_reports(self) -> None:
        ntp = rtcp.ntp_from_unix(time.time())
        packets: list[rtcp.RtcpPacket] = []
        sending = [track for track, on in zip(self._videos, self._sending, strict=True) if on]
        for track in (self._audio, *sending):
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
        if not self._videos:
            return
        ssrcs = {track.ssrc for track in self._videos}
        try:
            packets = rtcp.parse_compound(data)
        except Exception:  # feedback we cannot read is ignored
            return
        for packet in packets:
            if isinstance(packet, rtcp.PictureLossIndication):
                wanted = packet.media_ssrc in ssrcs
            elif isinstance(packet, rtcp.FullIntraRequest):
                wanted = any(ssrc in ssrcs for ssrc, _ in packet.entries)
            else:
                wanted = False
            if wanted:
                self._key_frame_request()

    def _key_frame_request(self) -> None:
        self.key_frame_requests += 1
        self._key_frame_wanted = True
        self.wake()


def _wide_picture_id(payload: bytes) -> bool:
    """RFC 7741 §4.2: X, then I, then M set: the PictureID is bytes 2-3 of the payload."""
    return len(payload) > 4 and bool(payload[0] & payload[1] & payload[2] & 0x80)


def _nothing() -> None:
    pass
