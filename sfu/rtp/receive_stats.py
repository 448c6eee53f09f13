"""Reception statistics of one incoming RTP stream, for receiver reports.

RFC 3550 §6.4.1 (report block fields) and appendix A.3/A.8 (loss, jitter).
Fed once per packet on the hot path: integer arithmetic only.
"""

from __future__ import annotations

from .seq import SequenceExtender


class ReceiveStatistics:
    __slots__ = (
        "_base",
        "_expected_prior",
        "_extender",
        "_last_arrival",
        "_last_sr_arrival",
        "_last_timestamp",
        "_received_prior",
        "clock_rate",
        "highest",
        "jitter",
        "last_sr",
        "received",
    )

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self._extender = SequenceExtender()
        self._base = -1
        self.highest = -1
        self.received = 0
        self._expected_prior = 0
        self._received_prior = 0
        self.jitter = 0.0
        self._last_arrival = 0.0
        self._last_timestamp = -1
        self.last_sr = 0  # middle 32 bits of the last SR's NTP time
        self._last_sr_arrival = 0.0

    def add(
        self, sequence_number: int, timestamp: int, arrival: float, *, retransmit: bool
    ) -> None:
        extended = self._extender.extend(sequence_number)
        if self._base < 0:
            self._base = extended
            self.highest = extended
        elif extended > self.highest:
            self.highest = extended
        self.received += 1
        if retransmit:
            return  # late repairs say nothing about network jitter
        if self._last_timestamp >= 0:
            # A.8: D(i-1,i) in timestamp units, smoothed with gain 1/16.
            ts_delta = ((timestamp - self._last_timestamp + 0x80000000) & 0xFFFFFFFF) - 0x80000000
            transit_delta = (arrival - self._last_arrival) * self.clock_rate - ts_delta
            self.jitter += (abs(transit_delta) - self.jitter) / 16.0
        self._last_arrival = arrival
        self._last_timestamp = timestamp

    def sender_report_received(self, ntp_middle: int, arrival: float) -> None:
        self.last_sr = ntp_middle
        self._last_sr_arrival = arrival

    @property
    def cumulative_lost(self) -> int:
        if self._base < 0:
            return 0
        return max(0, (self.highest - self._base + 1) - self.received)

    def report_fields(self, now: float) -> tuple[int, int, int, int, int, int]:
        """(fraction_lost, cumulative_lost, highest_sequence, jitter, lsr, dlsr).

        Advances the interval used for `fraction_lost` (A.3), so call it once
        per report.
        """
        if self._base < 0:
            return (0, 0, 0, 0, 0, 0)
        expected = self.highest - self._base + 1
        expected_interval = expected - self._expected_prior
        received_interval = self.received - self._received_prior
        self._expected_prior = expected
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        fraction = 0
        if expected_interval > 0 and lost_interval > 0:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        lost = min(self.cumulative_lost, 0x7FFFFF)
        dlsr = 0
        if self.last_sr:
            dlsr = int((now - self._last_sr_arrival) * 65536) & 0xFFFFFFFF
        return (
            fraction,
            lost,
            self.highest & 0xFFFFFFFF,
            int(self.jitter) & 0xFFFFFFFF,
            self.last_sr,
            dlsr,
        )
