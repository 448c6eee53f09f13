"""One RTP stream a producer receives: its only one, or one simulcast encoding.

Each encoding of a simulcast publisher is a stream of its own (RFC 8853): its
own SSRC and RTX SSRC (learned from the wire by RID), sequence numbers,
timestamps, loss, sender reports and key frames. The producer keeps one of
these per encoding; `layer` is its place in quality order (0 = lowest), the
number the fan-out and the consumers use.
"""

from __future__ import annotations

from .rtp.nack import NackGenerator
from .rtp.receive_stats import ReceiveStatistics
from .rtp.seq import NumberingRestart

# VP8 temporal layers (TID 0..3) counted apart, so that a viewer can be given fewer.
_TEMPORAL_IDS = 4
# A stream that sent nothing for this long is taken as stopped (a browser drops
# its upper encodings when its own uplink or CPU cannot carry them).
INACTIVE_AFTER = 1.5


class ReceivedStream:
    __slots__ = (
        "_frames",
        "_last_timestamp",
        "_window_bytes",
        "_window_start",
        "_window_temporal",
        "bitrate",
        "bytes_received",
        "frame_rate",
        "height",
        "key_frames_received",
        "last_packet_at",
        "layer",
        "nack",
        "numbering",
        "packets_received",
        "rid",
        "rtx_ssrc",
        "sender_report",
        "ssrc",
        "statistics",
        "temporal_bitrates",
        "width",
    )

    def __init__(
        self,
        *,
        layer: int,
        rid: str | None,
        ssrc: int | None,
        rtx_ssrc: int | None,
        clock_rate: int,
        video: bool,
    ) -> None:
        self.layer = layer
        self.rid = rid
        self.ssrc = ssrc
        self.rtx_ssrc = rtx_ssrc
        self.statistics = ReceiveStatistics(clock_rate)
        self.nack: NackGenerator | None = NackGenerator() if video else None
        self.numbering = NumberingRestart()
        # The publisher's last SR for this stream (NTP, RTP, our arrival time).
        self.sender_report: tuple[int, int, float] | None = None
        self.packets_received = 0
        self.bytes_received = 0
        self.key_frames_received = 0
        self.last_packet_at: float | None = None
        # The picture size of its last key frame (VP8 says it in every key frame, H.264
        # in the SPS before every IDR).
        self.width = 0
        self.height = 0
        # Measured over the last report interval (see `measure`).
        self.bitrate = 0
        self.frame_rate = 0.0
        self._window_start: float | None = None
        self._window_bytes = 0
        # Per VP8 TID, bytes in the window (packets without a TID count in all of them).
        self._window_temporal = [0] * _TEMPORAL_IDS
        # Bitrate of TIDs 0..t for each t the stream uses: () without temporal layers.
        self.temporal_bitrates: tuple[int, ...] = ()
        self._frames = 0
        self._last_timestamp = -1

    def count(self, size: int, timestamp: int, now: float, temporal_id: int = -1) -> None:
        """One original (not retransmitted) packet arrived (`temporal_id`: its VP8 TID,
        -1 without one)."""
        self.packets_received += 1
        self.bytes_received += size
        self.last_packet_at = now
        self._window_bytes += size
        if temporal_id >= 0:
            self._window_temporal[temporal_id] += size
        if timestamp != self._last_timestamp:
            self._last_timestamp = timestamp
            self._frames += 1

    def active(self, now: float) -> bool:
        """Whether the publisher is sending this stream now."""
        return self.last_packet_at is not None and now - self.last_packet_at < INACTIVE_AFTER

    def measure(self, now: float) -> None:
        """Close the measuring window: bitrate and frame rate since the last call."""
        start, self._window_start = self._window_start, now
        if start is None or now <= start:
            return
        elapsed = now - start
        self.bitrate = round(self._window_bytes * 8 / elapsed)
        self.frame_rate = self._frames / elapsed
        self.temporal_bitrates = _cumulative(self._window_temporal, self._window_bytes, elapsed)
        self._window_temporal = [0] * _TEMPORAL_IDS
        self._window_bytes = 0
        self._frames = 0

    def forget_ssrc(self) -> None:
        """The publisher restarted this stream under a new SSRC: start counting afresh."""
        self.restart_numbering()
        self.numbering = NumberingRestart()

    def restart_numbering(self) -> None:
        """The sequence numbers start over: loss, jitter and NACKs with them."""
        self.statistics = ReceiveStatistics(self.statistics.clock_rate)
        if self.nack is not None:
            self.nack = NackGenerator()
        self.sender_report = None
        self._last_timestamp = -1


def _cumulative(per_temporal_id: list[int], total: int, elapsed: float) -> tuple[int, ...]:
    """Bitrates of TIDs 0..t, up to the highest TID seen; the last is the whole stream
    (packets without a TID are part of every layer)."""
    highest = max((t for t, size in enumerate(per_temporal_id) if size), default=-1)
    if highest <= 0:
        return ()
    untagged = total - sum(per_temporal_id)
    rates = []
    running = untagged
    for size in per_temporal_id[:highest]:
        running += size
        rates.append(round(running * 8 / elapsed))
    return (*rates, round(total * 8 / elapsed))
