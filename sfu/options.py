"""Validated, immutable options for the media core's objects."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .observers.speaking import SpeakingOptions


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkOptions:
    """Where transports bind and what they announce.

    `announced_address` replaces the bound address in ICE candidates, for
    servers behind 1:1 NAT; `egress_buffer_limit` is how many bytes may wait
    in a socket's user-space buffer before packets to that peer are dropped.
    """

    ice_addresses: tuple[str, ...] = ("127.0.0.1",)
    announced_address: str | None = None
    port_min: int = 40000
    port_max: int = 49999
    egress_buffer_limit: int = 262144

    def __post_init__(self) -> None:
        if not self.ice_addresses:
            raise ValueError("ice_addresses: at least one address is required")
        for address in self.ice_addresses:
            ipaddress.ip_address(address)  # raises ValueError naming the address
        if not 1024 <= self.port_min <= self.port_max <= 65535:
            raise ValueError(
                f"port range: need 1024 <= port_min <= port_max <= 65535, "
                f"got {self.port_min}-{self.port_max}"
            )
        if self.egress_buffer_limit < 0:
            raise ValueError("egress_buffer_limit: must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaOptions:
    """Forwarding policy shared by every router of a worker."""

    retransmission_buffer: int = 1024
    retransmission_max_age: float = 2.0
    key_frame_min_interval: float = 1.0
    publisher_max_bitrate: int = 3_000_000
    speaking: SpeakingOptions = field(default_factory=SpeakingOptions)
    audio_level_interval: float = 0.1
    decode_fallback: bool = False
    native_fastpath: bool = True  # use sfu/_fastpath.c when it was built
    # Incoming RTP that waited longer than this in a socket is dropped unread (0: never).
    max_ingress_delay: float = 0.5
    # Estimate each transport-cc viewer's downlink and fit its tracks into it (sfu/downlink.py).
    downlink_estimation: bool = False

    def __post_init__(self) -> None:
        if self.retransmission_buffer < 16:
            raise ValueError("retransmission_buffer: must be >= 16 packets")
        if self.retransmission_max_age <= 0:
            raise ValueError("retransmission_max_age: must be > 0")
        if self.key_frame_min_interval < 0:
            raise ValueError("key_frame_min_interval: must be >= 0")
        if self.publisher_max_bitrate < 30_000:
            raise ValueError("publisher_max_bitrate: must be >= 30000 bits/s")
        if self.max_ingress_delay < 0:
            raise ValueError("max_ingress_delay: must be >= 0")
        if self.audio_level_interval <= 0:
            raise ValueError("audio_level_interval: must be > 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    network: NetworkOptions = field(default_factory=NetworkOptions)
    media: MediaOptions = field(default_factory=MediaOptions)
