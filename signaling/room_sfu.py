"""The room's dealings with its SFU router: members' connections, and what the media plane reports.

The room actor decides who is where on the stage; this is the plumbing below
it: opening subscribe connections (here or on another worker), answering
publish offers with only the sources the stage grants, passing subscribe offers
and answers, and turning the router's events into messages, keeping the
ownership maps (which member a producer or transport belongs to) current. Kept
apart so the room reads as stage logic. These are functions given the room's
pieces, called only from the room's task (so no locks); anything that changes
the stage goes back through the room's hooks, so enforcement and announcements
stay in one place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping

from sfu import events as sfu_events
from sfu.errors import NegotiationError
from sfu.observers.audio_level import AudioLevelObserver
from sfu.producer import Producer
from sfu.router import Router
from sfu.types import CloseReason, MediaKind, Mid, ProducerId, TransportId

from . import protocol as wire
from . import room_media
from .members import Member, broadcast
from .room_commands import PublishOffer, RoomError
from .spread import messages as spread_messages
from .spread.home import RemoteOffer, RoomSpread
from .stage import commands as sc
from .stage.model import ParticipantId, Person
from .subscriber import Subscriber

# What the room hears besides commands: its router's events, offers made by other
# workers for its spread subscribers, and those workers' reports.
Event = sfu_events.SfuEvent | RemoteOffer | spread_messages.ToHome


# -- connections ------------------------------------------------------------------------------
async def new_subscriber(
    router: Router, spread: RoomSpread | None, local: int
) -> tuple[Subscriber, bool]:
    """A subscribe connection here or, in a spread room (after `local` audience
    connections on this worker), on another worker; and whether it is here."""
    if spread is not None:
        remote = await spread.create_subscriber(local)
        if remote is not None:
            return remote, False
    return await router.create_webrtc_transport(), True


def offer_if_needed(member: Member) -> None:
    transport = member.recv_transport
    if transport is None or transport.closed or not member.needs_offer:
        return
    if transport.offer_pending or not member.connected:
        return  # another offer follows once this one is answered
    member.needs_offer = False
    offer = transport.create_offer()
    if offer is not None:  # else it is made on another worker: a RemoteOffer event brings it
        member.send(wire.SubscribeOffer(sdp=offer))


async def publish(
    member: Member,
    person: Person,
    command: PublishOffer,
    *,
    router: Router,
    levels: AudioLevelObserver,
    owners: dict[ProducerId, Member],
    transport_owners: dict[TransportId, Member],
) -> tuple[str, list[Producer], list[ProducerId]]:
    """Answer a publish offer; returns the SDP answer and the producers it added and
    removed. Raises RoomError, and nothing changes, for a source the stage does not grant."""
    allowed = room_media.grants(person)
    if not allowed:
        raise RoomError(wire.ErrorCode.FORBIDDEN, "viewers cannot publish; join the stage first")
    sources = dict(command.sources or {})

    def admit(mid: Mid, kind: MediaKind) -> None:
        source = sources.get(mid) or room_media.default_source(kind)
        if room_media.kind_of(source) is not kind:
            raise NegotiationError(f"m-section {mid}: {source} is not {kind}")
        if source not in allowed:
            raise RoomError(wire.ErrorCode.FORBIDDEN, f"you may not publish {source} now")

    if member.send_transport is None:
        transport = await router.create_webrtc_transport(stream_id=member.participant_id)
        member.send_transport = transport
        transport_owners[transport.id] = member
    try:
        result = member.send_transport.apply_offer(command.sdp, admit=admit)
    except NegotiationError as exc:
        raise RoomError(wire.ErrorCode.INVALID_SDP, str(exc)) from None
    for producer in result.added:
        member.producers[producer.id] = producer
        member.sources[producer.id] = sources.get(
            producer.parameters.mid
        ) or room_media.default_source(producer.kind)
        owners[producer.id] = member
        if member.sources[producer.id] is wire.Source.MICROPHONE:
            levels.add_producer(producer)
    for producer_id in result.removed:
        member.producers.pop(producer_id, None)
        member.sources.pop(producer_id, None)
    room_media.enforce(member, person)  # e.g. muted at publish time: paused at once
    added = [p for p in result.added if not p.closed]
    return result.answer, added, list(result.removed)


async def apply_answer(member: Member, sdp: str) -> None:
    """The client's answer to our subscribe offer; then the next offer, if one is due."""
    transport = member.recv_transport
    if transport is None or not transport.offer_pending:
        raise RoomError(wire.ErrorCode.CONFLICT, "no subscribe offer is waiting for an answer")
    try:
        await transport.apply_answer(sdp)
    except NegotiationError as exc:
        raise RoomError(wire.ErrorCode.INVALID_SDP, str(exc)) from None
    offer_if_needed(member)


# -- media events -------------------------------------------------------------------------------
def on_event(
    event: Event,
    members: Mapping[ParticipantId, Member],
    spread: RoomSpread | None,
    owners: dict[ProducerId, Member],
    transport_owners: dict[TransportId, Member],
    *,
    apply: Callable[[ParticipantId | None, sc.Command], object],
    tracks_changed: Callable[[Member, ProducerId], None],
    remove: Callable[[Member], None],
) -> None:
    """React to one media event, in time independent of the room's size except to tell
    everyone. The hooks are the room's: `apply` a stage command, unsubscribe everyone
    and announce when a member's producer ended (`tracks_changed`), `remove` a member."""
    match event:
        case RemoteOffer(transport_id=transport_id, sdp=sdp):
            owner = transport_owners.get(transport_id)
            transport = owner.recv_transport if owner is not None else None
            if owner is not None and transport is not None and transport.id == transport_id:
                owner.send(wire.SubscribeOffer(sdp=sdp))
        case spread_messages.SubscriberClosed() | spread_messages.ConsumerClosed():
            if spread is not None:
                spread.on_message(event)
        case sfu_events.SpeakingChanged(producer_id=producer_id, speaking=speaking):
            owner = owners.get(producer_id)
            if owner is not None and owner.speaking != speaking:
                owner.speaking = speaking
                with contextlib.suppress(RoomError):
                    apply(None, sc.Spoke(participant_id=owner.participant_id))
                message = wire.Speaking(participant_id=owner.participant_id, speaking=speaking)
                broadcast(message, members.values())
        case sfu_events.ActiveSpeakerChanged(producer_id=producer_id):
            owner = owners.get(producer_id) if producer_id else None
            active = wire.ActiveSpeaker(participant_id=owner.participant_id if owner else None)
            broadcast(active, members.values())
        case sfu_events.ProducerClosed(producer_id=producer_id):
            if spread is not None:
                spread.producer_closed(producer_id)
            owner = owners.pop(producer_id, None)
            if owner is not None and owner.producers.pop(producer_id, None) is not None:
                owner.sources.pop(producer_id, None)
                tracks_changed(owner, producer_id)
        case sfu_events.ConsumerClosed(
            transport_id=transport_id, producer_id=producer_id, reason=reason
        ):
            # Found through its transport: a producer ending closes one consumer per
            # viewer, and each event must not look through the whole room.
            member = transport_owners.get(transport_id)
            consumer = member.consumers.get(producer_id) if member is not None else None
            if member is not None and consumer is not None and consumer.closed:
                del member.consumers[producer_id]
                if reason == CloseReason.REJECTED_BY_PEER:
                    # e.g. a codec it cannot decode; its answer already removed it
                    member.refused.add(producer_id)
                else:
                    member.needs_offer = True
                    offer_if_needed(member)
        case sfu_events.TransportClosed(transport_id=transport_id, reason=reason):
            owner = transport_owners.pop(transport_id, None)
            if owner is not None and reason == CloseReason.CONNECTION_FAILED:
                owner.dismiss("transport_failed", "media connection failed")
                remove(owner)
        case _:
            pass
