"""Room actor: one task, one inbox, for client commands and media events alike.

Commands are handled one at a time, so no two changes interleave around an
await and no locks are needed. After any change the room reconciles the media
plane with what should be: every participant with a subscribe transport
consumes every stage producer but its own. What is no longer allowed is
closed before anyone is told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NewType

from sfu import events as sfu_events
from sfu.consumer import Consumer
from sfu.errors import NegotiationError
from sfu.observers.audio_level import AudioLevelObserver
from sfu.producer import Producer
from sfu.router import Router
from sfu.types import CloseReason, MediaKind, ProducerId, TransportId
from sfu.webrtc_transport import WebRtcTransport
from sfu.worker import Worker

from . import protocol as wire
from .auth import Grants

logger = logging.getLogger(__name__)

ParticipantId = NewType("ParticipantId", str)
Deliver = Callable[[wire.ServerMessage], None]
Disconnect = Callable[[str], None]

_SOURCES = {MediaKind.AUDIO: "microphone", MediaKind.VIDEO: "camera"}


class RoomError(Exception):
    """A command the room refuses; `code` goes to the client as is."""

    def __init__(self, code: wire.ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(eq=False, kw_only=True)
class Member:
    participant_id: ParticipantId
    grants: Grants
    entry: wire.Entry
    deliver: Deliver
    disconnect: Disconnect
    recv_transport: WebRtcTransport | None = None
    send_transport: WebRtcTransport | None = None
    producers: dict[ProducerId, Producer] = field(default_factory=dict)
    consumers: dict[ProducerId, Consumer] = field(default_factory=dict)
    speaking: bool = False
    needs_offer: bool = False
    refused: set[ProducerId] = field(default_factory=set)  # producers its client rejected

    @property
    def on_stage(self) -> bool:
        return self.entry == wire.Entry.STAGE

    def describe(self) -> wire.Participant:
        return wire.Participant(
            participant_id=self.participant_id,
            identity=self.grants.identity,
            name=self.grants.name,
            role=self.grants.role,
            on_stage=self.on_stage,
            speaking=self.speaking,
            tracks=[
                wire.Track(track_id=p.track_id, kind=p.kind, source=_SOURCES[p.kind])
                for p in self.producers.values()
            ],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinRoom:
    grants: Grants
    entry: wire.Entry
    deliver: Deliver
    disconnect: Disconnect


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishOffer:
    participant_id: ParticipantId
    sdp: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplySubscribeAnswer:
    participant_id: ParticipantId
    sdp: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaveRoom:
    participant_id: ParticipantId


Command = JoinRoom | PublishOffer | ApplySubscribeAnswer | LeaveRoom


@dataclass(frozen=True, slots=True)
class _Call:
    command: Command
    reply: asyncio.Future[Any]


class Room:
    def __init__(self, *, name: str, worker: Worker, on_empty: Callable[[Room], None]) -> None:
        self.name = name
        self.closed = False
        self._worker = worker
        self._router: Router = worker.create_router(sink=self.post)
        self._on_empty = on_empty
        self._inbox: asyncio.Queue[_Call | sfu_events.SfuEvent] = asyncio.Queue()
        self._members: dict[ParticipantId, Member] = {}
        self._owners: dict[ProducerId, Member] = {}
        self._transport_owners: dict[TransportId, Member] = {}
        self._levels: AudioLevelObserver = self._router.create_audio_level_observer()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"room-{name}")

    @property
    def member_count(self) -> int:
        return len(self._members)

    @property
    def members(self) -> Mapping[ParticipantId, Member]:
        """Read-only view for inspection (metrics, tests); change it only through commands."""
        return MappingProxyType(self._members)

    def post(self, event: sfu_events.SfuEvent) -> None:
        """The media plane's event sink: enqueue only."""
        if not self.closed:
            self._inbox.put_nowait(event)

    async def call(self, command: Command) -> Any:
        """Run one command in the room's task and return its result (or raise)."""
        if self.closed:
            raise RoomError(wire.ErrorCode.CONFLICT, "the room is closed")
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait(_Call(command, reply))
        return await reply

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for member in list(self._members.values()):
            member.deliver(wire.Bye(reason="shutting_down"))
            member.disconnect("room closed")
        self._worker.close_router(self._router)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    # -- the actor loop ----------------------------------------------------------
    async def _run(self) -> None:
        while True:
            item = await self._inbox.get()
            if isinstance(item, _Call):
                if item.reply.cancelled():
                    continue
                try:
                    result = await self._handle(item.command)
                except Exception as exc:  # delivered to the caller, mapped at the edge
                    if not item.reply.done():
                        item.reply.set_exception(exc)
                else:
                    if not item.reply.done():
                        item.reply.set_result(result)
            else:
                try:
                    self._handle_event(item)
                except Exception:
                    logger.exception("room %s: failed on media event %r", self.name, item)

    async def _handle(self, command: Command) -> Any:
        match command:
            case JoinRoom():
                return await self._join(command)
            case PublishOffer():
                return await self._publish(command)
            case ApplySubscribeAnswer():
                return self._subscribe_answer(command)
            case LeaveRoom():
                return self._leave(command.participant_id)

    # -- commands ---------------------------------------------------------------
    async def _join(self, command: JoinRoom) -> wire.Joined:
        member = Member(
            participant_id=ParticipantId(uuid.uuid4().hex[:12]),
            grants=command.grants,
            entry=command.entry,
            deliver=command.deliver,
            disconnect=command.disconnect,
        )
        member.recv_transport = await self._router.create_webrtc_transport()
        self._transport_owners[member.recv_transport.id] = member
        others = list(self._members.values())
        self._members[member.participant_id] = member
        logger.info(
            "room=%s participant=%s identity=%s - joined as %s",
            self.name,
            member.participant_id,
            member.grants.identity,
            member.entry,
        )
        for other in others:
            other.deliver(wire.ParticipantJoined(participant=member.describe()))
        self._reconcile()
        return wire.Joined(
            id=None,
            protocol=wire.PROTOCOL_VERSION,
            participant_id=member.participant_id,
            room=self.name,
            role=member.grants.role,
            entry=member.entry,
            participants=[m.describe() for m in self._members.values()],
        )

    async def _publish(self, command: PublishOffer) -> str:
        member = self._member(command.participant_id)
        if not member.on_stage:
            raise RoomError(
                wire.ErrorCode.FORBIDDEN, "viewers cannot publish; join the stage first"
            )
        if member.send_transport is None:
            transport = await self._router.create_webrtc_transport(stream_id=member.participant_id)
            member.send_transport = transport
            self._transport_owners[transport.id] = member
        try:
            result = member.send_transport.apply_offer(command.sdp)
        except NegotiationError as exc:
            raise RoomError(wire.ErrorCode.INVALID_SDP, str(exc)) from None
        for producer in result.added:
            member.producers[producer.id] = producer
            self._owners[producer.id] = member
            if producer.kind == MediaKind.AUDIO:
                self._levels.add_producer(producer)
        for producer_id in result.removed:
            member.producers.pop(producer_id, None)
        self._reconcile()
        if result.added or result.removed:
            self._broadcast(wire.ParticipantUpdated(participant=member.describe()))
        return result.answer

    def _subscribe_answer(self, command: ApplySubscribeAnswer) -> None:
        member = self._member(command.participant_id)
        transport = member.recv_transport
        if transport is None or not transport.offer_pending:
            raise RoomError(wire.ErrorCode.CONFLICT, "no subscribe offer is waiting for an answer")
        try:
            transport.apply_answer(command.sdp)
        except NegotiationError as exc:
            raise RoomError(wire.ErrorCode.INVALID_SDP, str(exc)) from None
        self._offer_if_needed(member)

    def _leave(self, participant_id: ParticipantId) -> None:
        member = self._members.pop(participant_id, None)
        if member is None:
            return
        # Media first: nobody may keep receiving someone who has left.
        for transport in (member.send_transport, member.recv_transport):
            if transport is not None:
                self._transport_owners.pop(transport.id, None)
                transport.close()
        for producer_id in member.producers:
            self._owners.pop(producer_id, None)
        member.producers.clear()
        logger.info("room=%s participant=%s - left", self.name, participant_id)
        self._reconcile()
        self._broadcast(wire.ParticipantLeft(participant_id=participant_id))
        if not self._members:
            self._on_empty(self)

    # -- media events ------------------------------------------------------------
    def _handle_event(self, event: sfu_events.SfuEvent) -> None:
        match event:
            case sfu_events.SpeakingChanged(producer_id=producer_id, speaking=speaking):
                owner = self._owners.get(producer_id)
                if owner is not None and owner.speaking != speaking:
                    owner.speaking = speaking
                    self._broadcast(
                        wire.Speaking(participant_id=owner.participant_id, speaking=speaking)
                    )
            case sfu_events.ActiveSpeakerChanged(producer_id=producer_id):
                owner = self._owners.get(producer_id) if producer_id else None
                self._broadcast(
                    wire.ActiveSpeaker(participant_id=owner.participant_id if owner else None)
                )
            case sfu_events.ProducerClosed(producer_id=producer_id):
                owner = self._owners.pop(producer_id, None)
                if owner is not None and owner.producers.pop(producer_id, None) is not None:
                    self._reconcile()
                    self._broadcast(wire.ParticipantUpdated(participant=owner.describe()))
            case sfu_events.ConsumerClosed(producer_id=producer_id, reason=reason):
                for member in self._members.values():
                    consumer = member.consumers.get(producer_id)
                    if consumer is not None and consumer.closed:
                        del member.consumers[producer_id]
                        if reason == CloseReason.REJECTED_BY_PEER:
                            # e.g. a codec it cannot decode; its answer already removed it
                            member.refused.add(producer_id)
                        else:
                            member.needs_offer = True
                            self._offer_if_needed(member)
            case sfu_events.TransportClosed(transport_id=transport_id, reason=reason):
                owner = self._transport_owners.pop(transport_id, None)
                if owner is not None and reason == CloseReason.CONNECTION_FAILED:
                    owner.deliver(wire.Bye(reason="transport_failed"))
                    owner.disconnect("media connection failed")
                    self._leave(owner.participant_id)
            case _:
                pass

    # -- reconcile ----------------------------------------------------------------
    def _reconcile(self) -> None:
        """Make every subscription match the stage; idempotent."""
        stage = {
            producer_id: (owner, owner.producers[producer_id])
            for producer_id, owner in self._owners.items()
            if owner.on_stage and producer_id in owner.producers
        }
        for member in self._members.values():
            transport = member.recv_transport
            if transport is None or transport.closed:
                continue
            wanted = {
                pid
                for pid, (owner, _) in stage.items()
                if owner is not member and pid not in member.refused
            }
            changed = False
            for producer_id in set(member.consumers) - wanted:
                member.consumers.pop(producer_id).close()
                changed = True
            for producer_id in wanted - set(member.consumers):
                member.consumers[producer_id] = transport.consume(stage[producer_id][1])
                changed = True
            if changed:
                member.needs_offer = True
            self._offer_if_needed(member)

    def _offer_if_needed(self, member: Member) -> None:
        transport = member.recv_transport
        if transport is None or transport.closed or not member.needs_offer:
            return
        if transport.offer_pending:
            return  # another offer follows once this one is answered
        member.needs_offer = False
        member.deliver(wire.SubscribeOffer(sdp=transport.create_offer()))

    def _member(self, participant_id: ParticipantId) -> Member:
        member = self._members.get(participant_id)
        if member is None:
            raise RoomError(wire.ErrorCode.NOT_JOINED, "not in this room")
        return member

    def _broadcast(self, message: wire.ServerMessage) -> None:
        for member in self._members.values():
            member.deliver(message)
