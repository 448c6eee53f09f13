"""Identifiers and small value types shared by the whole media core."""

from __future__ import annotations

import random
from collections.abc import Container
from enum import StrEnum
from typing import NewType

RouterId = NewType("RouterId", str)
TransportId = NewType("TransportId", str)
ProducerId = NewType("ProducerId", str)
ConsumerId = NewType("ConsumerId", str)
ObserverId = NewType("ObserverId", str)
Mid = NewType("Mid", str)
Ssrc = NewType("Ssrc", int)


def new_ssrc(taken: Container[int]) -> int:
    """A random non-zero SSRC not in `taken` (RFC 3550 §8: chosen at random)."""
    while True:
        ssrc = random.getrandbits(32)
        if ssrc and ssrc not in taken:
            return ssrc


class MediaKind(StrEnum):
    AUDIO = "audio"
    VIDEO = "video"


class MediaSource(StrEnum):
    """What a producer carries, as the control plane names it."""

    MICROPHONE = "microphone"
    CAMERA = "camera"
    SCREEN = "screen"
    SCREEN_AUDIO = "screen_audio"


class CloseReason(StrEnum):
    REQUESTED = "requested"
    PRODUCER_CLOSED = "producer_closed"
    TRANSPORT_CLOSED = "transport_closed"
    ROUTER_CLOSED = "router_closed"
    WORKER_CLOSED = "worker_closed"
    CONNECTION_FAILED = "connection_failed"
    REJECTED_BY_PEER = "rejected_by_peer"  # the viewer's answer refused the m-section


class TransportState(StrEnum):
    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    FAILED = "failed"
    CLOSED = "closed"
