"""Subscriptions: who consumes what. Every member receives every other member's live
producers over its one subscribe connection, here or, in a spread room, on another
worker; each change is followed by a subscribe offer to the members it touched.

Work is per member (a new connection: everything flowing) or per producer (a track
started or ended, which every subscriber must hear about anyway), never a full
reconcile. The consumers themselves are the member's (`Member.consumers`); this
keeps what only the room's subscriptions as a whole know: which member each
subscribe connection belongs to, and who is subscribed on this worker.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from sfu.errors import NegotiationError
from sfu.producer import Producer
from sfu.router import Router
from sfu.types import CloseReason, ProducerId, TransportId

from . import protocol as wire
from .members import Member
from .room_commands import RoomError
from .spread.home import RoomSpread
from .stage.model import ParticipantId
from .subscriber import Subscriber


class Subscriptions:
    """Keeps each member's consumers in line with the room's live producers. Used only
    from the room's task (no locks)."""

    def __init__(
        self,
        *,
        router: Router,
        spread: RoomSpread | None,
        members: Mapping[ParticipantId, Member],
    ) -> None:
        self._router = router
        self._spread = spread
        self._members = members  # the room's, read only
        self._receivers: dict[TransportId, Member] = {}  # subscribe connection -> member
        self._here: set[ParticipantId] = set()  # members subscribed on this worker

    async def connect(self, member: Member, stage: Collection[ParticipantId]) -> None:
        """Open a member's subscribe connection: here or, once the spread room holds
        rooms.spread_after of its audience here, on another worker. The stage's own
        connections (a host alone on stage receives nothing) do not bring spreading
        forward, so `stage` is left out of the count."""
        here = self._here
        audience = len(here) - sum(1 for pid in stage if pid in here)
        if self._spread is not None:
            remote = await self._spread.create_subscriber(audience)
            if remote is not None:
                self._attach(member, remote)
                return
        self._attach(member, await self._router.create_webrtc_transport())
        self._here.add(member.participant_id)

    def _attach(self, member: Member, subscriber: Subscriber) -> None:
        member.recv_transport = subscriber
        self._receivers[subscriber.id] = member

    def receive_all(self, member: Member, live: Iterable[tuple[Member, Producer]]) -> None:
        """A member's subscribe connection is new: bring its consumers in line with the
        room's `live` producers (in publishing order, so the offer lists tracks as they
        were added): consume every other member's, drop the rest. Costs the number of
        live producers."""
        transport = member.recv_transport
        if transport is None or transport.closed:
            return
        wanted: dict[ProducerId, Producer] = {
            producer.id: producer
            for owner, producer in live
            if owner is not member and producer.id not in member.refused
        }
        for producer_id in [p for p in member.consumers if p not in wanted]:
            member.consumers.pop(producer_id).close()
            member.needs_offer = True
        for producer_id, producer in wanted.items():
            if producer_id not in member.consumers:
                member.consumers[producer_id] = transport.consume(producer)
                member.needs_offer = True
        offer_if_needed(member)

    def add(self, owner: Member, producers: Iterable[Producer]) -> None:
        """New producers reach every other member."""
        added = list(producers)
        for member in self._members.values():
            transport = member.recv_transport
            if member is owner or transport is None or transport.closed:
                continue
            for producer in added:
                if producer.id not in member.consumers and producer.id not in member.refused:
                    member.consumers[producer.id] = transport.consume(producer)
                    member.needs_offer = True
            offer_if_needed(member)

    def remove(self, producer_ids: Iterable[ProducerId]) -> None:
        """Producers that ended leave every member."""
        gone = list(producer_ids)
        if not gone:
            return
        for member in self._members.values():
            for producer_id in gone:
                member.refused.discard(producer_id)
                consumer = member.consumers.pop(producer_id, None)
                if consumer is not None:
                    consumer.close()
                    member.needs_offer = True
            offer_if_needed(member)

    def view(self, member: Member, tracks: Iterable[wire.TrackView]) -> None:
        """How the member shows the video it receives. A track it does not receive (one
        that just ended, a mistyped id, audio) is ignored: the client's view of the
        room may lag the server's by a message."""
        producers = self._router.producers
        by_track = {
            producer.track_id: consumer
            for producer_id, consumer in member.consumers.items()
            if (producer := producers.get(producer_id)) is not None and producer.kind == "video"
        }
        for view in tracks:
            consumer = by_track.get(view.track_id)
            if consumer is not None and not consumer.closed:
                consumer.set_view(visible=view.visible, height=view.height)

    def disconnect(self, member: Member) -> None:
        """A member's connections closed (or it left): no longer subscribed here."""
        self._here.discard(member.participant_id)

    async def apply_answer(self, member: Member, sdp: str) -> None:
        """The client's answer to our subscribe offer; then the next offer, if one is due."""
        transport = member.recv_transport
        if transport is None or not transport.offer_pending:
            raise RoomError(wire.ErrorCode.CONFLICT, "no subscribe offer is waiting for an answer")
        try:
            await transport.apply_answer(sdp)
        except NegotiationError as exc:
            raise RoomError(wire.ErrorCode.INVALID_SDP, str(exc)) from None
        offer_if_needed(member)

    # -- what the media plane (or another worker) reports ------------------------------------
    def remote_offer(self, transport_id: TransportId, sdp: str) -> None:
        """Another worker made the offer for a subscribe connection it holds."""
        owner = self._receivers.get(transport_id)
        transport = owner.recv_transport if owner is not None else None
        if owner is not None and transport is not None and transport.id == transport_id:
            owner.send(wire.SubscribeOffer(sdp=sdp))

    def consumer_closed(
        self, transport_id: TransportId, producer_id: ProducerId, reason: CloseReason
    ) -> None:
        # Found through its transport: a producer ending closes one consumer per
        # viewer, and each event must not look through the whole room.
        member = self._receivers.get(transport_id)
        consumer = member.consumers.get(producer_id) if member is not None else None
        if member is None or consumer is None or not consumer.closed:
            return
        del member.consumers[producer_id]
        if reason == CloseReason.REJECTED_BY_PEER:
            # e.g. a codec it cannot decode; its answer already removed it
            member.refused.add(producer_id)
        else:
            member.needs_offer = True
            offer_if_needed(member)

    def transport_closed(self, transport_id: TransportId) -> Member | None:
        """Whose subscribe connection closed, if it was one."""
        return self._receivers.pop(transport_id, None)

    def clear(self) -> None:
        self._receivers.clear()
        self._here.clear()


def offer_if_needed(member: Member) -> None:
    """Send the member a subscribe offer if its consumers changed and none is waiting
    for an answer (the next one follows that answer)."""
    transport = member.recv_transport
    if transport is None or transport.closed or not member.needs_offer:
        return
    if transport.offer_pending or not member.connected:
        return
    member.needs_offer = False
    offer = transport.create_offer()
    if offer is not None:  # else it is made on another worker: a RemoteOffer event brings it
        member.send(wire.SubscribeOffer(sdp=offer))
