"""The surface of the native extension (sfu/_fastpath.c) that the Python side calls,
as Protocols.

The extension ships no stubs, so without these every call across the C boundary is
`Any` and mypy checks none of it. Each Protocol mirrors one method table in
sfu/_fastpath.c (`Egress_methods`, `FanOut_methods`, `module_methods`);
tests/contract/test_native_surface.py fails when the two drift apart.
"""

from __future__ import annotations

from typing import NotRequired, Protocol, TypedDict, Unpack


class EgressParams(TypedDict):
    """What `_fastpath.Egress` is made from: one peer's SRTP keys and where to send."""

    profile: str  # an SrtpProfile name, or "NONE" for plain RTP (pipes, capture)
    key: bytes
    salt: bytes
    auth_key: bytes
    fd: int  # the socket to share; -1 captures packets instead (tests)
    address: tuple[str, int]
    first: NotRequired[bool]  # flushed before the others (a pipe to another worker)
    # The negotiated one-byte id of transport-wide sequence numbers (1..14): every copy
    # sent is stamped and logged (sfu/rtp/send_log.py). 0 or absent: not stamped.
    transport_cc_id: NotRequired[int]


class NativeEgress(Protocol):
    """`_fastpath.Egress`: SRTP-protects and queues one peer's RTP, sent with one
    sendmmsg per flush. The native fan-out sends through it from C (it has no `send`)."""

    def protect(self, packet: bytes, /) -> bytes: ...
    # Stamps the transport-wide number at byte `at`, logs, protects and queues it.
    def send_stamped(self, packet: bytes, at: int, now: float, /) -> bool: ...
    def take_captured(self) -> list[bytes]: ...
    # Paced, sends what the rate allows by `now`; without it, everything queued.
    def flush(self, now: float = -1.0, /) -> None: ...
    def set_pacing(self, bps: float, /) -> None: ...  # 0: not paced
    def paced(self) -> tuple[int, int, int]: ...  # (packets, bytes) waiting, overdue sent
    def close(self) -> None: ...
    def stats(self) -> tuple[int, int, int]: ...  # (packets sent, bytes sent, dropped)
    def forget(self, ssrc: int, /) -> None: ...
    def tracked(self) -> int: ...
    # (send time, bytes on the wire) or None per transport-wide number from `first` on
    def sent_packets(self, first: int, count: int, /) -> list[tuple[float, int] | None]: ...


class RtpProtector(Protocol):
    """The part of a native egress used only to protect packets the Python side sends."""

    def protect(self, packet: bytes, /) -> bytes: ...
    def forget(self, ssrc: int, /) -> None: ...
    def tracked(self) -> int: ...


# (active, waiting for a key frame, key frame sent at, packets, bytes, payload bytes, dropped,
#  layer forwarded, target layer, temporal ceiling, temporal layer forwarded, packets skipped)
SlotInfo = tuple[int, int, float | None, int, int, int, int, int, int, int, int, int]


class NativeFanOutCore(Protocol):
    """`_fastpath.FanOut`: one producer's consumers, addressed by the slot id `add` returns."""

    def add(
        self,
        *,
        egress: NativeEgress,
        ssrc: int,
        payload_type: int,
        mid_element: bytes,
        clock_rate: int,
        initial_sequence: int,
        initial_timestamp: int,
        layer: int = 0,
        urgent: bool = False,
    ) -> int: ...
    def remove(self, slot_id: int, /) -> None: ...
    def activate(self, slot_id: int, wait_for_key_frame: bool, /) -> None: ...
    def deactivate(self, slot_id: int, /) -> None: ...
    def forward(
        self,
        data: bytes,
        payload_start: int,
        ext_body: bytes,
        keyframe: bool,
        now: float,
        layer: int = 0,
        /,
    ) -> int: ...  # packets queued: nonzero means a flush is due
    def set_target(self, slot_id: int, layer: int, /) -> None: ...
    def set_temporal(self, slot_id: int, temporal_id: int, /) -> None: ...
    def set_timestamp_shift(self, layer: int, shift: int | None, /) -> None: ...
    def retransmit(self, slot_id: int, out_seq: int, now: float, /) -> bool: ...
    def info(self, slot_id: int, /) -> SlotInfo: ...
    def output_timestamp(self, slot_id: int, timestamp: int, /) -> int | None: ...
    def input_sequence(self, slot_id: int, out_seq: int, /) -> int | None: ...
    def clear(self) -> None: ...


class NativeModule(Protocol):
    """The `sfu._fastpath` module itself."""

    def Egress(self, **params: Unpack[EgressParams]) -> NativeEgress: ...
    def FanOut(
        self, *, history: int, max_age: float, layers: int = 1, vp8: bool = False
    ) -> NativeFanOutCore: ...
    def flush_all(self, now: float = -1.0, /) -> int: ...
    def pending(self) -> int: ...
    def paced(self) -> int: ...
