"""Typed events the media core posts upward to one `on_event` callback per router.

The callback is called synchronously from the media path, so it must only
enqueue (e.g. `room.post`), never block or raise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .types import CloseReason, ConsumerId, ProducerId, TransportId, TransportState


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportStateChanged:
    transport_id: TransportId
    state: TransportState


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportClosed:
    transport_id: TransportId
    reason: CloseReason


@dataclass(frozen=True, slots=True, kw_only=True)
class ProducerClosed:
    producer_id: ProducerId
    reason: CloseReason


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerClosed:
    consumer_id: ConsumerId
    producer_id: ProducerId
    transport_id: TransportId  # whose consumer: found without searching every transport
    reason: CloseReason


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeakingChanged:
    """A producer's speaking state flipped (RFC 6464 levels with hysteresis)."""

    producer_id: ProducerId
    speaking: bool
    loudness_dbov: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ActiveSpeakerChanged:
    """The loudest sustained speaker changed; None when everyone fell silent."""

    producer_id: ProducerId | None


SfuEvent = (
    TransportStateChanged
    | TransportClosed
    | ProducerClosed
    | ConsumerClosed
    | SpeakingChanged
    | ActiveSpeakerChanged
)
EventSink = Callable[[SfuEvent], None]
