"""Where incoming RTCP goes, for every kind of transport: sender reports to the
producer they describe, feedback (NACK, PLI, FIR) and report blocks to the
consumer whose SSRC they name, transport-wide feedback to the transport (it
reports on every stream the transport sends). Unknown SSRCs are ignored
(RFC 3550 §6.1)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .rtp import rtcp

if TYPE_CHECKING:
    from .consumer import Consumer
    from .producer import Producer


def route_rtcp(
    data: bytes,
    producers: Mapping[int, Producer],
    consumers: Mapping[int, Consumer],
    transport_feedback: Callable[[bytes], None] | None = None,
) -> rtcp.Remb | None:
    """Deliver one compound RTCP packet; returns the REMB it carried, if any.

    Each transport-wide feedback message (RTPFB FMT 15, draft-holmer-rmcat-
    transport-wide-cc-extensions-01 §3.1) goes to `transport_feedback` as its FCI,
    unparsed, whatever SSRC it names."""
    remb = None
    for packet in rtcp.parse_compound(data):
        if isinstance(packet, rtcp.SenderReport):
            producer = producers.get(packet.ssrc)
            if producer is not None:
                producer.receive_sender_report(packet)
            _route_report_blocks(packet.reports, consumers)
        elif isinstance(packet, rtcp.ReceiverReport):
            _route_report_blocks(packet.reports, consumers)
        elif isinstance(packet, rtcp.GenericNack):
            consumer = consumers.get(packet.media_ssrc)
            if consumer is not None:
                consumer.receive_nack(packet.lost)
        elif isinstance(packet, rtcp.PictureLossIndication):
            consumer = consumers.get(packet.media_ssrc)
            if consumer is not None:
                consumer.receive_key_frame_request()
        elif isinstance(packet, rtcp.FullIntraRequest):
            for ssrc, _ in packet.entries:
                consumer = consumers.get(ssrc)
                if consumer is not None:
                    consumer.receive_key_frame_request()
        elif isinstance(packet, rtcp.Remb):
            remb = packet
        elif isinstance(packet, rtcp.TransportFeedbackRaw) and transport_feedback is not None:
            transport_feedback(packet.fci)
    return remb


def _route_report_blocks(
    blocks: tuple[rtcp.ReportBlock, ...], consumers: Mapping[int, Consumer]
) -> None:
    for block in blocks:
        consumer = consumers.get(block.ssrc)
        if consumer is not None:
            consumer.receive_report(block)
