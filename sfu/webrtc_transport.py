"""WebRtcTransport: one BUNDLEd ICE + DTLS-SRTP connection with our own SDP.

Two negotiation flows, as browsers and LiveKit/mediasoup clients use them:

* publish (the client offers): `apply_offer()` answers and creates one
  producer per sending m-section;
* subscribe (we offer): `consume()` adds consumers, `create_offer()` describes
  them all, `apply_answer()` completes it. Consumers flow once their m-section
  is answered and the transport is connected.

The ICE/DTLS work runs in an owned background task; every public method here
works synchronously, so the control plane never interleaves around an await.
`apply_answer()` is a coroutine only so that it is called like the answer to a
connection on another worker, which must wait for that worker; it never awaits.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Unpack, cast

from . import fastpath, ortc, sdp, sdp_transport
from .aiortc_bridge import Certificate, PeerConnection, RemoteEndpoint
from .bwe.probe import Cluster
from .consumer import Consumer
from .downlink import Downlink
from .errors import InvalidStateError, NegotiationError
from .events import TransportStateChanged
from .fanout import CallableEgress
from .layer_report import ReceiveReport, receive_report
from .padding import PaddingStream, send_stamped
from .producer import Producer
from .rtp.header import RtpPacketView
from .rtp.send_log import SendLog
from .rtp_parameters import URI_MID, URI_TRANSPORT_CC, ReceiveParameters
from .tasks import TaskSet
from .transport import Transport, TransportArgs
from .types import (
    CloseReason,
    MediaKind,
    Mid,
    ProducerId,
    TransportState,
    new_ssrc,
)

if TYPE_CHECKING:
    from .native_types import NativeEgress

logger = logging.getLogger(__name__)

# How often a probe's padding is topped up: a 250 ms cluster in ~50 steps.
_PADDING_STEP = 0.005


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishResult:
    answer: str
    added: tuple[Producer, ...]
    removed: tuple[ProducerId, ...]


@dataclass(slots=True)
class _Slot:
    """One m-section of our offers to the viewer."""

    mid: Mid
    kind: MediaKind
    codec: sdp.Codec
    consumer: Consumer | None
    stream_id: str
    track_id: str
    answered: bool = False
    offered_closed: bool = False  # in an offer with port 0 (rejected)
    # An offer with it closed was answered: the m-section is rejected for good (JSEP,
    # RFC 8829 §5.3.1: a rejected offer's section is rejected in the answer, whatever
    # the answerer writes), so a new track may take it under a new mid (§5.2.2).
    recyclable: bool = False
    recycled: _Slot | None = None  # the ended m-section this one took the place of
    # Video: the RTX stream offered with it, and once the viewer's answer kept it, the
    # padding-only packets probes send there (one numbering for the SSRC's lifetime).
    rtx: sdp.Codec | None = None
    rtx_ssrc: int | None = None
    padding: PaddingStream | None = None


class WebRtcTransport(Transport):
    def __init__(
        self,
        *,
        stream_id: str,
        certificate: Certificate,
        tasks: TaskSet,
        **common: Unpack[TransportArgs],
    ) -> None:
        super().__init__(**common)
        self.stream_id = stream_id
        self.state = TransportState.NEW
        self._tasks = tasks
        # The pure-Python path (native_fastpath off) stays pure Python end to end.
        self._peer = PeerConnection(certificate, native_srtp=self._options.media.native_fastpath)
        self._peer.on_rtp = self._on_rtp
        self._peer.on_rtcp = self._on_rtcp
        self._peer.on_state = self._on_peer_state
        self._session_id = random.getrandbits(62)
        self._session_version = 0
        self._remote_known = False
        # publish side
        self._producers_by_mid: dict[Mid, Producer] = {}
        self._mid_extension_id: int | None = None
        # subscribe side
        self._slots: list[_Slot] = []
        # SSRCs of closed consumers: their SRTP packet index was dropped, so sending
        # them again with these keys would reuse keystream (RFC 3711 §9.1).
        self._retired_ssrcs: set[int] = set()
        self._next_mid = 0
        self._offer_pending = False
        self._offered: set[Mid] = set()
        # Whether RTP to the viewer carries transport-wide sequence numbers: decided by
        # the first answer, before anything is sent (None until then).
        self._transport_cc: bool | None = None
        self.downlink: Downlink | None = None  # with transport-cc: the viewer's estimate
        self._padding_bytes = 0
        self._probes_before_close = (0, 0)

    async def gather(self) -> None:
        network = self._options.network
        await self._peer.gather(
            network.ice_addresses,
            port_min=network.port_min,
            port_max=network.port_max,
            announced_address=network.announced_address,
            egress_buffer_limit=network.egress_buffer_limit,
            max_ingress_delay=self._options.media.max_ingress_delay,
        )

    @property
    def offer_pending(self) -> bool:
        return self._offer_pending

    @property
    def srtp_profile(self) -> str:
        return self._peer.srtp_profile

    @property
    def transport_cc(self) -> bool:
        """Whether every RTP packet sent to the viewer carries a transport-wide sequence
        number (`sent_packet` knows each one): the viewer's first answer kept the
        extension our offers carry. Chromium's does; aiortc's does not."""
        return bool(self._transport_cc)

    @property
    def probe_clusters(self) -> tuple[int, int]:
        downlink = self.downlink
        if downlink is None:
            return self._probes_before_close
        return (downlink.prober.probes, downlink.prober.probes_succeeded)

    def receive_report(self) -> ReceiveReport:
        """What this connection forwards to the viewer now, and why no more."""
        return receive_report(self.consumers.values(), self.downlink)

    @property
    def padding_bytes_sent(self) -> int:
        return self._padding_bytes

    @property
    def packets_late(self) -> int:
        return self._peer.packets_late

    @property
    def dropped_egress_packets(self) -> int:
        return self._peer.dropped_egress + super().dropped_egress_packets

    @property
    def tracked_ssrcs(self) -> int:
        """Outgoing SSRCs holding SRTP state (native egress or the Python sender):
        the streams open now, not every stream this connection ever carried."""
        egress = self._egress
        native = egress.tracked() if egress is not None and hasattr(egress, "tracked") else 0
        return max(native, self._peer.tracked_ssrcs)

    # -- publish: the client offers -------------------------------------------
    def apply_offer(
        self, offer_sdp: str, *, admit: Callable[[Mid, MediaKind], None] | None = None
    ) -> PublishResult:
        """Answer a client's offer; producers are created for new sending m-sections.

        `admit(mid, kind)` is asked about every new sending m-section before
        anything changes; whatever it raises refuses the whole offer (this is
        where the control plane enforces who may publish what). Raises
        NegotiationError (nothing changes) for SDP we cannot accept.
        """
        self._check_open()
        if self._slots:
            raise InvalidStateError("transport is used for subscribing; it cannot take offers")
        offer = sdp.parse(offer_sdp)
        remote = self._remote_endpoint(offer, dtls_server=True)
        sections: list[sdp.MediaSection] = []
        new_parameters = []
        seen: set[Mid] = set()
        for section in offer.media:
            answered, parameters = ortc.answer_publish_section(section)
            if answered.port and section.mid not in offer.bundle_mids:
                raise NegotiationError(f"m-section {section.mid} is not in the BUNDLE group")
            if answered.port and not section.rtcp_mux:
                raise NegotiationError(f"m-section {section.mid} does not offer rtcp-mux")
            sections.append(answered)
            if parameters is None:
                continue
            seen.add(parameters.mid)
            existing = self._producers_by_mid.get(parameters.mid)
            if existing is None:
                new_parameters.append(parameters)
            elif existing.parameters.codec.payload_type != parameters.codec.payload_type:
                raise NegotiationError(f"m-section {parameters.mid} changed codec")
            elif existing.parameters.rids != parameters.rids:
                # A sender's encodings are fixed when its transceiver is created (RFC 8829
                # §5.2.1): a change here means a different sender reusing the mid.
                raise NegotiationError(f"m-section {parameters.mid} changed its encodings")
        mid_ids = {
            ext_id
            for section in offer.media
            if section.port and (ext_id := section.extension_id(URI_MID)) is not None
        }
        if len(mid_ids) > 1:
            raise NegotiationError("the MID extension must use one id across the BUNDLE group")
        if admit is not None:
            for parameters in new_parameters:
                admit(parameters.mid, parameters.kind)
        # Validation done: from here on, apply.
        self._mid_extension_id = next(iter(mid_ids), None)
        removed = [p.id for mid, p in self._producers_by_mid.items() if mid not in seen]
        for producer_id in removed:
            self.producers[producer_id].close()
        added = tuple(self._create_producer(parameters) for parameters in new_parameters)
        answer = self._description(
            sections,
            setup=sdp.Setup.PASSIVE if remote.dtls_server else sdp.Setup.ACTIVE,
        )
        self._peer.set_ice_role(controlling=False)  # they offered
        self._start(remote)
        return PublishResult(answer=sdp.serialize(answer), added=added, removed=tuple(removed))

    def _create_producer(self, parameters: ReceiveParameters) -> Producer:
        producer = self._new_producer(
            producer_id=ProducerId(uuid.uuid4().hex),
            parameters=parameters,
            stream_id=self.stream_id,
            track_id=uuid.uuid4().hex,
            send_rtcp=self._peer.send_rtcp,
        )
        self._producers_by_mid[parameters.mid] = producer
        return producer

    def _producer_closed(self, producer: Producer) -> None:
        self._producers_by_mid.pop(producer.parameters.mid, None)
        super()._producer_closed(producer)

    # -- subscribe: we offer --------------------------------------------------
    def consume(self, producer: Producer, *, paused: bool = False) -> Consumer:
        """A consumer of `producer` on this transport; it flows after the next answer."""
        self._check_open()
        if self._producers_by_mid:
            raise InvalidStateError("transport is used for publishing; it cannot consume")
        mid = Mid(str(self._next_mid))
        codec = ortc.consumer_codec(producer.parameters.codec)
        taken = self._consumers_by_ssrc.keys() | self._retired_ssrcs | self._rtx_ssrcs()
        ssrc = new_ssrc(taken)
        rtx = ortc.consumer_rtx_codec(codec)
        consumer = self._new_consumer(
            producer,
            codec=codec,
            ssrc=ssrc,
            mid=mid,
            mid_extension_id=ortc.EXTENSION_IDS[URI_MID],
            send_rtcp=self._peer.send_rtcp,
            paused=paused,
        )
        self._next_mid += 1
        slot = _Slot(
            mid=mid,
            kind=producer.kind,
            codec=codec,
            consumer=consumer,
            stream_id=producer.stream_id,
            track_id=producer.track_id,
            rtx=rtx,
            rtx_ssrc=new_ssrc(taken | {ssrc}) if rtx is not None else None,
        )
        # Reuse an ended m-section, as browsers and mediasoup-client do: the offer's size
        # follows what is forwarded now, not every track this viewer ever saw.
        index = next((i for i, old in enumerate(self._slots) if old.recyclable), None)
        if index is None:
            self._slots.append(slot)
        else:
            slot.recycled = self._slots[index]
            self._slots[index] = slot
        return consumer

    def _rtx_ssrcs(self) -> set[int]:
        return {slot.rtx_ssrc for slot in self._slots if slot.rtx_ssrc is not None}

    def _open_egress(self) -> fastpath.AnyEgress | None:
        """Once connected: one native sender sharing the socket (batched sendmmsg), or
        the Python path."""
        if self.state != TransportState.CONNECTED:
            return None
        keys = self._peer.srtp_keys
        fd, address = self._peer.socket_fd, self._peer.remote_address
        stamp_id = ortc.EXTENSION_IDS[URI_TRANSPORT_CC] if self._transport_cc else 0
        if self._native_egress and keys is not None and fd is not None and address is not None:
            return fastpath.native_egress(
                profile=str(keys.profile),
                key=keys.rtp_key,
                salt=keys.rtp_salt,
                auth_key=keys.rtp_auth,
                fd=fd,
                address=(str(address[0]), int(address[1])),
                transport_cc_id=stamp_id,
            )
        overhead = keys.profile.rtp_overhead if keys is not None else 0
        log = SendLog(stamp_id, overhead=overhead) if stamp_id else None
        return CallableEgress(self._peer.send_rtp, log)

    def _consumer_closed(self, consumer: Consumer) -> None:
        self._retired_ssrcs.add(consumer.ssrc)
        self._peer.forget_ssrc(consumer.ssrc)
        for index, slot in enumerate(self._slots):
            if slot.consumer is consumer:
                slot.consumer = None
                if slot.rtx_ssrc is not None:  # never sent again: as the media SSRC
                    self._retired_ssrcs.add(slot.rtx_ssrc)
                    self._peer.forget_ssrc(slot.rtx_ssrc)
                    if self._egress is not None and hasattr(self._egress, "forget"):
                        self._egress.forget(slot.rtx_ssrc)
                if slot.mid not in self._offered:  # never offered: the peer never saw it
                    self._forget_unoffered(index, slot)
                break
        super()._consumer_closed(consumer)

    def _forget_unoffered(self, index: int, slot: _Slot) -> None:
        """A track that ended before any offer carried it leaves no trace: a recycled
        m-section gets its ended predecessor back (browsers accept a new mid there only
        for a section that is not rejected), an appended one goes (it is the last)."""
        if slot.recycled is not None:
            self._slots[index] = slot.recycled
        elif index == len(self._slots) - 1 and index > 0:
            self._slots.pop()

    def create_offer(self) -> str:
        """An offer describing every consumer (closed ones as rejected m-sections).

        The first m-section is the BUNDLE tag (RFC 8843 §7.2.1): it is never
        rejected, only made inactive, so the bundle and its transport survive
        even when nothing is left to send (browsers with max-bundle refuse an
        offer without a BUNDLE group).
        """
        self._check_open()
        if self._producers_by_mid:
            raise InvalidStateError("transport is used for publishing; it cannot offer")
        if self._offer_pending:
            raise InvalidStateError("an offer is already waiting for its answer")
        if not self._slots:
            raise InvalidStateError("nothing to offer: no consumers")
        sections = []
        for index, slot in enumerate(self._slots):
            consumer = slot.consumer
            if consumer is None:
                slot.offered_closed = index > 0
                sections.append(
                    sdp.MediaSection(
                        kind=slot.kind,
                        port=9 if index == 0 else 0,
                        mid=slot.mid,
                        direction=sdp.Direction.INACTIVE,
                        codecs=(slot.codec,),
                        extensions=ortc.consumer_extensions(slot.kind) if index == 0 else (),
                        rtcp_mux=index == 0,
                    )
                )
                continue
            sections.append(
                sdp.MediaSection(
                    kind=slot.kind,
                    port=9,
                    mid=slot.mid,
                    direction=sdp.Direction.SENDONLY,
                    codecs=(slot.codec, slot.rtx) if slot.rtx is not None else (slot.codec,),
                    extensions=ortc.consumer_extensions(slot.kind),
                    ssrcs=(consumer.ssrc, slot.rtx_ssrc)
                    if slot.rtx_ssrc is not None
                    else (consumer.ssrc,),
                    ssrc_groups=(("FID", (consumer.ssrc, slot.rtx_ssrc)),)
                    if slot.rtx_ssrc is not None
                    else (),
                    cname=consumer.cname,
                    msid=f"{slot.stream_id} {slot.track_id}",
                    rtcp_mux=True,
                    rtcp_rsize=True,
                )
            )
        self._offer_pending = True
        self._offered = {slot.mid for slot in self._slots}
        self._peer.set_ice_role(controlling=True)  # we offer
        return sdp.serialize(self._description(sections, setup=sdp.Setup.ACTPASS))

    async def apply_answer(self, answer_sdp: str) -> None:
        """Complete our last offer. Raises NegotiationError (nothing changes) on a bad answer."""
        self._check_open()
        if not self._offer_pending:
            raise InvalidStateError("no offer is waiting for an answer")
        answer = sdp.parse(answer_sdp)
        by_mid = {section.mid: section for section in answer.media}
        # Consumers added since the offer went out wait for the next one.
        offered = [slot for slot in self._slots if slot.mid in self._offered]
        for slot in offered:
            if slot.mid not in by_mid:
                raise NegotiationError(f"the answer has no m-section for mid {slot.mid}")
        remote = self._remote_endpoint(answer, dtls_server=None)
        self._offer_pending = False
        if self._transport_cc is None:
            self._transport_cc = ortc.answer_keeps_transport_cc(
                by_mid[slot.mid] for slot in offered
            )
            if self._transport_cc and self._options.media.downlink_estimation:
                # The viewer reports what arrived: estimate its downlink, divide it.
                self.downlink = Downlink(
                    consumers=self.consumers.values,
                    sent_packet=self.sent_packet,
                    start_probe=self._start_probe,
                    set_pacing=self._set_pacing,
                    pacer_backlog=self._pacer_backlog,
                )
                self.on_transport_feedback = self.downlink.on_transport_feedback
        for slot in offered:
            section = by_mid[slot.mid]
            if slot.consumer is not None and section.rejected:
                slot.consumer.close(CloseReason.REJECTED_BY_PEER)
            rtx_kept = slot.rtx is not None and ortc.answer_keeps_rtx(section, slot.rtx)
            if rtx_kept and slot.padding is None and slot.consumer is not None:
                assert slot.rtx is not None and slot.rtx_ssrc is not None
                slot.padding = PaddingStream(
                    ssrc=slot.rtx_ssrc,
                    payload_type=slot.rtx.payload_type,
                    mid_element=slot.consumer.mid_element,
                    transport_cc_id=ortc.EXTENSION_IDS[URI_TRANSPORT_CC],
                )
            # The BUNDLE tag (index 0) is offered inactive, never closed: never recycled.
            slot.recyclable = slot.offered_closed
            slot.answered = True
        if self.downlink is not None:
            # Tracks about to start get a share of the estimate before their first
            # packet, not whatever they would forward until the next division.
            self.downlink.allocate(self._clock.now())
        self._start(remote)
        self._mark_ready()

    # -- probing the viewer's downlink ------------------------------------------------
    def _pacer_backlog(self) -> int:
        """Bytes the egress's pacer holds (0 on the Python send path)."""
        if self._egress is None or isinstance(self._egress, CallableEgress):
            return 0
        return cast("NativeEgress", self._egress).paced()[1]

    def _set_pacing(self, bps: int) -> None:
        """Pace the viewer's packets at `bps` (the native egress only: the Python send
        path, a fallback and a reference, sends as packets come)."""
        if self._egress is None or isinstance(self._egress, CallableEgress):
            return
        egress = cast("NativeEgress", self._egress)  # the only other kind there is
        egress.set_pacing(bps)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("transport %s: pacing at %d, holding %s, sent %s", self.id, bps,
                         egress.paced(), egress.stats())  # fmt: skip

    def _start_probe(self, cluster: Cluster, padding_bps: int) -> bool:
        """Pad for `cluster` on the RTX stream of one of the viewer's video tracks; False
        when there is none (or nothing to pad)."""
        # Paused tracks too: their RTX stream stays negotiated, and a viewer whose video
        # is all paused for bandwidth is the one that must probe.
        stream = next(
            (
                s.padding
                for s in self._slots
                if s.padding is not None and s.consumer is not None and s.consumer.ready
            ),
            None,
        )
        if self._egress is None or stream is None or padding_bps <= 0:
            return False
        self._tasks.spawn(self._pad(cluster, padding_bps, stream), name=f"probe-{self.id}")
        return True

    async def _pad(self, cluster: Cluster, bps: int, stream: PaddingStream) -> None:
        """Send `bps` of padding from now to the cluster's end, in small steps."""
        sent = 0
        while not self.closed:
            now = self._clock.now()
            if now >= cluster.end:
                return
            owed = bps * (now - cluster.start) / 8 - sent
            egress = self._egress
            while owed > 0 and egress is not None:
                packet, at = stream.packet(0)
                if not send_stamped(egress, packet, at, now):
                    return
                sent += len(packet)
                owed -= len(packet)
                self._padding_bytes += len(packet)
            fastpath.flush_soon()
            await asyncio.sleep(_PADDING_STEP)

    def _mark_ready(self) -> None:
        if self.state != TransportState.CONNECTED:
            return
        for slot in self._slots:
            if slot.answered and slot.consumer is not None:
                slot.consumer.set_ready()

    # -- negotiation helpers --------------------------------------------------
    def _remote_endpoint(
        self, desc: sdp.SessionDescription, *, dtls_server: bool | None
    ) -> RemoteEndpoint:
        """ICE/DTLS parameters of the peer; `dtls_server=None` derives our role from its setup."""
        transport = desc.transport_parameters()
        if not self._remote_known and not transport.candidates:
            raise NegotiationError(
                "the SDP carries no ICE candidates; gather before sending it "
                "(trickled candidates are not supported)"
            )
        if dtls_server is None:  # the peer answered our actpass
            we_serve = sdp_transport.serves_dtls_after_answer(transport.setup)
        else:  # the peer offered: we take the role it leaves us
            we_serve = transport.setup != sdp.Setup.PASSIVE
        return sdp_transport.remote_endpoint(transport, dtls_server=we_serve)

    def _description(
        self, sections: list[sdp.MediaSection], *, setup: sdp.Setup
    ) -> sdp.SessionDescription:
        self._session_version += 1
        return sdp_transport.describe(
            sections,
            self._peer,
            setup=setup,
            session_id=self._session_id,
            session_version=self._session_version,
        )

    def _start(self, remote: RemoteEndpoint) -> None:
        if self._remote_known:
            return  # renegotiation keeps the connection (no ICE restart yet)
        self._remote_known = True
        self._tasks.spawn(self._connect(remote), name=f"transport-{self.id}")

    async def _connect(self, remote: RemoteEndpoint) -> None:
        self._set_state(TransportState.CONNECTING)
        connected = await self._peer.connect(remote)
        if self.closed:
            return
        if not connected:
            self.close(CloseReason.CONNECTION_FAILED)
            return
        logger.debug("- transport %s connected (%s)", self.id, self._peer.srtp_profile)
        self._set_state(TransportState.CONNECTED)
        self._mark_ready()

    # -- ingress ------------------------------------------------------------
    def _learn_ssrc(self, view: RtpPacketView) -> Producer | None:
        """RFC 8843 §9.2: an unsignalled SSRC is bound through the MID extension."""
        if self._mid_extension_id is None:
            return None
        value = view.extension(self._mid_extension_id)
        if not value:
            return None
        producer = self._producers_by_mid.get(Mid(value.decode("ascii", "replace")))
        if producer is None:
            return None
        if not producer.learn_ssrc(view):
            return None
        self._producers_by_ssrc[view.ssrc] = producer
        return producer

    # -- lifecycle ------------------------------------------------------------
    def _on_peer_state(self, state: str) -> None:
        if state in ("failed", "closed") and not self.closed and self.state == "connected":
            self.close(CloseReason.CONNECTION_FAILED)

    def _release(self) -> None:
        self._set_state(TransportState.CLOSED)
        self.on_transport_feedback = None  # the downlink holds our send log: a cycle
        self._probes_before_close = self.probe_clusters
        self.downlink = None
        # The peer's callbacks are the only way back from it to us: dropping them lets
        # reference counting free this connection's whole graph (ICE, DTLS, OpenSSL)
        # as soon as the peer's close finishes, instead of at the next full collection.
        self._peer.detach()
        self._tasks.spawn(self._peer.close(), name=f"transport-{self.id}-close")

    def _set_state(self, state: TransportState) -> None:
        if state != self.state:
            self.state = state
            self._on_event(TransportStateChanged(transport_id=self.id, state=state))
