"""Who is told what. Every event has an audience:

* changes to stage members (and people joining or leaving the stage) go to everyone;
* changes to other people go to the "full view" (hosts, moderators, stage members
  and people with a request, invitation or seat in the queue) and to the person;
* plain viewers get counts instead, coalesced, so a large audience is not sent a
  message per viewer;
* notifications about one person (invited, declined, removed, muted) go to them,
  and moderators learn the outcome through the participant's new state.

Work is proportional to the audience of each message, never to the room: the people
who see everything are an index of the stage state (roster.py), each message is encoded
once for all its recipients (members.broadcast), and after a change only the people it
touched have their view brought up to date.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from . import permissions as may
from . import protocol as wire
from .members import Member, broadcast
from .publishing import default_source
from .roles import Role
from .stage import events as ev
from .stage.model import ParticipantId, Person, Poll, RoomPolicy, RoomState
from .stage.roster import Index


def full_view(person: Person) -> bool:
    return person.in_full_view


def describe(person: Person, member: Member | None) -> wire.Participant:
    tracks = []
    if member is not None:
        for producer_id, producer in member.producers.items():
            if producer.closed:
                continue
            source = member.sources.get(producer_id)
            tracks.append(
                wire.Track(
                    track_id=producer.track_id,
                    kind=producer.kind,
                    source=source if source else default_source(producer.kind),
                )
            )
    return wire.Participant(
        participant_id=person.participant_id,
        identity=person.identity,
        name=person.name,
        role=person.role,
        status=person.status,
        on_stage=person.on_stage,
        revision=person.revision,
        speaker=person.speaker,
        mic=person.mic,
        camera=person.camera,
        hand=person.hand,
        can_present=may.may_present(person),
        viewer_only=person.viewer_only,
        connected=member is not None and member.connected,
        speaking=member is not None and member.speaking,
        tracks=tracks,
    )


def counts(state: RoomState) -> wire.Counts:
    people = state.people
    on_stage = people.count(Index.STAGE)
    return wire.Counts(
        viewers=len(people) - on_stage,
        on_stage=on_stage,
        hands=people.count(Index.HANDS),
        requests=people.count(Index.REQUESTS),
    )


def policy(value: RoomPolicy) -> wire.Policy:
    return wire.Policy(
        mode=value.mode,
        stage_access=value.stage_access,
        capacity=value.capacity,
        full_policy=value.full_policy,
    )


def poll_info(poll: Poll, *, with_results: bool) -> wire.PollInfo:
    return wire.PollInfo(
        poll_id=poll.poll_id,
        question=poll.question,
        options=list(poll.options),
        closed=poll.closed,
        results=poll.results() if with_results or poll.closed else None,
    )


def publishing(member: Member) -> bool:
    return any(not producer.closed for producer in member.producers.values())


def visible_participants(
    state: RoomState,
    members: Mapping[ParticipantId, Member],
    viewer: Person,
    publishers: Collection[ParticipantId],
) -> list[wire.Participant]:
    """The participant list this person receives, in order of arrival: everyone, or
    the stage, those sending media (`publishers`: an off-stage presenter) and
    themselves; the latter costs the stage's size, not the room's."""
    people = state.people
    if full_view(viewer):
        shown = people.in_arrival_order()
    else:
        pids = {*people.index(Index.STAGE), *publishers, viewer.participant_id}
        shown = sorted((people[p] for p in pids if p in people),
                       key=lambda p: people.arrival(p.participant_id))  # fmt: skip
    return [describe(person, members.get(person.participant_id)) for person in shown]


def queue_entries(state: RoomState, key: str, now: float) -> list[wire.QueueEntry]:
    since = {"hand": "hand_at", "request": "request_at", "queued": "queued_at"}[key]
    return [
        wire.QueueEntry(
            participant_id=person.participant_id,
            name=person.name,
            position=position,
            waiting_seconds=round(max(0.0, now - (getattr(person, since) or now)), 1),
        )
        for position, person in enumerate(state.queue(key), start=1)
    ]


class Dispatcher:
    """Sends one transition's events, as messages, to the members each concerns."""

    def __init__(
        self,
        old: RoomState,
        new: RoomState,
        members: Mapping[ParticipantId, Member],
        now: float,
        *,
        ends_at: float | None = None,
    ) -> None:
        self.old = old
        self.new = new
        self.members = members
        self.now = now
        self.ends_at = ends_at  # when a room with no host or moderator ends by itself

    def _all(self, *, but: ParticipantId | None = None) -> Iterable[Member]:
        """Every member still in the room (not one leaving in this change)."""
        people = self.new.people
        for pid, member in self.members.items():
            if pid in people and pid != but:
                yield member

    def _seeing_all(self, *, moderators: bool = False) -> Iterable[tuple[Person, Member]]:
        """The full view (roster index), or only its hosts and moderators."""
        people = self.new.people
        for pid in people.index(Index.FULL_VIEW):
            person, member = people[pid], self.members.get(pid)
            if member is not None and (not moderators or may.is_moderator(person)):
                yield person, member

    def everyone(self, message: wire.ServerMessage, *, but: ParticipantId | None = None) -> None:
        broadcast(message, self._all(but=but))

    def full_view(
        self,
        message: wire.ServerMessage,
        *,
        also: ParticipantId | None = None,
        but: ParticipantId | None = None,
    ) -> None:
        recipients = [m for p, m in self._seeing_all() if p.participant_id != but]
        people = self.new.people
        if also is not None and also in people and also not in people.index(Index.FULL_VIEW):
            extra = self.members.get(also)
            if extra is not None:
                recipients.append(extra)
        broadcast(message, recipients)

    def moderators(self, message: wire.ServerMessage, *, but: ParticipantId | None = None) -> None:
        broadcast(message, (m for p, m in self._seeing_all(moderators=True)
                            if p.participant_id != but))  # fmt: skip

    def to(self, participant_id: ParticipantId, message: wire.ServerMessage) -> None:
        member = self.members.get(participant_id)
        if member is not None:
            member.send(message)

    def about(
        self, participant_id: ParticipantId, message: wire.ServerMessage, *, public: bool = False
    ) -> None:
        """A change to one person: everyone if they are or were on stage, or send
        media (an off-stage presenter), else the full view."""
        before = self.old.people.get(participant_id)
        after = self.new.people.get(participant_id)
        member = self.members.get(participant_id)
        public = (
            public
            or (before is not None and before.on_stage)
            or (after is not None and after.on_stage)
            or (member is not None and publishing(member))
        )
        if public:
            self.everyone(message)
        else:
            self.full_view(message, also=participant_id)

    def route(self, events: Iterable[ev.StageEvent]) -> None:
        queues_changed = False
        for event in events:
            match event:
                case ev.PersonChanged(participant_id=pid):
                    person = self.new.people[pid]
                    self.about(pid, wire.ParticipantUpdated(
                        participant=describe(person, self.members.get(pid))
                    ))  # fmt: skip
                case ev.PersonEntered(participant_id=pid):
                    person = self.new.people[pid]
                    message = wire.ParticipantJoined(
                        participant=describe(person, self.members.get(pid))
                    )
                    if person.on_stage:
                        self.everyone(message, but=pid)
                    else:
                        self.full_view(message, but=pid)
                case ev.PersonExited(participant_id=pid):
                    self.about(pid, wire.ParticipantLeft(participant_id=pid))
                case ev.Invited(target=target, by=by, expires_at=expires_at, revision=revision):
                    inviter = self.new.people.get(by)
                    self.to(target, wire.Invited(
                        by=by,
                        by_name=inviter.name if inviter else "",
                        revision=revision,
                        expires_in=round(max(0.0, expires_at - self.now), 1),
                    ))  # fmt: skip
                case ev.InvitationEnded(target=target, reason=reason):
                    ended = wire.InvitationEnded(participant_id=target, reason=reason.value)
                    self.to(target, ended)
                    self.moderators(ended, but=target)
                case ev.RequestDeclined(target=target):
                    self.to(target, wire.RequestDeclined())
                case ev.RequestCancelled(target=target):
                    self.to(target, wire.RequestCancelled(reason="policy_changed"))
                case ev.LeftStage(target=target, reason=reason, by=by):
                    remover = self.new.people.get(by) if by is not None else None
                    self.to(target, wire.StageLeft(
                        reason=reason.value, by=by, by_name=remover.name if remover else None
                    ))  # fmt: skip
                case ev.DeviceForced(target=target, device=device, state=state, by=by):
                    actor = self.new.people.get(by)
                    self.to(target, wire.DeviceForced(
                        device=device, state=state, by=by, by_name=actor.name if actor else ""
                    ))  # fmt: skip
                case ev.QueuesChanged():
                    queues_changed = True
                case ev.PolicyChanged():
                    self.everyone(wire.PolicyChanged(policy=policy(self.new.policy)))
                case ev.PollChanged(poll_id=poll_id):
                    self._poll(poll_id)
                case ev.Kicked():
                    pass  # the room ends the session; others see participant_left
                case ev.HostLeft(participant_id=pid):
                    self.everyone(self.host_left(pid))
                case ev.RoomEnded():
                    pass  # the room says goodbye to everyone, then closes
        if queues_changed:
            self.moderators(self.queues())

    def host_left(self, participant_id: ParticipantId) -> wire.HostLeft:
        gone = self.old.people[participant_id]
        ends_in = None if self.ends_at is None else round(max(0.0, self.ends_at - self.now), 1)
        return wire.HostLeft(
            participant_id=participant_id,
            name=gone.name,
            role="host" if gone.role is Role.HOST else "moderator",
            moderators=self.new.people.count(Index.MODERATORS),
            ends_in=ends_in,
        )

    def queues(self) -> wire.Queues:
        return wire.Queues(
            hands=queue_entries(self.new, "hand", self.now),
            requests=queue_entries(self.new, "request", self.now),
            seats=queue_entries(self.new, "queued", self.now),
        )

    def _poll(self, poll_id: str) -> None:
        poll = self.new.polls[poll_id]
        before = self.old.polls.get(poll_id)
        if before is None or before.closed != poll.closed:
            moderators = {p.participant_id for p, _ in self._seeing_all(moderators=True)}
            self.moderators(wire.Poll(poll=poll_info(poll, with_results=True)))
            viewers = (m for m in self._all() if m.participant_id not in moderators)
            broadcast(wire.Poll(poll=poll_info(poll, with_results=False)), viewers)
        else:  # a vote: results go to hosts and moderators only
            self.moderators(wire.Poll(poll=poll_info(poll, with_results=True)))


# Plain viewers' counts go out on the room's tick, but never more than this many
# deliveries a second per room: in a town hall of 5 000 the counts then refresh every
# 2.5 s, and the fan-out costs the same per second whatever the audience.
COUNTS_DELIVERIES_PER_SECOND = 2000


class Audiences:
    """Who hears what in one room: the stage's changes, a member's own view on joining,
    its connection and tracks, and plain viewers' counts. Reads the room's members
    (never changes who is in the room) and is told the stage state with each call."""

    def __init__(self, *, room: str, members: Mapping[ParticipantId, Member]) -> None:
        self._room = room
        self._members = members  # the room's, read only
        self._counts_sent: wire.Counts | None = None
        self._counts_due = 0.0  # when viewers may next be sent counts

    def tell(
        self,
        old: RoomState,
        new: RoomState,
        events: tuple[ev.StageEvent, ...],
        now: float,
        *,
        publishers: Collection[ParticipantId],
        ends_at: float | None = None,
    ) -> None:
        """After a stage change: route its events to their audiences, then bring the
        view of each person it touched up to date (a full list for those who now see
        everyone, counts for those who no longer do, the queues for new moderators). A
        view depends only on its owner's own role and status, so nobody else's can have
        changed."""
        members = self._members
        dispatcher = Dispatcher(old, new, members, now, ends_at=ends_at)
        dispatcher.route(events)
        entered = {e.participant_id for e in events if isinstance(e, ev.PersonEntered)}
        touched = entered | {e.participant_id for e in events if isinstance(e, ev.PersonChanged)}
        for pid in touched:
            person, member = new.people.get(pid), members.get(pid)
            if person is None or member is None:
                continue
            full = full_view(person)
            if pid in entered:  # `joined` carries their first view; queues come apart
                member.full_view = full
                if may.is_moderator(person):
                    member.send(dispatcher.queues())
                continue
            if full and not member.full_view:
                member.send(wire.Snapshot(
                    participants=visible_participants(new, members, person, publishers),
                    counts=counts(new),
                ))  # fmt: skip
            elif member.full_view and not full:
                member.send(wire.CountsChanged(counts=counts(new)))  # no stale numbers
            before = old.people.get(pid)
            promoted = before is not None and not may.is_moderator(before)
            if may.is_moderator(person) and (promoted or not member.full_view):
                member.send(dispatcher.queues())
            member.full_view = full

    def joined(
        self,
        state: RoomState,
        member: Member,
        *,
        entry: wire.Entry,
        publishers: Collection[ParticipantId],
    ) -> wire.Joined:
        """The answer to a join or resume: the room as this member may see it (and from
        now on, whether it sees everyone)."""
        person = state.people[member.participant_id]
        member.full_view = full_view(person)
        return wire.Joined(
            id=None,
            protocol=wire.PROTOCOL_VERSION,
            participant_id=member.participant_id,
            room=self._room,
            role=person.role,
            entry=entry,
            resume_token=member.resume_token,
            you=describe(person, member),
            entries=may.entries(person, state.policy),
            policy=policy(state.policy),
            counts=counts(state),
            participants=visible_participants(state, self._members, person, publishers),
            polls=[
                poll_info(poll, with_results=may.is_moderator(person))
                for poll in state.polls.values()
            ],
        )

    def queues(self, state: RoomState, member: Member, now: float) -> None:
        """Send a moderator the queues (a resumed one: the list alone has no order)."""
        member.send(Dispatcher(state, state, self._members, now).queues())

    def announce(
        self, state: RoomState, member: Member, now: float, *, tracks_changed: bool = False
    ) -> None:
        """Tell the audience about a member's connection or tracks (a track change
        goes to everyone: they all received, or stop receiving, that media)."""
        person = state.people.get(member.participant_id)
        if person is None:
            return
        dispatcher = Dispatcher(state, state, self._members, now)
        dispatcher.about(
            person.participant_id,
            wire.ParticipantUpdated(participant=describe(person, member)),
            public=tracks_changed,
        )

    def refresh_counts(self, state: RoomState, now: float) -> None:
        """On the tick: plain viewers get the counts if they changed, at most
        COUNTS_DELIVERIES_PER_SECOND deliveries a second."""
        latest = counts(state)
        if latest != self._counts_sent and now >= self._counts_due:
            self._counts_sent = latest
            viewers = [m for m in self._members.values() if not m.full_view]
            self._counts_due = now + len(viewers) / COUNTS_DELIVERIES_PER_SECOND
            broadcast(wire.CountsChanged(counts=latest), viewers)
