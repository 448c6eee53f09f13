"""Padding for probes: RTP packets that carry nothing, on a video track's RTX stream.

A probe cluster (sfu/bwe/probe.py) fills the gap between the media and the rate it
tests with packets like these. They must reach the viewer's congestion controller
and nothing else: sent on the track's own SSRC they would take sequence numbers its
decoder waits for, and a copy of a packet it already has would fail SRTP's replay
check before anything counted it. So they go, as libwebrtc sends its own padding,
on the RTX stream negotiated with the track (RFC 4588, `a=ssrc-group:FID`), with the
padding bit set and only padding as payload (RFC 3550 §5.1): the viewer counts them
in its transport-wide feedback and the RTX receiver drops them, payload-less.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from .fanout import CallableEgress

if TYPE_CHECKING:
    from .fastpath import AnyEgress
    from .native_types import NativeEgress

MAX_PADDING = 255  # RFC 3550: the last octet counts the padding, itself included


class PaddingStream:
    """One RTX stream's numbering for padding-only packets, stamped for transport-cc."""

    __slots__ = ("_mid_element", "_payload_type", "_sequence", "_ssrc", "_transport_cc_id")

    def __init__(
        self, *, ssrc: int, payload_type: int, mid_element: bytes, transport_cc_id: int
    ) -> None:
        self._ssrc = ssrc
        self._payload_type = payload_type
        self._mid_element = mid_element
        self._transport_cc_id = transport_cc_id
        self._sequence = 0

    def packet(self, timestamp: int) -> tuple[bytearray, int]:
        """The next packet (MAX_PADDING bytes of padding) and where its transport-wide
        number goes."""
        body = self._mid_element + bytes((self._transport_cc_id << 4 | 1, 0, 0))
        at = 16 + len(self._mid_element) + 1
        pad = -len(body) % 4
        sequence, self._sequence = self._sequence, (self._sequence + 1) & 0xFFFF
        packet = bytearray(
            bytes((0xB0, self._payload_type))  # V=2, P, X
            + sequence.to_bytes(2, "big")
            + (timestamp & 0xFFFFFFFF).to_bytes(4, "big")
            + self._ssrc.to_bytes(4, "big")
            + b"\xbe\xde"
            + ((len(body) + pad) // 4).to_bytes(2, "big")
            + body
            + bytes(pad)
            + bytes(MAX_PADDING - 1)
            + bytes((MAX_PADDING,))
        )
        return packet, at


def send_stamped(egress: AnyEgress, packet: bytearray, at: int, now: float) -> bool:
    """Give `packet` the next transport-wide number (at byte `at`), send it, log it."""
    if isinstance(egress, CallableEgress):
        log = egress.send_log
        if log is None:
            return False
        sequence = log.take()
        packet[at : at + 2] = sequence.to_bytes(2, "big")
        if not egress.send(bytes(packet)):
            return False
        log.record(sequence, now, len(packet))
        return True
    native = cast("NativeEgress", egress)  # the only other kind there is
    return native.send_stamped(bytes(packet), at, now)
