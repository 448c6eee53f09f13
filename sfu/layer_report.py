"""What a viewer's connection forwards now, and why no more: a snapshot for the viewer's
own statistics (the web client's "stats for nerds").

Read from the consumers' state on request, never per packet. Each video consumer says
which encoding flows (`layer`), which one it is headed for (`target_layer`, reached at
that encoding's next key frame), its VP8 temporal layer, how many switches it began,
and the first reason that holds it below the publisher's best (`Limit`); the viewer's
downlink estimate comes with them when the connection has one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from .consumer import Consumer
from .downlink import Downlink
from .rtp.temporal import ALL_TEMPORAL_LAYERS
from .types import MediaKind, ProducerId


class Limit(StrEnum):
    """Why a consumer forwards less than the best the publisher sends; the first that
    holds, in this order."""

    HIDDEN = "hidden"  # the viewer shows no tile for it: nothing is forwarded
    PAUSED = "paused"  # the publisher's track is paused (device off, or not allowed now)
    CONNECTING = "connecting"  # the connection or its negotiation is not complete yet
    BANDWIDTH_PAUSED = "bandwidth_paused"  # the downlink carries not even its lowest option
    KEY_FRAME = "key_frame"  # waiting for a key frame, to start or to switch up
    PUBLISHER = "publisher"  # the publisher does not send the encoding that is wanted
    BANDWIDTH = "bandwidth"  # a lower encoding, or fewer frames, to fit the downlink
    TILE_SIZE = "tile_size"  # the tile is small: a smaller encoding fills it


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerReport:
    """One consumer, as the viewer's statistics show it. `temporal_layer` is None when
    the encoding forwarded has no temporal layers (or it is audio); `limit` None when
    nothing holds it back."""

    producer_id: ProducerId
    kind: MediaKind
    layer: int
    target_layer: int
    temporal_layer: int | None
    limit: Limit | None
    layer_switches: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiveReport:
    """A viewer's connection: its downlink estimate in bit/s (None without one: estimation
    off, no transport-cc, or no feedback yet) and its consumers, in the order created."""

    downlink_bps: int | None
    consumers: tuple[ConsumerReport, ...]


def receive_report(consumers: Iterable[Consumer], downlink: Downlink | None) -> ReceiveReport:
    estimate = None
    if downlink is not None and downlink.feedbacks:
        estimate = int(downlink.estimator.estimate_bps)
    return ReceiveReport(
        downlink_bps=estimate,
        consumers=tuple(consumer_report(c) for c in consumers if not c.closed),
    )


def consumer_report(consumer: Consumer) -> ConsumerReport:
    return ConsumerReport(
        producer_id=consumer.producer_id,
        kind=consumer.kind,
        layer=consumer.layer,
        target_layer=consumer.target_layer,
        temporal_layer=temporal_layer(consumer),
        limit=limit(consumer),
        layer_switches=consumer.layer_switches,
    )


def temporal_layer(consumer: Consumer) -> int | None:
    """The highest temporal layer forwarded of those the current encoding has."""
    streams = consumer.streams
    layer = consumer.layer
    if consumer.kind != MediaKind.VIDEO or layer >= len(streams):
        return None
    measured = len(streams[layer].temporal_bitrates)  # one rate per layer; none: none
    if not measured:
        return None
    return min(consumer.temporal_layer, measured - 1)


def limit(consumer: Consumer) -> Limit | None:
    """The first reason (in `Limit`'s order) that holds the consumer below the best."""
    if consumer.hidden:
        return Limit.HIDDEN
    if consumer.paused or consumer.producer_paused:
        return Limit.PAUSED
    if not consumer.ready:
        return Limit.CONNECTING
    if consumer.starved:
        return Limit.BANDWIDTH_PAUSED
    if consumer.kind != MediaKind.VIDEO:
        return None
    target = consumer.target_layer
    if consumer.waiting_key_frame or consumer.layer < target:
        return Limit.KEY_FRAME
    top = consumer.layers - 1
    bandwidth = consumer.bandwidth_layer
    fewer_frames = consumer.bandwidth_temporal < ALL_TEMPORAL_LAYERS and (
        temporal_layer(consumer) is not None
    )
    if target >= top:
        return Limit.BANDWIDTH if fewer_frames else None
    preferred = consumer.preferred_layer
    by_bandwidth = bandwidth is not None and bandwidth < preferred
    wanted = bandwidth if bandwidth is not None and by_bandwidth else preferred
    if target < wanted:  # the encoding wanted is not sent: the best one below it is
        return Limit.PUBLISHER
    if fewer_frames or by_bandwidth:
        return Limit.BANDWIDTH
    if preferred < top:
        return Limit.TILE_SIZE
    return None
