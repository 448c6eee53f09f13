"""Identifiers and small value types shared by the whole media core."""

from __future__ import annotations

import random
from collections.abc import Callable, Container
from enum import StrEnum
from typing import NewType

RouterId = NewType("RouterId", str)
TransportId = NewType("TransportId", str)
ProducerId = NewType("ProducerId", str)
ConsumerId = NewType("ConsumerId", str)
ObserverId = NewType("ObserverId", str)
Mid = NewType("Mid", str)
Ssrc = NewType("Ssrc", int)

# Where a producer hands what it reads off each packet (an observer sets these, the
# producer calls them from the hot path): the RFC 6464 level in -dBov with its arrival
# time, or, for publishers without levels, the payload to decode.
LevelTap = Callable[[ProducerId, int, float], None]
PayloadTap = Callable[[bytes, float], None]


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
