"""One viewer's downlink: how much it carries, and who gets what of it.

The viewer's transport-cc feedback (every packet we send it carries a
transport-wide sequence number) feeds a send-side bandwidth estimate
(sfu/bwe/); a few times a second the estimate is divided over the transport's
consumers (sfu/bandwidth_allocation.py) and each video consumer is told the
highest encoding it may forward, or that it must pause. Audio is budgeted
first and never paused. A tenth of the estimate is kept out of the division:
loss repair lives there (sfu/repair_budget.py), whose allowance is set anew at
each division from what the media took.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .bandwidth_allocation import allocate
from .bwe.estimator import BandwidthEstimator
from .bwe.results import FeedbackResolver, SendLookup
from .consumer import Consumer
from .repair_budget import RepairBudget
from .rtp import twcc

# How often the estimate is divided anew: often enough to follow a link that drops
# within a second, seldom enough that layers do not chase every feedback.
_ALLOCATION_INTERVAL = 0.5
# Where a viewer starts before its first feedback: its tiles begin low and rise as
# the link proves itself (a guess too high would overrun a slow link at once).
INITIAL_BPS = 1_000_000
# The share of the estimate the media may fill; the rest is for repair and jitter.
_MEDIA_SHARE = 0.9


class Downlink:
    def __init__(
        self,
        *,
        consumers: Callable[[], Iterable[Consumer]],
        sent_packet: SendLookup,
        initial_bps: int = INITIAL_BPS,
    ) -> None:
        self._consumers = consumers
        self.estimator = BandwidthEstimator(initial_bps=initial_bps)
        self._resolver = FeedbackResolver(sent_packet)
        self._next_allocation = 0.0
        self.repair = RepairBudget()
        self._sent_bytes: dict[Consumer, int] = {}
        self._repair_bytes = 0
        self._measured_at: float | None = None
        self.feedbacks = 0
        self.feedbacks_malformed = 0
        self.allocations = 0

    def on_transport_feedback(self, fci: bytes, now: float) -> None:
        feedback = twcc.parse_feedback(fci)
        if feedback is None:
            self.feedbacks_malformed += 1
            return
        self.feedbacks += 1
        results = self._resolver.resolve(feedback)
        if results:
            self.estimator.on_packet_results(results, now)
        if now >= self._next_allocation:
            self._next_allocation = now + _ALLOCATION_INTERVAL
            self.allocate(now)

    def allocate(self, now: float) -> None:
        """Divide the current estimate over the consumers (audio first), and give
        repair what the media leaves."""
        audio_bps = 0
        videos = []
        round_trip_times = []
        sent_before, sent_now = self._sent_bytes, {}
        media_bytes = 0
        for consumer in self._consumers():
            if consumer.closed:
                continue
            consumer.repair_budget = self.repair
            sent = consumer.bytes_sent
            sent_now[consumer] = sent
            media_bytes += sent - sent_before.get(consumer, sent)
            if consumer.round_trip_time is not None:
                round_trip_times.append(consumer.round_trip_time)
            if consumer.kind == "video":
                videos.append(consumer.demand())
            elif consumer.active:
                audio_bps += consumer.source_bitrate
        if round_trip_times:
            self.estimator.on_round_trip_time(min(round_trip_times))
        self._sent_bytes = sent_now
        estimate = self.estimator.estimate_bps
        measured_at, self._measured_at = self._measured_at, now
        repair_bytes, self._repair_bytes = self._repair_bytes, self.repair.spent_bytes
        if measured_at is not None and now > measured_at:
            media_bytes -= self.repair.spent_bytes - repair_bytes
            self.repair.set_rates(estimate, media_bytes * 8 / (now - measured_at))
        else:
            self.repair.set_rates(estimate, estimate * _MEDIA_SHARE)
        chosen = allocate(estimate * _MEDIA_SHARE, audio_bps, videos)
        self.allocations += 1
        for demand in videos:
            viewer = demand.key
            assert isinstance(viewer, Consumer)
            viewer.set_bandwidth_layer(chosen[viewer])
