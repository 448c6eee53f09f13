"""Cumulative media counters: the live objects plus everything that already closed.

Producers, consumers, transports and observers count in plain ints on the hot
path; nothing here runs per packet. When one of them closes, its router folds
its counters into the worker's retired `MediaTotals` (`retire_*`), so totals
read at scrape time (`media_totals`) never go backwards when people leave.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .types import MediaKind

if TYPE_CHECKING:
    from .consumer import Consumer
    from .observers.audio_level import AudioLevelObserver
    from .producer import Producer
    from .router import Router
    from .transport import Transport


@dataclass(slots=True)
class StreamTotals:
    """Counters of one media kind: producers (ingress) and consumers (egress)."""

    # ingress, from publishers
    packets_received: int = 0  # accepted RTP packets, retransmissions included
    bytes_received: int = 0
    packets_discarded: int = 0  # unexpected payload type, padding-only probes
    packets_lost: int = 0  # gaps in sequence numbers (RFC 3550 A.3)
    retransmissions_received: int = 0
    key_frames_received: int = 0
    key_frame_requests_sent: int = 0  # PLIs sent to publishers (relayed and our own)
    nacks_sent: int = 0
    remb_raises: int = 0  # REMBs sent at once because the viewers' need went up
    # egress, to viewers
    packets_sent: int = 0
    bytes_sent: int = 0
    packets_dropped: int = 0  # could not be sent (not connected, socket full)
    packets_lost_reported: int = 0  # cumulative loss in viewers' receiver reports
    nacks_received: int = 0
    retransmissions_sent: int = 0
    retransmission_misses: int = 0  # asked for, but no longer in the history
    retransmissions_refused: int = 0  # over the viewer's repair budget, or too late
    key_frame_requests_received: int = 0  # PLI/FIR from viewers
    key_frame_requests_held: int = 0  # of those, over the viewer's own allowance
    key_frame_waits: int = 0
    key_frame_wait_seconds: float = 0.0
    layer_switches_up: int = 0  # simulcast switches begun to a higher encoding
    layer_switches_down: int = 0


@dataclass(slots=True)
class TransportTotals:
    rtp_packets_received: int = 0
    rtcp_packets_received: int = 0
    packets_malformed: int = 0
    packets_unknown_ssrc: int = 0
    packets_late: int = 0  # waited too long in a socket: dropped unread (overload)
    egress_packets_dropped: int = 0  # socket buffer over its limit, or a send error
    probe_clusters: int = 0  # toward viewers' downlinks (sfu/bwe/probe.py)
    probe_clusters_succeeded: int = 0
    padding_bytes_sent: int = 0


@dataclass(slots=True)
class PipeTotals:
    """Traffic between workers (sfu/pipe_transport.py), kept apart from viewers' and
    publishers' so that piping a stream does not count as serving it twice."""

    packets_sent: int = 0
    packets_received: int = 0
    packets_late: int = 0


@dataclass(slots=True)
class MediaTotals:
    audio: StreamTotals = field(default_factory=StreamTotals)
    video: StreamTotals = field(default_factory=StreamTotals)
    transports: TransportTotals = field(default_factory=TransportTotals)
    pipes: PipeTotals = field(default_factory=PipeTotals)
    speaking_changes: int = 0

    def of(self, kind: MediaKind) -> StreamTotals:
        return self.audio if kind == MediaKind.AUDIO else self.video

    def copy(self) -> MediaTotals:
        return MediaTotals(
            audio=replace(self.audio),
            video=replace(self.video),
            transports=replace(self.transports),
            pipes=replace(self.pipes),
            speaking_changes=self.speaking_changes,
        )


def add_producer(into: StreamTotals, producer: Producer) -> None:
    into.packets_received += producer.packets_received
    into.bytes_received += producer.bytes_received
    into.packets_discarded += producer.packets_discarded
    into.packets_lost += producer.packets_lost
    into.retransmissions_received += producer.retransmissions_received
    into.key_frames_received += producer.key_frames_received
    into.key_frame_requests_sent += producer.key_frame_requests_sent
    into.nacks_sent += producer.nacks_sent
    into.remb_raises += producer.remb_raises


def add_consumer(into: StreamTotals, consumer: Consumer) -> None:
    packets, size, _, dropped = consumer.counters()
    into.packets_sent += packets
    into.bytes_sent += size
    into.packets_dropped += dropped
    into.packets_lost_reported += consumer.packets_lost
    into.nacks_received += consumer.nacks_received
    into.retransmissions_sent += consumer.retransmissions_sent
    into.retransmission_misses += consumer.retransmission_misses
    into.retransmissions_refused += consumer.retransmissions_refused
    into.key_frame_requests_received += consumer.key_frame_requests_received
    into.key_frame_requests_held += consumer.key_frame_requests_held
    into.key_frame_waits += consumer.key_frame_waits
    into.key_frame_wait_seconds += consumer.key_frame_wait_total
    into.layer_switches_up += consumer.layer_switches_up
    into.layer_switches_down += consumer.layer_switches_down


def add_transport(into: TransportTotals, transport: Transport) -> None:
    into.rtp_packets_received += transport.rtp_packets_received
    into.rtcp_packets_received += transport.rtcp_packets_received
    into.packets_malformed += transport.packets_malformed
    into.packets_unknown_ssrc += transport.packets_unknown_ssrc
    into.packets_late += transport.packets_late
    into.egress_packets_dropped += transport.dropped_egress_packets
    sent, succeeded = transport.probe_clusters
    into.probe_clusters += sent
    into.probe_clusters_succeeded += succeeded
    into.padding_bytes_sent += transport.padding_bytes_sent


# -- called from the close paths (once per object: close() is idempotent) ----------
def retire_producer(retired: MediaTotals, producer: Producer) -> None:
    add_producer(retired.of(producer.kind), producer)


def retire_consumer(retired: MediaTotals, consumer: Consumer) -> None:
    add_consumer(retired.of(consumer.kind), consumer)


def retire_transport(retired: MediaTotals, transport: Transport) -> None:
    add_transport(retired.transports, transport)


def retire_pipe_producer(retired: MediaTotals, producer: Producer) -> None:
    retired.pipes.packets_received += producer.packets_received


def retire_pipe_consumer(retired: MediaTotals, consumer: Consumer) -> None:
    retired.pipes.packets_sent += consumer.packets_sent


def retire_pipe(retired: MediaTotals, pipe: Transport) -> None:
    retired.pipes.packets_late += pipe.packets_late


def retire_observer(retired: MediaTotals, observer: AudioLevelObserver) -> None:
    retired.speaking_changes += observer.speaking_changes


def media_totals(retired: MediaTotals, routers: Iterable[Router]) -> MediaTotals:
    """Retired totals plus every live object's counters, as of now."""
    totals = retired.copy()
    for router in routers:
        for transport in router.transports.values():
            add_transport(totals.transports, transport)
            for producer in transport.producers.values():
                add_producer(totals.of(producer.kind), producer)
            for consumer in transport.consumers.values():
                add_consumer(totals.of(consumer.kind), consumer)
        for pipe in router.pipes.values():
            retire_pipe(totals, pipe)
            for producer in pipe.producers.values():
                retire_pipe_producer(totals, producer)
            for consumer in pipe.consumers.values():
                retire_pipe_consumer(totals, consumer)
        for observer in router.observers:
            totals.speaking_changes += observer.speaking_changes
    return totals
