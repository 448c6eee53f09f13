"""Chooses the fan-out implementation: native (sfu/_fastpath.c) when it was
built, else the pure-Python reference in sfu/fanout.py. Both take the same
calls and produce byte-identical packets.

The native path queues packets per peer and sends them with one sendmmsg per
peer per event-loop iteration; `flush_soon()` schedules that flush.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Unpack

from . import fanout
from .clock import SYSTEM_CLOCK
from .native_types import (
    EgressParams,
    NativeEgress,
    NativeFanOutCore,
    NativeModule,
    RtpProtector,
    SlotInfo,
)
from .srtp import SessionKeys

logger = logging.getLogger(__name__)

_native: NativeModule | None
try:
    from . import _fastpath  # type: ignore[attr-defined]

    _native = _fastpath
except ImportError:  # not built: no compiler or no OpenSSL headers at install time
    _native = None


def native_available() -> bool:
    return _native is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class FanOutSlotSpec:
    """One consumer's stream as its viewer sees it (both fan-outs take the same)."""

    ssrc: int
    payload_type: int
    mid_element: bytes  # one-byte RFC 8285 element carrying the viewer's MID
    clock_rate: int
    initial_sequence: int
    initial_timestamp: int
    layer: int = 0  # the simulcast encoding it starts on
    urgent: bool = False  # audio: its copies never wait for the egress's pacer


class NativeFanOutSlot:
    """The same surface as fanout.FanOutSlot, backed by a slot in a native FanOut."""

    __slots__ = ("_fanout", "_id", "egress", "mid_element", "payload_type", "ssrc")

    def __init__(
        self,
        owner: NativeFanOut,
        slot_id: int,
        *,
        ssrc: int,
        payload_type: int,
        mid_element: bytes,
        egress: NativeEgress,
    ) -> None:
        self._fanout = owner
        self._id = slot_id
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.mid_element = mid_element
        self.egress = egress

    def activate(self, *, wait_for_key_frame: bool) -> None:
        self._fanout.native.activate(self._id, wait_for_key_frame)

    def deactivate(self) -> None:
        self._fanout.native.deactivate(self._id)

    def set_target_layer(self, layer: int) -> None:
        """Forward `layer` from its next key frame on (at once while nothing flows)."""
        self._fanout.native.set_target(self._id, layer)

    def set_temporal_ceiling(self, temporal_id: int) -> None:
        """Forward VP8 frames up to TID `temporal_id` only (ALL_TEMPORAL_LAYERS: all,
        the default): lower at once, higher from the next layer sync or key frame."""
        self._fanout.native.set_temporal(self._id, temporal_id)

    def output_timestamp(self, timestamp: int) -> int | None:
        return self._fanout.native.output_timestamp(self._id, timestamp)

    def input_sequence(self, out_seq: int) -> int | None:
        return self._fanout.native.input_sequence(self._id, out_seq)

    def _info(self) -> SlotInfo:
        return self._fanout.native.info(self._id)

    def counters(self) -> tuple[int, int, int, int]:
        """(packets, bytes, payload bytes, dropped) sent so far, in one native call: a
        scrape reads them for every consumer, so four calls each would stall the loop."""
        info = self._info()
        return (info[3], info[4], info[5], info[6])

    @property
    def active(self) -> bool:
        return bool(self._info()[0])

    @property
    def waiting_key_frame(self) -> bool:
        return bool(self._info()[1])

    @property
    def key_frame_at(self) -> float | None:
        return self._info()[2]

    @property
    def packets_sent(self) -> int:
        return self._info()[3]

    @property
    def bytes_sent(self) -> int:
        return self._info()[4]

    @property
    def payload_bytes_sent(self) -> int:
        return self._info()[5]

    @property
    def packets_dropped(self) -> int:
        return self._info()[6]

    @property
    def layer(self) -> int:
        return self._info()[7]

    @property
    def target_layer(self) -> int:
        return self._info()[8]

    @property
    def temporal_ceiling(self) -> int:
        return self._info()[9]

    @property
    def temporal_layer(self) -> int:
        """The highest TID forwarded now (below the ceiling until an up-switch point)."""
        return self._info()[10]

    @property
    def packets_skipped(self) -> int:
        """Packets left out for the temporal ceiling (not failures: see packets_dropped)."""
        return self._info()[11]


class NativeFanOut:
    native_path = True

    def __init__(self, *, history: int, max_age: float, layers: int = 1, vp8: bool = False) -> None:
        assert _native is not None
        self.native: NativeFanOutCore = _native.FanOut(
            history=history, max_age=max_age, layers=layers, vp8=vp8
        )
        self.slots: tuple[NativeFanOutSlot, ...] = ()

    def set_timestamp_shift(self, layer: int, shift: int | None) -> None:
        """`layer`'s timestamps plus `shift` are on the common timeline (None: unknown)."""
        self.native.set_timestamp_shift(layer, shift)

    def add_slot(self, spec: FanOutSlotSpec, egress: NativeEgress) -> NativeFanOutSlot:
        slot_id = self.native.add(egress=egress, **asdict(spec))
        slot = NativeFanOutSlot(
            self,
            slot_id,
            ssrc=spec.ssrc,
            payload_type=spec.payload_type,
            mid_element=spec.mid_element,
            egress=egress,
        )
        self.slots = (*self.slots, slot)
        return slot

    def remove(self, slot: NativeFanOutSlot) -> None:
        if slot in self.slots:
            self.native.remove(slot._id)
            self.slots = tuple(s for s in self.slots if s is not slot)

    def forward(
        self,
        data: bytes,
        payload_start: int,
        ext_body: bytes,
        keyframe: bool,
        now: float,
        layer: int = 0,
    ) -> None:
        if self.native.forward(data, payload_start, ext_body, keyframe, now, layer):
            flush_soon()

    def retransmit(self, slot: NativeFanOutSlot, out_seq: int, now: float) -> bool:
        sent = self.native.retransmit(slot._id, out_seq, now)
        if sent:
            flush_soon()
        return sent

    def close(self) -> None:
        self.native.clear()
        self.slots = ()


class PythonFanOut(fanout.FanOut):
    native_path = False

    def add_slot(self, spec: FanOutSlotSpec, egress: fanout.Egress) -> fanout.FanOutSlot:
        slot = fanout.FanOutSlot(egress=egress, **asdict(spec))
        self.add(slot)
        return slot


AnyFanOutSlot = NativeFanOutSlot | fanout.FanOutSlot
AnyFanOut = NativeFanOut | PythonFanOut
# What a transport sends its consumers' packets through: native with the native fan-out.
AnyEgress = NativeEgress | fanout.Egress


def create_fanout(
    *, native: bool, history: int, max_age: float, layers: int = 1, vp8: bool = False
) -> AnyFanOut:
    if native and _native is not None:
        return NativeFanOut(history=history, max_age=max_age, layers=layers, vp8=vp8)
    return PythonFanOut(history=history, max_age=max_age, layers=layers, vp8=vp8)


def native_egress(**params: Unpack[EgressParams]) -> NativeEgress:
    """A native sender for one peer (fd -1: capture packets, for tests); a `first` one is
    flushed before the others in each loop iteration."""
    assert _native is not None
    return _native.Egress(**params)


def rtp_protector(keys: SessionKeys) -> RtpProtector | None:
    """A native SRTP protector for one sender's keys (`protect` is byte-identical to
    SrtpSender's; `forget`, `tracked` as the native egress), or None when the extension
    was not built."""
    if _native is None:
        return None
    egress = native_egress(
        profile=str(keys.profile),
        key=keys.rtp_key,
        salt=keys.rtp_salt,
        auth_key=keys.rtp_auth,
        fd=-1,  # never sends: only its protect is used
        address=("0.0.0.0", 0),
    )
    return egress


_flush_scheduled = False
_pace_scheduled = False
# How often pacers that hold packets are given their due when nothing else flushes.
PACE_INTERVAL = 0.005
# Called after each flush: in-process receivers read their capture-mode egresses then.
_flush_listeners: list[Callable[[], None]] = []


def add_flush_listener(listener: Callable[[], None]) -> None:
    _flush_listeners.append(listener)


def remove_flush_listener(listener: Callable[[], None]) -> None:
    if listener in _flush_listeners:
        _flush_listeners.remove(listener)


def flush_soon() -> None:
    """Send every native queue at the end of this loop iteration, in one sendmmsg per peer."""
    global _flush_scheduled
    if not _flush_scheduled:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (tools, tests): send right away
            _native_flush()
            return
        _flush_scheduled = True
        loop.call_soon(_flush)


def _flush() -> None:
    global _flush_scheduled
    _flush_scheduled = False
    _native_flush()


def _native_flush() -> None:
    if _native is not None:
        _native.flush_all(SYSTEM_CLOCK.now())
        if _flush_listeners:  # only tests and benchmarks (DirectTransport) listen
            for listener in tuple(_flush_listeners):
                listener()
        if _native.paced():
            _pace_soon()


def _pace_soon() -> None:
    """Flush again in PACE_INTERVAL: some pacer holds packets the rate lets go then."""
    global _pace_scheduled
    if _pace_scheduled:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no loop: nothing will come back for them but a flush
        return
    _pace_scheduled = True
    loop.call_later(PACE_INTERVAL, _pace)


def _pace() -> None:
    global _pace_scheduled
    _pace_scheduled = False
    _native_flush()
