"""One viewer's downlink: how much it carries, and who gets what of it.

The viewer's transport-cc feedback (every packet we send it carries a
transport-wide sequence number) feeds a send-side bandwidth estimate
(sfu/bwe/); a few times a second the estimate is divided over the transport's
consumers (sfu/bandwidth_allocation.py) and each video consumer is told the
highest encoding (and VP8 temporal layer of it) it may forward, or that it must
pause. Audio is budgeted
first and never paused. Tracks stay within the estimate (the delay-based rate is
backed off below what got through when a queue builds), but go up only within 85 %
of what the link was seen to carry: key frames come in bursts above a track's
average, and loss repair lives in the rest (sfu/repair_budget.py), its allowance
set anew at each division from what the media took.

When the viewer's tiles want more than the estimate gives, the downlink probes
(sfu/bwe/probe.py): `start_probe` is asked to send a cluster's padding, and the
rate the cluster arrived at lifts the estimate, so tiles go back up as soon as the
link allows instead of never (an estimate cannot grow far above what is sent).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable

from .bandwidth_allocation import PAUSED, UPGRADE_MARGIN, VideoDemand, allocate
from .bwe.estimator import BandwidthEstimator
from .bwe.probe import Cluster, ProbeController, ProbeEvaluator
from .bwe.results import FeedbackResolver, SendLookup
from .consumer import Consumer
from .repair_budget import RepairBudget
from .rtp import twcc

logger = logging.getLogger(__name__)

# How often the estimate is divided anew: often enough to follow a link that drops
# within a second, seldom enough that layers do not chase every feedback.
_ALLOCATION_INTERVAL = 0.5
# Where a viewer starts before its first feedback: its tiles begin low and rise as
# the link proves itself (a guess too high would overrun a slow link at once).
INITIAL_BPS = 300_000
# How long a playing track is held on its cheapest option before it is paused.
_PAUSE_AFTER = 2.0
# How long a probe's result counts as proof that the link carries its rate.
_PROBE_PROOF_LIFETIME = 5.0
# The share of the proven rate the media may grow into; the rest is for key-frame
# bursts and repair.
_MEDIA_SHARE = 0.85
# The viewer's packets leave paced at this multiple of the estimate: the media stays
# within the estimate, so the rest drains the queue a key frame leaves behind; a burst
# paced faster (1.5x was tried) still filled a 700 kbit/s link's buffer, and the delay
# it built cut the estimate (docs/bottleneck.md). Probe padding is not paced.
PACING_FACTOR = 1.1
# A backlog in the pacer beyond what it sends in this long is the media outrunning the
# link (a key frame's worth passes within it): the next division leaves room to drain it
# within _BACKLOG_DRAIN, so the pacer's queue never holds its packets to their deadline.
_BACKLOG_ALLOWANCE = 0.1
_BACKLOG_DRAIN = 1.0


class Downlink:
    def __init__(
        self,
        *,
        consumers: Callable[[], Iterable[Consumer]],
        sent_packet: SendLookup,
        initial_bps: int = INITIAL_BPS,
        start_probe: Callable[[Cluster, int], bool] | None = None,
        set_pacing: Callable[[int], None] | None = None,
        pacer_backlog: Callable[[], int] | None = None,
    ) -> None:
        self._consumers = consumers
        # Paces the viewer's packets at the given rate (bit/s); bytes waiting to be sent.
        self._set_pacing = set_pacing
        self._pacer_backlog = pacer_backlog
        # Sends a cluster's padding at the given rate (bit/s); False if it cannot.
        self._start_probe = start_probe
        self.prober = ProbeController()
        self._probe: ProbeEvaluator | None = None
        self._before_probe = 0  # the estimate when the cluster started
        self._pausing: dict[Hashable, float] = {}  # track -> since when it should pause
        self._given: set[Hashable] = set()  # tracks the last division let play
        self._media_bps = 0.0
        self._probed = (0, 0.0)  # the last successful probe's rate, and when
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
        probe = self._probe
        if probe is not None:
            probe.add(results)
            if probe.complete(now):
                self._probe = None
                rate = probe.rate_bps()
                raised = rate is not None and rate > self.estimator.estimate_bps
                logger.debug("downlink %x: probe for %d found %s (%d reported, %d received%s)",
                             id(self), probe.cluster.target_bps, rate, *probe.packets,
                             ", saturated" if probe.saturated else "")  # fmt: skip
                if probe.saturated:
                    # The queue the probe built is its own doing, and drains behind it:
                    # the delays it gave the media after it are not the media's.
                    cluster = probe.cluster
                    self.estimator.forgive_queue(cluster.end + probe.queue_seconds())
                if rate is not None and raised:
                    self.probe_succeeded(rate, now)
                else:
                    # The cuts that queue caused do not stand either (the link carried
                    # the media before).
                    self.estimator.on_probe_result(self._before_probe)
                # A probe that found the link full found where to stop: the next waits.
                self.prober.on_result(now, raised and not probe.saturated)
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
            self._media_bps = media_bytes * 8 / (now - measured_at)
        else:
            self._media_bps = estimate * _MEDIA_SHARE
        # Repair is what the link was seen to carry beyond the media, not what the
        # estimate (running ahead) hopes: copies into a full queue only add to it.
        self.repair.set_rates(min(estimate, self._proven_bps(now)), self._media_bps)
        # Staying within the estimate: after an overuse it is already backed off below
        # what got through. Going up within the proven rate less a margin.
        chosen = allocate(estimate - self._backlog_bps(estimate), audio_bps, videos)
        proven = allocate(self._proven_bps(now) * _MEDIA_SHARE, audio_bps, videos)
        _only_proven_up(chosen, videos, proven)
        _one_step_up(chosen, videos)
        self._pause_slowly(chosen, videos, now)
        self.allocations += 1
        if self._set_pacing is not None:
            self._set_pacing(round(estimate * PACING_FACTOR))
        self._maybe_probe(now, estimate, audio_bps, videos)
        for demand in videos:
            viewer = demand.key
            assert isinstance(viewer, Consumer)
            index = chosen[viewer]
            if index == PAUSED:
                viewer.set_bandwidth_layer(PAUSED)
            else:
                option = demand.options[index]
                viewer.set_bandwidth_layer(option.layer, option.temporal)
        if logger.isEnabledFor(logging.DEBUG):
            self._log_division(now, measured_at, estimate, videos, chosen, sent_before)

    def _log_division(
        self,
        now: float,
        measured_at: float | None,
        estimate: int,
        videos: list[VideoDemand],
        chosen: dict[Hashable, int],
        sent_before: dict[Consumer, int],
    ) -> None:
        """One line per division: the estimate and its parts, and per video track its
        options, where it was, what it got and what it really sent since the last."""
        span = now - measured_at if measured_at is not None and now > measured_at else None

        def sent_bps(consumer: Consumer) -> int | None:
            before = sent_before.get(consumer)
            if span is None or before is None:
                return None
            return round((self._sent_bytes[consumer] - before) * 8 / span)

        estimator = self.estimator
        tracks = []
        for demand in videos:
            consumer = demand.key
            assert isinstance(consumer, Consumer)
            options = [(o.layer, o.temporal, o.bps) for o in demand.options]
            tracks.append((options, demand.current, chosen[consumer], sent_bps(consumer)))
        logger.debug(
            "downlink %x: estimate %d delay-based %s acked %s loss %.3f %s repair %d; "
            "video (options, current, chosen, sent bit/s) %s; pacer backlog %d",
            id(self), estimate, estimator.delay_based_bps, estimator.acknowledged_bps,
            estimator.loss_fraction, estimator.usage.name, self.repair.rate_bps, tracks,
            round(self._backlog_bps(estimate)),
        )  # fmt: skip

    def _backlog_bps(self, estimate: int) -> float:
        """What draining the pacer's excess backlog takes from the next division."""
        if self._pacer_backlog is None:
            return 0.0
        pacing_bps = estimate * PACING_FACTOR
        excess = self._pacer_backlog() * 8 - pacing_bps * _BACKLOG_ALLOWANCE
        return max(excess, 0.0) / _BACKLOG_DRAIN

    def _pause_slowly(
        self, chosen: dict[Hashable, int], videos: list[VideoDemand], now: float
    ) -> None:
        """A playing track the estimate no longer fits stays on its cheapest option for
        `_PAUSE_AFTER` first: resuming costs a key frame (a burst on the very link that
        is short), and an estimate that has just been cut after an overuse is often
        back within a second or two."""
        pausing = {}
        for demand in videos:
            key = demand.key
            held = key in self._given and demand.current != PAUSED and demand.options
            if chosen[key] == PAUSED and held:
                since = self._pausing.get(key, now)
                if now - since < _PAUSE_AFTER:
                    chosen[key] = 0
                    pausing[key] = since
        self._pausing = pausing
        self._given = {demand.key for demand in videos if chosen[demand.key] != PAUSED}

    def probe_succeeded(self, rate: int, now: float) -> None:
        """A probe found the link carrying `rate`: the estimate moves there, and going
        up to it is proven for a while; used at the next feedback."""
        self.estimator.on_probe_result(rate)
        self._probed = (rate, now)
        self._next_allocation = now

    def _proven_bps(self, now: float) -> float:
        """What the link has been seen to carry: the acknowledged rate, or a recent
        probe's (the estimate while nothing was acknowledged yet). The estimate may run
        ahead of both (the delay-based rate grows until a queue says stop): staying is
        judged by the estimate, going up by this, so that a switch up never fills the
        link to find out."""
        acknowledged = self.estimator.acknowledged_bps
        if acknowledged is None:
            return self.estimator.estimate_bps
        rate, at = self._probed
        return max(acknowledged, rate if now - at < _PROBE_PROOF_LIFETIME else 0)

    def _maybe_probe(
        self, now: float, estimate: int, audio_bps: int, videos: list[VideoDemand]
    ) -> None:
        if self._start_probe is None or self._probe is not None:
            return
        wanted = audio_bps + sum(_wanted_bps(demand) for demand in videos)
        cluster = self.prober.next_cluster(now, estimate, round(wanted / _MEDIA_SHARE))
        if cluster is None:
            return
        if self._start_probe(cluster, max(round(cluster.target_bps - self._media_bps), 0)):
            self._probe = ProbeEvaluator(cluster)
            self._before_probe = estimate
        else:
            self.prober.on_result(now, False)


def _wanted_bps(demand: VideoDemand) -> float:
    """What a track would take at the best option its tile needs (with the margin an
    upgrade must fit in)."""
    return demand.options[-1].bps * UPGRADE_MARGIN if demand.options else 0.0


def _only_proven_up(
    chosen: dict[Hashable, int], videos: list[VideoDemand], proven: dict[Hashable, int]
) -> None:
    """Hold each switch up (a track going up, or back from a pause) to what the proven
    rate would have given."""
    for demand in videos:
        key = demand.key
        if chosen[key] > demand.current and _switching_up(demand):
            chosen[key] = max(demand.current, min(chosen[key], proven[key]))


def _one_step_up(chosen: dict[Hashable, int], videos: list[VideoDemand]) -> None:
    """Let one track go up per division, the one with the highest priority: each goes
    up at a key frame, and several key frames at once are a burst that a link just
    found to have room may not take."""
    raised = False
    for demand in sorted(videos, key=lambda d: -d.priority):
        viewer = demand.key
        if chosen[viewer] <= demand.current or not _switching_up(demand):
            continue
        if raised:
            chosen[viewer] = demand.current
        raised = True


def _switching_up(demand: VideoDemand) -> bool:
    """Whether more for this track would be a switch up: it plays, or was paused for
    bandwidth. Tracks starting for the first time (or resumed by their viewer) are
    not held: they wait for a key frame whatever happens, and must start somewhere."""
    viewer = demand.key
    assert isinstance(viewer, Consumer)
    return demand.current != PAUSED or viewer.starved
