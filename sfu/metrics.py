"""Prometheus view of the media core, built at scrape time.

The media objects count in plain ints (see `sfu.stats`); this collector reads
them when Prometheus scrapes, so nothing Prometheus runs on the hot path.
Counters include closed objects (folded into the worker's retired totals),
so they never go backwards when participants leave. Distributions over the
streams that are live right now (jitter, round-trip time, loss) are gauges
labelled with a `quantile` (0.5, 0.9 and 1 = the maximum).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from .fanout import MAX_LAYERS
from .stats import MediaTotals, StreamTotals
from .types import MediaKind
from .worker import Worker

__all__ = ["MediaCollector"]

_KINDS = (MediaKind.AUDIO, MediaKind.VIDEO)
_Getter = Callable[[StreamTotals], int]
QUANTILES = (0.5, 0.9, 1.0)

# (name, help, StreamTotals field), one series per kind.
_KIND_COUNTERS: tuple[tuple[str, str, str], ...] = (
    (
        "stage_sfu_rtp_packets_received_total",
        "RTP packets accepted from publishers, retransmissions included.",
        "packets_received",
    ),
    (
        "stage_sfu_rtp_bytes_received_total",
        "Bytes of RTP accepted from publishers (headers and payload).",
        "bytes_received",
    ),
    (
        "stage_sfu_rtp_packets_sent_total",
        "RTP packets sent to viewers, retransmissions included.",
        "packets_sent",
    ),
    (
        "stage_sfu_rtp_bytes_sent_total",
        "Bytes of RTP sent to viewers (headers and payload).",
        "bytes_sent",
    ),
    (
        "stage_sfu_rtp_packets_dropped_total",
        "RTP packets that could not be sent to a viewer (not connected yet, socket buffer "
        "over media.egress_buffer_limit, or a send error).",
        "packets_dropped",
    ),
    (
        "stage_sfu_nacks_received_total",
        "Generic NACK messages received from viewers (RFC 4585 6.2.1).",
        "nacks_received",
    ),
    (
        "stage_sfu_nacks_sent_total",
        "Generic NACK messages sent to publishers for packets the SFU missed.",
        "nacks_sent",
    ),
    (
        "stage_sfu_retransmissions_sent_total",
        "Packets retransmitted to viewers from the retransmission history.",
        "retransmissions_sent",
    ),
    (
        "stage_sfu_retransmission_misses_total",
        "Packets viewers asked for that were no longer in the retransmission history.",
        "retransmission_misses",
    ),
    (
        "stage_sfu_retransmissions_refused_total",
        "Packets viewers asked for that were not resent: over the viewer's repair "
        "budget, asked for too often, or too late to be played.",
        "retransmissions_refused",
    ),
    (
        "stage_sfu_retransmissions_received_total",
        "Retransmitted (RTX) packets received from publishers.",
        "retransmissions_received",
    ),
)


class MediaCollector(Collector):
    """Reads `worker`'s counters and live streams on every scrape."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        # Loss is an estimate that may shrink (late or duplicate packets); exposed as a
        # counter, it is held at its highest value so rate() never sees a reset.
        self._highest_loss: dict[tuple[str, str], int] = {}

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | SummaryMetricFamily]:
        worker = self._worker
        totals = worker.totals()
        yield from self._counters(totals)
        yield from self._live(worker)

    # -- cumulative ---------------------------------------------------------------
    def _counters(
        self, totals: MediaTotals
    ) -> Iterator[CounterMetricFamily | GaugeMetricFamily | SummaryMetricFamily]:
        for name, documentation, attribute in _KIND_COUNTERS:
            family = CounterMetricFamily(name, documentation, labels=["kind"])
            for kind in _KINDS:
                family.add_metric([kind.value], getattr(totals.of(kind), attribute))
            yield family

        lost = CounterMetricFamily(
            "stage_sfu_rtp_packets_lost_total",
            "RTP packets lost: direction=in from sequence gaps in what publishers sent, "
            "direction=out as viewers report in their receiver reports (RFC 3550 6.4.1).",
            labels=["kind", "direction"],
        )
        for kind in _KINDS:
            stream = totals.of(kind)
            lost.add_metric([kind.value, "in"], self._monotonic(kind, "in", stream.packets_lost))
            lost.add_metric(
                [kind.value, "out"], self._monotonic(kind, "out", stream.packets_lost_reported)
            )
        yield lost

        transports = totals.transports
        discarded = CounterMetricFamily(
            "stage_sfu_rtp_packets_discarded_total",
            "Incoming RTP packets not forwarded: malformed, for an unknown SSRC, with an "
            "unexpected payload type (including padding-only probes), or late: queued in a "
            "socket longer than media.max_ingress_delay while the worker was overloaded.",
            labels=["reason"],
        )
        discarded.add_metric(["malformed"], transports.packets_malformed)
        discarded.add_metric(["unknown_ssrc"], transports.packets_unknown_ssrc)
        discarded.add_metric(["late"], transports.packets_late + totals.pipes.packets_late)
        discarded.add_metric(["unexpected_payload"], _sum(totals, lambda s: s.packets_discarded))
        yield discarded
        yield CounterMetricFamily(
            "stage_sfu_socket_packets_dropped_total",
            "Packets dropped at a peer's socket (buffer over media.egress_buffer_limit or a "
            "send error); part of stage_sfu_rtp_packets_dropped_total.",
            value=transports.egress_packets_dropped,
        )
        probes = CounterMetricFamily(
            "stage_sfu_probe_clusters_total",
            "Probe clusters sent toward viewers' downlinks (padding above the media, to find "
            "whether the link carries more), by result: succeeded lifted the estimate.",
            labels=["result"],
        )
        probes.add_metric(["succeeded"], transports.probe_clusters_succeeded)
        probes.add_metric(
            ["failed"], transports.probe_clusters - transports.probe_clusters_succeeded
        )
        yield probes
        yield CounterMetricFamily(
            "stage_sfu_padding_bytes_sent_total",
            "Bytes of probe padding sent to viewers (padding-only RTP on RTX streams).",
            value=transports.padding_bytes_sent,
        )
        yield CounterMetricFamily(
            "stage_sfu_rtcp_packets_received_total",
            "Compound RTCP packets received from publishers and viewers.",
            value=transports.rtcp_packets_received,
        )
        yield CounterMetricFamily(
            "stage_sfu_key_frame_requests_received_total",
            "Key frame requests (PLI or FIR) received from viewers.",
            value=_sum(totals, lambda s: s.key_frame_requests_received),
        )
        yield CounterMetricFamily(
            "stage_sfu_key_frame_requests_held_total",
            "Key frame requests from viewers not relayed upstream: over the viewer's own "
            "allowance (two at once, then one per 5 s), so that publishers do not send key "
            "frames every other viewer pays for on one congested viewer's account.",
            value=_sum(totals, lambda s: s.key_frame_requests_held),
        )
        yield CounterMetricFamily(
            "stage_sfu_key_frame_requests_sent_total",
            "PLIs sent to publishers: viewers' requests relayed upstream (at most one per "
            "stream per media.key_frame_min_interval) and the SFU's own for new viewers.",
            value=_sum(totals, lambda s: s.key_frame_requests_sent),
        )
        yield CounterMetricFamily(
            "stage_sfu_publisher_rate_raises_total",
            "REMBs sent to simulcast publishers at once, not at the next report, because "
            "a viewer's tile came to need a higher encoding.",
            value=_sum(totals, lambda s: s.remb_raises),
        )
        yield CounterMetricFamily(
            "stage_sfu_key_frames_received_total",
            "Key frames received from publishers.",
            value=_sum(totals, lambda s: s.key_frames_received),
        )
        video = totals.of(MediaKind.VIDEO)
        yield SummaryMetricFamily(
            "stage_sfu_key_frame_wait_seconds",
            "Time from a video consumer becoming active (joined, resumed, unmuted) to the "
            "first key frame forwarded to it.",
            count_value=video.key_frame_waits,
            sum_value=video.key_frame_wait_seconds,
        )
        switches = CounterMetricFamily(
            "stage_sfu_layer_switches_total",
            "Switches of a viewer's simulcast encoding begun, up or down (each completes at "
            "the next key frame of the encoding switched to).",
            labels=["direction"],
        )
        switches.add_metric(["up"], video.layer_switches_up)
        switches.add_metric(["down"], video.layer_switches_down)
        yield switches
        pipes = CounterMetricFamily(
            "stage_sfu_pipe_rtp_packets_total",
            "RTP packets piped between workers of a room spread over several: out to the "
            "workers holding its viewers, in from the worker holding its publishers.",
            labels=["direction"],
        )
        pipes.add_metric(["out"], totals.pipes.packets_sent)
        pipes.add_metric(["in"], totals.pipes.packets_received)
        yield pipes
        yield CounterMetricFamily(
            "stage_sfu_speaking_changes_total",
            "Speaking state changes detected from RFC 6464 audio levels.",
            value=totals.speaking_changes,
        )

    def _monotonic(self, kind: MediaKind, direction: str, value: int) -> int:
        key = (kind.value, direction)
        highest = max(value, self._highest_loss.get(key, 0))
        self._highest_loss[key] = highest
        return highest

    # -- live -----------------------------------------------------------------------
    def _live(self, worker: Worker) -> Iterator[GaugeMetricFamily]:
        producers = dict.fromkeys(_KINDS, 0)
        consumers = dict.fromkeys(_KINDS, 0)
        jitter: dict[MediaKind, list[float]] = {kind: [] for kind in _KINDS}
        rtt: dict[MediaKind, list[float]] = {kind: [] for kind in _KINDS}
        loss: dict[MediaKind, list[float]] = {kind: [] for kind in _KINDS}
        transports = waiting = 0
        # Simulcast, by encoding (0 = lowest; at most MAX_LAYERS label values).
        encodings = [0] * MAX_LAYERS
        encoding_bitrate = [0] * MAX_LAYERS
        viewers_on = [0] * MAX_LAYERS
        estimates: list[float] = []  # viewers' downlink estimates (transport-cc)
        requested: list[float] = []  # what simulcast publishers are asked for (REMB)
        starved = 0
        for router in worker.routers.values():
            transports += len(router.transports)
            for transport in router.transports.values():
                downlink = getattr(transport, "downlink", None)
                if downlink is not None and downlink.feedbacks:
                    estimates.append(float(downlink.estimator.estimate_bps))
                for producer in transport.producers.values():
                    producers[producer.kind] += 1
                    stats = producer.statistics
                    if producer.packets_received and stats.clock_rate:
                        jitter[producer.kind].append(stats.jitter / stats.clock_rate)
                    if producer.simulcast:
                        if producer.requested_bitrate:
                            requested.append(float(producer.requested_bitrate))
                        for layer in producer.active_layers():
                            encodings[layer] += 1
                            encoding_bitrate[layer] += producer.streams[layer].bitrate
                for consumer in transport.consumers.values():
                    consumers[consumer.kind] += 1
                    waiting += consumer.waiting_key_frame
                    if consumer.layers > 1 and consumer.active:
                        viewers_on[consumer.layer] += 1
                    starved += consumer.starved
                    if consumer.round_trip_time is not None:
                        rtt[consumer.kind].append(consumer.round_trip_time)
                    if consumer.packets_sent:
                        loss[consumer.kind].append(consumer.fraction_lost / 256.0)

        yield GaugeMetricFamily(
            "stage_sfu_routers", "Routers (one per room) on this worker.", value=len(worker.routers)
        )
        yield GaugeMetricFamily(
            "stage_sfu_transports", "Open WebRTC transports (ICE + DTLS connections).",
            value=transports,
        )  # fmt: skip
        yield _by_kind("stage_sfu_producers", "Open producers (published streams).", producers)
        yield _by_kind("stage_sfu_consumers", "Open consumers (forwarded copies).", consumers)
        yield GaugeMetricFamily(
            "stage_sfu_consumers_waiting_for_key_frame",
            "Active video consumers still waiting for the key frame they start on.",
            value=waiting,
        )
        yield _by_layer(
            "stage_sfu_simulcast_encodings",
            "Simulcast encodings publishers are sending now, by encoding (0 = lowest).",
            encodings,
        )
        yield _by_layer(
            "stage_sfu_simulcast_bitrate_bps",
            "Bits per second received in simulcast encodings, by encoding (0 = lowest).",
            encoding_bitrate,
        )
        yield _by_layer(
            "stage_sfu_simulcast_consumers",
            "Active consumers of simulcast producers, by the encoding they forward now.",
            viewers_on,
        )
        yield GaugeMetricFamily(
            "stage_sfu_consumers_paused_for_bandwidth",
            "Video consumers paused because their viewer's downlink cannot carry them.",
            value=starved,
        )
        family = GaugeMetricFamily(
            "stage_sfu_downlink_estimate_bps",
            "Estimated downlink of viewers that send transport-cc feedback, over viewers.",
            labels=["quantile"],
        )
        ordered = sorted(estimates)
        for q in QUANTILES if ordered else ():
            family.add_metric([_label(q)], _rank(ordered, q))
        yield family
        family = GaugeMetricFamily(
            "stage_sfu_publisher_bitrate_requested_bps",
            "The bitrate simulcast publishers are asked for (REMB: what their viewers' "
            "tiles need, at most media.publisher_max_bitrate), over publishers.",
            labels=["quantile"],
        )
        ordered = sorted(requested)
        for q in QUANTILES if ordered else ():
            family.add_metric([_label(q)], _rank(ordered, q))
        yield family
        yield _quantiles(
            "stage_sfu_jitter_seconds",
            "Interarrival jitter of live published streams (RFC 3550 A.8), over streams.",
            jitter,
        )
        yield _quantiles(
            "stage_sfu_round_trip_time_seconds",
            "Round-trip time to viewers from their receiver reports, over live consumers.",
            rtt,
        )
        yield _quantiles(
            "stage_sfu_downlink_loss_ratio",
            "Fraction of packets lost toward viewers in their last receiver report (0..1), "
            "over live consumers.",
            loss,
        )


def _sum(totals: MediaTotals, value: _Getter) -> int:
    return sum(value(totals.of(kind)) for kind in _KINDS)


def _by_kind(name: str, documentation: str, counts: dict[MediaKind, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["kind"])
    for kind in _KINDS:
        family.add_metric([kind.value], counts[kind])
    return family


def _by_layer(name: str, documentation: str, values: Sequence[int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["layer"])
    for layer, value in enumerate(values):
        family.add_metric([str(layer)], value)
    return family


def _quantiles(
    name: str, documentation: str, values: dict[MediaKind, list[float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["kind", "quantile"])
    for kind in _KINDS:
        ordered = sorted(values[kind])
        if not ordered:
            continue  # no live stream of this kind: no sample rather than a made-up zero
        for q in QUANTILES:
            family.add_metric([kind.value, _label(q)], _rank(ordered, q))
    return family


def _rank(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank quantile of sorted values."""
    index = math.ceil(q * len(ordered)) - 1
    return ordered[max(0, min(len(ordered) - 1, index))]


def _label(q: float) -> str:
    return "1" if q == 1.0 else str(q)
