"""Room actor: one task, one inbox, for client commands and media events alike.

Commands are handled one at a time, so no two changes interleave around an
await and no locks are needed. Each stage change goes through the pure stage
machine; the room then enforces the result at the SFU (closing or pausing
producers, adjusting subscriptions) *before* it tells anyone, then routes the
machine's events to their audiences.

Every step costs what it changes, never the size of the room: the machine's events
name the people a change touched and only they are enforced and brought up to date;
subscriptions change per member (a new connection) or per producer (a track started
or ended, which every subscriber must hear about anyway); lookups by token,
transport or grace period are indexed. A town hall of thousands fills in linear time.

The room decides and sequences; its parts, each holding the state it changes, do
the rest: Membership (who is in, by id, resume token and grace deadline; rate
budgets), Publishing (what each member may send, and whose each producer is),
Subscriptions (who consumes what), Audiences (who hears which event) and, with
several workers, RoomSpread (viewers on other workers). Each is given only what it
needs (the router, the spread, a read-only view of the members). Only the router
and the spread refer back, through `post`, and both let go of it when they close,
so a closed room is freed by reference counting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from sfu import events as sfu_events
from sfu.clock import Clock
from sfu.router import Router
from sfu.types import CloseReason, ProducerId
from sfu.worker import Worker

from . import permissions as may
from . import protocol as wire
from .audience import Audiences
from .media_stats import PendingStats, received_track
from .members import CLOSE_NORMAL, Member, broadcast, dismiss_all
from .membership import Membership, Spending
from .postman import Postman
from .publishing import Publishing
from .room_commands import (
    ApplySubscribeAnswer,
    Command,
    ConnectionLost,
    Event,
    GetMediaStats,
    JoinRoom,
    LeaveRoom,
    PostChat,
    PublishOffer,
    RateLimited,
    ResumeSession,
    RoomClosed,
    RoomError,
    RoomOptions,
    RunStageCommand,
    ViewTracks,
)
from .spread import messages as spread_messages
from .spread.home import Cluster, RemoteOffer, RoomSpread
from .stage import commands as sc
from .stage import events as ev
from .stage.machine import StageError, transition
from .stage.model import ParticipantId, RoomState
from .stage.roster import Index
from .stats import SignalingStats
from .subscriptions import Subscriptions

logger = logging.getLogger(__name__)

TICK_INTERVAL = 0.5


@dataclass(frozen=True, slots=True)
class _Call:
    command: Command
    reply: asyncio.Future[Any]


class _Tick:
    pass


_STAGE_ERRORS = {
    "forbidden": wire.ErrorCode.FORBIDDEN,
    "conflict": wire.ErrorCode.CONFLICT,
    "not_found": wire.ErrorCode.NOT_FOUND,
    "stage_full": wire.ErrorCode.STAGE_FULL,
    "banned": wire.ErrorCode.BANNED,
    "invalid_argument": wire.ErrorCode.INVALID_ARGUMENT,
}


# Items waiting for the room's task. Each session has at most one call in it, so only a
# room that has fallen far behind reaches this.
INBOX_LIMIT = 4096
INBOX_RETRY_AFTER = 1.0
_SHEDDABLE = (sfu_events.SpeakingChanged, sfu_events.ActiveSpeakerChanged)


class Room:
    def __init__(
        self,
        *,
        name: str,
        worker: Worker,
        options: RoomOptions,
        clock: Clock,
        on_empty: Callable[[Room], None],
        stats: SignalingStats,
        cluster: Cluster | None = None,
        postman: Postman | None = None,
    ) -> None:
        self.name = name
        self._stats = stats
        self.closed = False
        self._emptied = False  # the last member left: closing, commands get RoomClosed
        self._ended = False  # ended for everyone (end_room, or no host for too long)
        self._worker = worker
        self._options = options
        self._clock = clock
        self._postman = postman if postman is not None else Postman()
        self._on_empty = on_empty
        self._router: Router = worker.create_router(on_event=self.post)
        self._spread = (
            RoomSpread(
                name=name,
                router=self._router,
                cluster=cluster,
                spread_after=options.spread_after,
                pipe_address=options.pipe_address,
                post=self.post,
            )
            if cluster is not None
            else None
        )
        self._inbox: asyncio.Queue[_Call | Event | _Tick] = asyncio.Queue()
        self._state = RoomState(policy=options.policy)
        self._membership = Membership(options)
        self._members = self._membership.members  # read only: joins and exits go above
        self._publishing = Publishing(
            router=self._router, levels=self._router.create_audio_level_observer()
        )
        self._subscriptions = Subscriptions(router=self._router, spread=self._spread,
                                            members=self._members)  # fmt: skip
        self._audiences = Audiences(room=name, members=self._members)
        self._ends_at: float | None = None  # no host or moderator: the room ends then
        loop = asyncio.get_running_loop()
        self._tasks: tuple[asyncio.Task[None], ...] = (
            loop.create_task(self._run(), name=f"room-{name}"),
            loop.create_task(self._tick(), name=f"room-{name}-tick"),
        )

    # -- inspection (metrics, tests) ------------------------------------------------------
    @property
    def member_count(self) -> int:
        return len(self._members)

    @property
    def members(self) -> Mapping[ParticipantId, Member]:
        return self._members

    @property
    def state(self) -> RoomState:
        return self._state

    @property
    def ends_at(self) -> float | None:
        """When the room ends for lack of a host or moderator (rooms.empty_host_timeout)."""
        return self._ends_at

    @property
    def spread_key(self) -> str | None:
        return self._spread.key if self._spread is not None else None

    def link_lost(self, index: int) -> None:
        if self._spread is not None:
            self._spread.link_lost(index)

    # -- entry points ---------------------------------------------------------------------
    def post(self, event: Event) -> None:
        """The router's on_event callback: enqueue only. Over INBOX_LIMIT, speaking news is
        shed (and counted): the room is behind, and the next change corrects it. Events
        about objects' lives are always kept: they are bounded by the objects."""
        if self.closed:
            return
        if self._inbox.qsize() >= INBOX_LIMIT and isinstance(event, _SHEDDABLE):
            self._stats.inbox_shed["event"] += 1
            return
        self._inbox.put_nowait(event)

    async def call(self, command: Command) -> Any:
        """Run one command in the room's task and return its result (or raise; RoomClosed
        once the room has emptied, even for a command queued before that)."""
        if self.closed or self._emptied:
            raise RoomClosed()
        if self._inbox.qsize() >= INBOX_LIMIT:
            self._stats.inbox_shed["command"] += 1
            raise RateLimited("the room is overloaded; retry shortly", INBOX_RETRY_AFTER)
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait(_Call(command, reply))
        return await reply

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for member in list(self._members.values()):
            member.dismiss("shutting_down", "room closed")
        if not self._ended:  # an ended room's byes go out in the postman's batches
            self._postman.flush()
        self._worker.close_router(self._router)
        if self._spread is not None:
            await self._spread.close()
        # Let go of the tasks once they ended: a cancelled task's exception references
        # its frame, which references this room.
        tasks, self._tasks = self._tasks, ()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while not self._inbox.empty():  # callers still waiting get an answer
            item = self._inbox.get_nowait()
            if isinstance(item, _Call) and not item.reply.done():
                item.reply.set_exception(RoomClosed())

    # -- the actor loop -------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            item = await self._inbox.get()
            if isinstance(item, _Call):
                if item.reply.done():
                    continue
                if self._emptied:  # queued before the last member left
                    item.reply.set_exception(RoomClosed())
                    continue
                try:
                    result = await self._handle(item.command)
                except Exception as exc:  # delivered to the caller, mapped at the edge
                    self._postman.after(partial(_fail, item.reply, exc))
                else:  # after the messages it caused, as if all were sent at once
                    self._postman.after(partial(_succeed, item.reply, result))
            else:
                try:
                    if isinstance(item, _Tick):
                        self._on_tick()
                    else:
                        self._handle_event(item)
                except Exception:
                    logger.exception("room=%s - failed on %r", self.name, item, extra=self._ids())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_INTERVAL)
            if self._inbox.qsize() < INBOX_LIMIT:  # else a later tick does the same work
                self._inbox.put_nowait(_Tick())

    async def _handle(self, command: Command) -> Any:
        match command:
            case JoinRoom():
                try:
                    return await self._join(command)
                finally:  # a refused first join must not leave an empty room behind
                    self._close_if_empty()
            case ResumeSession():
                return await self._resume(command)
            case PublishOffer():
                self._spend(command.participant_id, "publish")
                return await self._publish(command)
            case ApplySubscribeAnswer():  # answers our own offers: bounded by them
                return await self._subscribe_answer(command)
            case ViewTracks():
                self._spend(command.participant_id, "command")
                member = self._member(command.participant_id)
                return self._subscriptions.view(member, command.tracks)
            case GetMediaStats():
                self._spend(command.participant_id, "command")
                return self._media_stats(self._member(command.participant_id))
            case RunStageCommand():
                self._spend(command.participant_id, "command")
                return self._stage_command(command)
            case PostChat():
                self._spend(command.participant_id, "chat")
                return self._chat(command)
            case LeaveRoom():
                return self._leave(command.participant_id)
            case ConnectionLost():
                return self._connection_lost(command)

    # -- applying stage changes --------------------------------------------------------------
    def _apply(self, actor: ParticipantId | None, command: sc.Command) -> tuple[ev.StageEvent, ...]:
        """Transition, enforce at the SFU, then tell the audiences. Raises RoomError."""
        now = self._clock.now()
        try:
            new, events = transition(self._state, actor, command, now)
        except StageError as exc:
            raise RoomError(_STAGE_ERRORS[exc.code], exc.message) from None
        old, self._state = self._state, new
        self._settle(old, events, now)
        return events

    def _settle(self, old: RoomState, events: tuple[ev.StageEvent, ...], now: float) -> None:
        """Enforce, then tell: for the people the events name, nobody else."""
        new = self._state
        touched: list[ParticipantId] = []
        for event in events:
            match event:
                case ev.Kicked():
                    self._end_session(event.target, "kicked")
                case ev.PersonChanged() | ev.PersonEntered():
                    touched.append(event.participant_id)
                case ev.HostLeft() if self._options.empty_host_timeout > 0:
                    if not _run_by_anyone(new):
                        self._ends_at = now + self._options.empty_host_timeout
                        logger.info("room=%s - no host or moderator; ends in %.0fs unless "
                                    "one joins", self.name, self._options.empty_host_timeout,
                                    extra=self._ids())  # fmt: skip
        if self._ends_at is not None and _run_by_anyone(new):
            self._ends_at = None  # a host or moderator is back: the room goes on
        # Media first: nobody may keep receiving what is no longer allowed.
        ended: list[ProducerId] = []
        for pid in touched:
            member, person = self._members.get(pid), new.people.get(pid)
            if member is not None and person is not None:
                ended += self._publishing.enforce(member, person)
        self._subscriptions.remove(ended)
        self._audiences.tell(old, new, events, now, publishers=self._publishing.publishers(),
                             ends_at=self._ends_at)  # fmt: skip

    # -- media --------------------------------------------------------------------------
    def _drop_media(self, member: Member) -> None:
        """Close a member's connections; everyone stops receiving its tracks."""
        ended = list(member.producers)
        member.drop_media()
        self._subscriptions.disconnect(member)
        self._subscriptions.remove(ended)

    async def _connect_subscriber(self, member: Member) -> None:
        await self._subscriptions.connect(member, self._state.people.index(Index.STAGE))

    # -- commands ---------------------------------------------------------------------------
    async def _join(self, command: JoinRoom) -> wire.Joined:
        grants = command.grants
        participant_id = ParticipantId(uuid.uuid4().hex[:12])
        member = Member(
            participant_id=participant_id,
            identity=grants.identity,
            resume_token=secrets.token_urlsafe(24),
            deliver=command.deliver,
            disconnect=command.disconnect,
            postman=self._postman,
        )
        enter = sc.Enter(
            participant_id=participant_id,
            identity=grants.identity,
            name=grants.name or grants.identity,
            role=grants.role,
            on_stage=command.entry is wire.Entry.STAGE,
            mic_on=command.mic,
            camera_on=command.camera,
            viewer_only=command.viewer_only,
        )
        try:
            transition(self._state, None, enter, self._clock.now())  # refuse before any I/O
        except StageError as exc:
            raise RoomError(_STAGE_ERRORS[exc.code], exc.message) from None
        await self._connect_subscriber(member)
        self._membership.add(member)
        try:
            self._apply(None, enter)
        except RoomError:
            self._drop_media(member)
            self._forget(member)
            raise
        self._subscriptions.receive_all(member, self._publishing.live())
        logger.info("room=%s participant=%s identity=%s - joined as %s", self.name,
                    participant_id, grants.identity, command.entry,
                    extra=self._ids(participant_id))  # fmt: skip
        return self._joined(member, entry=command.entry)

    def _joined(self, member: Member, *, entry: wire.Entry) -> wire.Joined:
        return self._audiences.joined(self._state, member, entry=entry,
                                      publishers=self._publishing.publishers())  # fmt: skip

    async def _resume(self, command: ResumeSession) -> wire.Joined:
        member = self._membership.resume(command.resume_token)
        if member is None:
            raise RoomError(wire.ErrorCode.RESUME_FAILED, "unknown or expired resume token")
        member.dismiss("replaced", "resumed elsewhere")  # the old connection is replaced
        self._drop_media(member)
        member.deliver, member.disconnect = command.deliver, command.disconnect
        await self._connect_subscriber(member)
        person = self._state.people[member.participant_id]
        logger.info("room=%s participant=%s - resumed", self.name, member.participant_id,
                    extra=self._ids(member.participant_id))  # fmt: skip
        joined = self._joined(
            member, entry=wire.Entry.STAGE if person.on_stage else wire.Entry.VIEWER
        )
        if may.is_moderator(person):  # as on joining: the list alone has no queue order
            self._audiences.queues(self._state, member, self._clock.now())
        self._announce(member)
        self._subscriptions.receive_all(member, self._publishing.live())
        return joined

    async def _publish(self, command: PublishOffer) -> str:
        member = self._member(command.participant_id)
        person = self._state.people[member.participant_id]
        answer, added, removed = await self._publishing.publish(member, person, command)
        self._subscriptions.remove(removed)
        self._subscriptions.add(member, added)
        if added or removed:
            self._announce(member, tracks_changed=True)
        return answer

    async def _subscribe_answer(self, command: ApplySubscribeAnswer) -> None:
        await self._subscriptions.apply_answer(self._member(command.participant_id), command.sdp)

    def _stage_command(self, command: RunStageCommand) -> None:
        member = self._member(command.participant_id)
        request_id = command.request_id
        if request_id is not None and request_id in member.replies:
            ok, outcome = member.replies[request_id]  # a retry: answer as before, apply once
            if ok:
                return None
            raise outcome
        try:
            events = self._apply(member.participant_id, command.command)
        except RoomError as exc:
            if request_id is not None:
                member.remember(request_id, False, exc)
            raise
        if request_id is not None:
            member.remember(request_id, True, None)
        for event in events:
            if isinstance(event, ev.RoomEnded):
                # The session's own ack would come after its close: the host hears it
                # here, before the goodbye, like everyone else's `leave`.
                member.send(wire.Ack(id=request_id))
                self._end(event.by)
        return None

    def _media_stats(self, member: Member) -> PendingStats:
        """Whose each track the member receives is and what its publisher sends; the
        session asks the member's connection for the rest, after this turn."""
        producers = self._router.producers
        tracks = {
            producer_id: received_track(producer, owner.participant_id)
            for producer_id in member.consumers
            if (producer := producers.get(producer_id)) is not None
            and (owner := self._publishing.owner(producer_id)) is not None
        }
        return PendingStats(tracks, member.recv_transport)

    def _chat(self, command: PostChat) -> None:
        member = self._member(command.participant_id)
        person = self._state.people[member.participant_id]
        message = wire.ChatMessage(
            participant_id=person.participant_id, name=person.name, text=command.text,
            at=self._clock.wall(),
        )  # fmt: skip
        broadcast(message, self._members.values())

    def _leave(self, participant_id: ParticipantId) -> None:
        member = self._members.get(participant_id)
        if member is None:
            return
        self._exit(member)
        logger.info("room=%s participant=%s - left", self.name, participant_id,
                    extra=self._ids(participant_id))  # fmt: skip

    def _connection_lost(self, command: ConnectionLost) -> None:
        member = self._members.get(command.participant_id)
        if member is None or member.deliver != command.deliver:
            return  # already gone, or already resumed on a new connection
        grace = self._options.reconnect_grace
        if grace <= 0:
            self._exit(member)
            return
        self._drop_media(member)  # media stops now; the seat, role and mute state wait
        member.deliver = member.disconnect = None
        self._membership.start_grace(member, self._clock.now() + grace)
        logger.info("room=%s participant=%s - disconnected, %.0fs to resume", self.name,
                    member.participant_id, grace,
                    extra=self._ids(member.participant_id))  # fmt: skip
        self._announce(member)

    def _exit(self, member: Member) -> None:
        """Remove someone from the room: media first, then the stage, then the news."""
        self._drop_media(member)
        with contextlib.suppress(RoomError):
            self._apply(None, sc.Exit(participant_id=member.participant_id))
        self._forget(member)
        self._close_if_empty()

    def _end(self, by: ParticipantId | None) -> None:
        """End the room for everyone (a host's end_room, or `by` None: no host or
        moderator for rooms.empty_host_timeout). Media first: every connection closes,
        nothing is renegotiated; then each connection gets `bye` (room_ended) and a
        normal close. Nobody leaves one by one (no participant_left to the thousands
        about to go); the room closes, its bans with it, and a later join opens a new
        one. Commands already queued get RoomClosed."""
        self._emptied = self._ended = True
        self._ends_at = None
        members = list(self._members.values())
        for member in members:
            member.drop_media()
        ender = self._state.people.get(by) if by is not None else None
        bye = wire.Bye(reason="room_ended", by=by, by_name=ender.name if ender else None)
        dismiss_all(bye, "room ended", members, code=CLOSE_NORMAL)
        self._membership.clear()
        self._publishing.clear()
        self._subscriptions.clear()
        logger.info("room=%s - ended for everyone (%d members) by %s", self.name, len(members),
                    by or "no host or moderator", extra=self._ids(by))  # fmt: skip
        self._on_empty(self)

    def _close_if_empty(self) -> None:
        if not self._members and not self._emptied:
            self._emptied = True
            self._on_empty(self)

    def _spend(self, participant_id: ParticipantId, kind: Spending) -> None:
        self._membership.spend(self._member(participant_id), kind, self._clock.now())

    def _forget(self, member: Member) -> None:
        """Drop every index entry of a member who left (its connections are closed)."""
        self._membership.forget(member)
        self._subscriptions.disconnect(member)
        self._publishing.forget(member)

    def _end_session(self, participant_id: ParticipantId, reason: str) -> None:
        member = self._members.get(participant_id)
        if member is None:
            return
        member.dismiss("kicked", "removed from the room")
        self._drop_media(member)
        self._forget(member)
        logger.info("room=%s participant=%s - %s", self.name, participant_id, reason,
                    extra=self._ids(participant_id))  # fmt: skip

    def _announce(self, member: Member, *, tracks_changed: bool = False) -> None:
        self._audiences.announce(self._state, member, self._clock.now(),
                                 tracks_changed=tracks_changed)  # fmt: skip

    # -- time -------------------------------------------------------------------------------
    def _on_tick(self) -> None:
        now = self._clock.now()
        if self._ends_at is not None and self._ends_at <= now and not self._emptied:
            self._end(None)
            return
        if min(self._state.people.index(Index.INVITED).values(), default=now + 1) <= now:
            self._apply(None, sc.Expire())
        for member in self._membership.grace_expired(now):
            pid = member.participant_id
            logger.info("room=%s participant=%s - grace expired", self.name, pid,
                        extra=self._ids(pid))  # fmt: skip
            self._exit(member)
        self._audiences.refresh_counts(self._state, now)

    # -- media events -----------------------------------------------------------------------
    def _handle_event(self, event: Event) -> None:
        """React to one media event, in time independent of the room's size except to
        tell everyone."""
        match event:
            case RemoteOffer(transport_id=transport_id, sdp=sdp):
                self._subscriptions.remote_offer(transport_id, sdp)
            case spread_messages.SubscriberClosed() | spread_messages.ConsumerClosed():
                if self._spread is not None:
                    self._spread.on_message(event)
            case sfu_events.SpeakingChanged(producer_id=producer_id, speaking=speaking):
                owner = self._publishing.owner(producer_id)
                if owner is not None and owner.speaking != speaking:
                    owner.speaking = speaking
                    with contextlib.suppress(RoomError):
                        self._apply(None, sc.Spoke(participant_id=owner.participant_id))
                    message = wire.Speaking(participant_id=owner.participant_id, speaking=speaking)
                    broadcast(message, self._members.values())
            case sfu_events.ActiveSpeakerChanged(producer_id=producer_id):
                owner = self._publishing.owner(producer_id) if producer_id else None
                for ranked in self._publishing.rank_cameras(owner):
                    if self._spread is not None:
                        self._spread.producer_ranked(ranked)
                active = wire.ActiveSpeaker(participant_id=owner.participant_id if owner else None)
                broadcast(active, self._members.values())
            case sfu_events.ProducerClosed(producer_id=producer_id):
                if self._spread is not None:
                    self._spread.producer_closed(producer_id)
                owner = self._publishing.producer_closed(producer_id)
                if owner is not None:
                    self._subscriptions.remove([producer_id])
                    self._announce(owner, tracks_changed=True)
            case sfu_events.ConsumerClosed(
                transport_id=transport_id, producer_id=producer_id, reason=reason
            ):
                self._subscriptions.consumer_closed(transport_id, producer_id, reason)
            case sfu_events.TransportClosed(transport_id=transport_id, reason=reason):
                owner = self._publishing.transport_closed(transport_id)
                if owner is None:
                    owner = self._subscriptions.transport_closed(transport_id)
                if owner is not None and reason == CloseReason.CONNECTION_FAILED:
                    owner.dismiss("transport_failed", "media connection failed")
                    self._exit(owner)
            case _:
                pass

    def _ids(self, participant_id: ParticipantId | None = None) -> dict[str, str | None]:
        """Log record fields (`extra=`): structured logs carry the ids on their own."""
        return {"room": self.name, "participant": participant_id}

    def _member(self, participant_id: ParticipantId) -> Member:
        member = self._members.get(participant_id)
        if member is None:
            raise RoomError(wire.ErrorCode.NOT_JOINED, "not in this room")
        return member


def _run_by_anyone(state: RoomState) -> bool:
    """Whether a host or moderator is in the room (connected or in their grace period)."""
    people = state.people
    return people.count(Index.HOSTS) + people.count(Index.MODERATORS) > 0


def _succeed(reply: asyncio.Future[Any], result: Any) -> None:
    if not reply.done():
        reply.set_result(result)


def _fail(reply: asyncio.Future[Any], exc: Exception) -> None:
    if not reply.done():
        reply.set_exception(exc)
