"""The stage state machine: `transition(state, actor, command, now)`.

Pure: no I/O, no clock reads. A refused command raises StageError and the
caller keeps the old state, so a refusal never changes anything.
"""

from __future__ import annotations

from dataclasses import replace
from typing import assert_never

from .. import permissions as may
from ..roles import Role
from . import commands as c
from . import events as ev
from .devices import chosen, device_state, force_off, set_device, turned_off, with_device
from .draft import Draft, Refusal, StageError, require
from .model import (
    DeviceState,
    FullStagePolicy,
    Invitation,
    ParticipantId,
    Person,
    RoomMode,
    RoomState,
    StageAccess,
    StageStatus,
)
from .polls import MAX_POLL_OPTIONS, MAX_POLL_TEXT, close_poll, create_poll, vote
from .roster import Index

# re-exported: callers import the refusals and the poll limits from here
__all__ = ["MAX_POLL_OPTIONS", "MAX_POLL_TEXT", "Refusal", "StageError", "transition"]


def transition(
    state: RoomState, actor: ParticipantId | None, command: c.Command, now: float
) -> tuple[RoomState, tuple[ev.StageEvent, ...]]:
    """Apply one command by `actor` (None for the system) at time `now`."""
    draft = Draft(state, now)
    _apply(draft, actor, command)
    return draft.build()


def _apply(d: Draft, actor_id: ParticipantId | None, command: c.Command) -> None:
    match command:
        case c.Enter():
            _enter(d, command)
        case c.Exit():
            _exit(d, d.person(command.participant_id), kicked=False)
        case c.Expire():
            _expire(d)
        case c.Spoke():
            person = d.get(command.participant_id)
            if person is not None:  # bookkeeping for the full-stage policy, not news
                d.store(replace(person, last_spoke_at=d.now))
        case _:
            actor = d.person(actor_id)
            _apply_by(d, actor, command)


def _apply_by(d: Draft, actor: Person, command: c.Command) -> None:
    match command:
        case c.JoinStage():
            _join_stage(d, actor, command.mic_on, command.camera_on)
        case c.LeaveStage():
            _leave_stage(d, actor)
        case c.RequestStage():
            _request_stage(d, actor)
        case c.CancelRequest():
            require(actor.status is StageStatus.REQUESTED, Refusal.CONFLICT, "no request to cancel")
            d.put(_to(actor, StageStatus.VIEWER))
            d.emit(ev.QueuesChanged())
        case c.AcceptInvitation():
            _accept(d, actor, command)
        case c.DeclineInvitation():
            invitation = _current_invitation(actor, command.revision)
            d.put(_to(actor, StageStatus.VIEWER))
            d.emit(ev.InvitationEnded(actor.participant_id, invitation.by, ev.EndReason.DECLINED))
        case c.SetDevice():
            set_device(d, actor, command.device, command.on)
        case c.RaiseHand():
            if actor.hand is None:
                d.put(replace(actor, hand=d.next_seq(), hand_at=d.now))
                d.emit(ev.QueuesChanged())
        case c.LowerHand(target=target) if target in (None, actor.participant_id):
            _lower_hand(d, actor)
        case c.LowerHand(target=target):
            _moderator(actor)
            _lower_hand(d, d.person(target))
        case c.Vote():
            vote(d, actor, command)
        case c.EndRoom():
            require(may.may_end_room(actor), Refusal.FORBIDDEN,
                    "only hosts may end the room for everyone")  # fmt: skip
            d.emit(ev.RoomEnded(actor.participant_id))
        case _:
            _moderator(actor)
            _moderate(d, actor, command)


def _moderate(d: Draft, actor: Person, command: c.Command) -> None:
    match command:
        case c.ApproveRequest(target=target, revision=revision):
            person = _target_at(d, target, revision)
            require(person.status is StageStatus.REQUESTED, Refusal.CONFLICT, "no pending request")
            _invite(d, actor, person, approved_request=True)
        case c.DeclineRequest(target=target, revision=revision):
            person = _target_at(d, target, revision)
            require(person.status is StageStatus.REQUESTED, Refusal.CONFLICT, "no pending request")
            d.put(_to(person, StageStatus.VIEWER))
            d.emit(ev.RequestDeclined(person.participant_id))
            d.emit(ev.QueuesChanged())
        case c.Invite(target=target, revision=revision):
            person = _target_at(d, target, revision)
            require(person.participant_id != actor.participant_id, Refusal.CONFLICT,
                    "join the stage instead of inviting yourself")  # fmt: skip
            require(may.may_be_invited(person), Refusal.FORBIDDEN, "this participant only watches")
            require(
                person.status in (StageStatus.VIEWER, StageStatus.REQUESTED),
                Refusal.CONFLICT,
                f"cannot invite someone who is {person.status}",
            )
            _invite(d, actor, person, approved_request=person.status is StageStatus.REQUESTED)
        case c.RevokeInvitation(target=target, revision=revision):
            person = _target_at(d, target, revision)
            require(person.status is StageStatus.INVITED and person.invitation is not None,
                    Refusal.CONFLICT, "no pending invitation")  # fmt: skip
            inviter = person.invitation.by if person.invitation else actor.participant_id
            d.put(_to(person, StageStatus.VIEWER))
            d.emit(ev.InvitationEnded(person.participant_id, inviter, ev.EndReason.REVOKED))
        case c.RemoveFromStage(target=target, revision=revision):
            person = _target_at(d, target, revision)
            require(
                person.status in (StageStatus.ON_STAGE, StageStatus.QUEUED),
                Refusal.CONFLICT,
                "not on stage",
            )
            _off_stage(d, person, ev.StageExitReason.REMOVED, by=actor.participant_id)
            _fill_seats(d)
        case c.Mute(target=target, device=device, lock=lock):
            person = d.person(target)
            require(person.participant_id != actor.participant_id, Refusal.CONFLICT,
                    "turn your own devices off with set_device")  # fmt: skip
            require(person.on_stage, Refusal.CONFLICT, "not on stage")
            force_off(d, actor, person, device, lock)
        case c.Unlock(target=target, device=device):
            person = d.person(target)
            require(
                device_state(person, device) is DeviceState.LOCKED, Refusal.CONFLICT, "not locked"
            )
            # never turns it on; off the stage a device is only off or locked
            unlocked = DeviceState.MUTED if person.on_stage else DeviceState.OFF
            updated = d.put(with_device(person, device, unlocked))
            d.emit(ev.DeviceForced(updated.participant_id, device, unlocked,
                                   actor.participant_id))  # fmt: skip
        case c.MuteAll(device=device, lock=lock):
            for person in d.indexed(Index.STAGE):
                if person.participant_id != actor.participant_id:
                    force_off(d, actor, person, device, lock)
        case c.LowerAllHands():
            for person in d.indexed(Index.HANDS):
                d.put(replace(person, hand=None, hand_at=None))
            d.emit(ev.QueuesChanged())
        case c.SetStageAccess(access=access):
            d.policy = replace(d.policy, stage_access=access)
            _purge_requests_if_closed(d)
            d.emit(ev.PolicyChanged())
        case c.SetRoomMode(mode=mode):
            d.policy = replace(d.policy, mode=mode)
            _purge_requests_if_closed(d)
            d.emit(ev.PolicyChanged())
        case c.SetCapacity(capacity=capacity, full_policy=full_policy):
            require(1 <= capacity <= 100, Refusal.INVALID, "capacity must be 1..100")
            require(capacity >= d.stage_count, Refusal.CONFLICT,
                    f"{d.stage_count} people are on stage; remove some first")  # fmt: skip
            d.policy = replace(d.policy, capacity=capacity, full_policy=full_policy)
            if full_policy is not FullStagePolicy.QUEUE:
                dropped = d.indexed(Index.QUEUED)
                for person in dropped:
                    d.put(_to(person, StageStatus.VIEWER))
                if dropped:
                    d.emit(ev.QueuesChanged())
            _fill_seats(d)
            d.emit(ev.PolicyChanged())
        case c.SetRole(target=target, role=role):
            person = _rights_target(d, actor, target)
            require(may.may_grant_role(actor, role), Refusal.FORBIDDEN,
                    f"a {actor.role} cannot grant the {role} role")  # fmt: skip
            d.put(replace(person, role=role))
        case c.SetSpeaker(target=target, speaker=speaker):
            person = _rights_target(d, actor, target)
            d.put(replace(person, speaker=speaker))
        case c.SetPermission(target=target, permission=permission, granted=granted):
            person = _rights_target(d, actor, target)
            grants = person.granted | {permission} if granted else person.granted - {permission}
            d.put(replace(person, granted=frozenset(grants)))
        case c.Kick(target=target):
            person = _rights_target(d, actor, target)
            # the ban is by identity: every session of it leaves, and each must be one the
            # actor may remove (so nobody bans themselves through another session)
            sessions = d.sessions(person.identity)
            for session in sessions:
                require(may.may_change_rights_of(actor, session), Refusal.FORBIDDEN,
                        f"a {actor.role} cannot remove a {session.role}")  # fmt: skip
            d.banned = d.banned | {person.identity}
            for session in sessions:
                current = d.get(session.participant_id)
                if current is not None:  # re-read: an earlier exit may have seated it
                    d.emit(ev.Kicked(current.participant_id))
                    _exit(d, current, kicked=True)
        case c.CreatePoll():
            create_poll(d, actor, command)
        case c.ClosePoll(poll_id=poll_id):
            close_poll(d, poll_id)
        case (
            c.Enter() | c.Exit() | c.Expire() | c.Spoke() | c.JoinStage() | c.LeaveStage()
            | c.RequestStage() | c.CancelRequest() | c.AcceptInvitation()
            | c.DeclineInvitation() | c.SetDevice() | c.RaiseHand() | c.LowerHand() | c.Vote()
            | c.EndRoom()
        ):  # fmt: skip
            raise AssertionError(f"{type(command).__name__} is not a moderation command")
        case _:
            assert_never(command)


# -- entering and leaving the room ------------------------------------------------------
def _enter(d: Draft, command: c.Enter) -> None:
    require(command.identity not in d.banned, Refusal.BANNED, "removed from this room")
    require(d.get(command.participant_id) is None, Refusal.CONFLICT, "already in the room")
    person = Person(
        participant_id=command.participant_id,
        identity=command.identity,
        name=command.name,
        role=command.role,
        joined_at=d.now,
        viewer_only=command.viewer_only,
    )
    if command.on_stage:
        require(may.may_self_join(person, d.policy), Refusal.FORBIDDEN, _why_not_join(person, d))
        d.store(person)
        _seat(d, person, command.mic_on, command.camera_on)
    else:
        d.put(person)
    d.emit(ev.PersonEntered(person.participant_id))


def _exit(d: Draft, person: Person, *, kicked: bool) -> None:
    if person.status is StageStatus.INVITED and person.invitation is not None:
        d.emit(ev.InvitationEnded(person.participant_id, person.invitation.by, ev.EndReason.LEFT))
    if person.hand is not None or person.request is not None or person.queued is not None:
        d.emit(ev.QueuesChanged())
    was_on_stage = person.on_stage
    d.remove(person.participant_id)
    d.emit(ev.PersonExited(person.participant_id))
    if _was_last_to_run(d, person):
        d.emit(ev.HostLeft(person.participant_id))
    if was_on_stage:
        _fill_seats(d)


def _was_last_to_run(d: Draft, gone: Person) -> bool:
    """Whether the room is left without a host by this departure: the last host, or,
    with no host in the room, the last moderator. (Costs the hosts and moderators in
    the room, and only when one of them leaves.)"""
    if gone.role is Role.PARTICIPANT or d.indexed(Index.HOSTS):
        return False
    return gone.role is Role.HOST or not d.indexed(Index.MODERATORS)


def _expire(d: Draft) -> None:
    for person in d.indexed(Index.INVITED):  # by expiry: stop at the first still valid
        invitation = person.invitation
        assert invitation is not None
        if invitation.expires_at > d.now:
            break
        if person.status is StageStatus.INVITED:
            d.put(_to(person, StageStatus.VIEWER))
            d.emit(ev.InvitationEnded(person.participant_id, invitation.by, ev.EndReason.EXPIRED))


# -- the stage ------------------------------------------------------------------------------
def _join_stage(d: Draft, person: Person, mic_on: bool, camera_on: bool) -> None:
    require(person.status is not StageStatus.ON_STAGE, Refusal.CONFLICT, "already on stage")
    require(person.status is not StageStatus.QUEUED, Refusal.CONFLICT, "already waiting for a seat")
    require(may.may_self_join(person, d.policy), Refusal.FORBIDDEN, _why_not_join(person, d))
    if person.status is StageStatus.INVITED and person.invitation is not None:
        d.emit(
            ev.InvitationEnded(person.participant_id, person.invitation.by, ev.EndReason.ACCEPTED)
        )
    if person.status is StageStatus.REQUESTED:
        d.emit(ev.QueuesChanged())
    _seat(d, person, mic_on, camera_on)


def _why_not_join(person: Person, d: Draft) -> str:
    if person.viewer_only:
        return "this client joined as viewer-only"
    if d.policy.mode is RoomMode.PANEL:
        return "in a panel room participants reach the stage by invitation"
    if d.policy.stage_access is StageAccess.REQUEST:
        return "stage access is by request: ask to join the stage"
    return "stage access is by invitation only"


def _request_stage(d: Draft, person: Person) -> None:
    if person.status in (StageStatus.REQUESTED, StageStatus.INVITED):
        return  # idempotent; an invitation already answers the request
    require(person.status is StageStatus.VIEWER, Refusal.CONFLICT, f"already {person.status}")
    require(not may.may_self_join(person, d.policy), Refusal.CONFLICT,
            "you may join the stage directly")  # fmt: skip
    require(may.may_request(person, d.policy), Refusal.FORBIDDEN, _why_not_join(person, d))
    seq = d.next_seq()
    d.put(replace(_to(person, StageStatus.REQUESTED), request=seq, request_at=d.now))
    d.emit(ev.QueuesChanged())


def _invite(d: Draft, actor: Person, person: Person, *, approved_request: bool) -> None:
    invited = _to(person, StageStatus.INVITED)
    invitation = Invitation(
        by=actor.participant_id,
        sent_at=d.now,
        expires_at=d.now + d.policy.invitation_ttl,
        revision=invited.revision,
        approved_request=approved_request,
    )
    d.put(replace(invited, invitation=invitation))
    d.emit(ev.Invited(person.participant_id, actor.participant_id, invitation.expires_at,
                      invited.revision))  # fmt: skip
    if approved_request:
        d.emit(ev.QueuesChanged())


def _current_invitation(person: Person, revision: int) -> Invitation:
    invitation = person.invitation
    require(
        person.status is StageStatus.INVITED and invitation is not None,
        Refusal.CONFLICT,
        "no pending invitation (it was revoked, expired or answered)",
    )
    assert invitation is not None
    require(revision == person.revision, Refusal.CONFLICT,
            "that invitation is no longer current")  # fmt: skip
    return invitation


def _accept(d: Draft, person: Person, command: c.AcceptInvitation) -> None:
    invitation = _current_invitation(person, command.revision)
    # Expire may not have run yet; past the deadline (as Expire counts it) it is over
    require(d.now < invitation.expires_at, Refusal.CONFLICT, "that invitation expired")
    _seat(d, person, command.mic_on, command.camera_on)
    seated = d.person(person.participant_id)
    reason = ev.EndReason.ACCEPTED if seated.on_stage else ev.EndReason.STAGE_FULL
    d.emit(ev.InvitationEnded(person.participant_id, invitation.by, reason))


def _seat(d: Draft, person: Person, mic_on: bool, camera_on: bool) -> None:
    """Put a person on stage, applying the full-stage policy; raises STAGE_FULL."""
    policy = d.policy
    if d.stage_count >= policy.capacity:
        evictable = [
            p for p in d.indexed(Index.STAGE) if p.role is Role.PARTICIPANT and not p.speaker
        ]
        evicts = person.is_moderator or policy.full_policy is FullStagePolicy.EVICT_SILENT
        if evicts and evictable:
            silent = min(evictable, key=lambda p: (p.silent_since, p.participant_id))
            _off_stage(d, silent, ev.StageExitReason.STAGE_FULL)
        elif policy.full_policy is FullStagePolicy.QUEUE and not person.is_moderator:
            queued = _to(person, StageStatus.QUEUED)
            d.put(replace(
                queued,
                queued=d.next_seq(),
                queued_at=d.now,
                mic=chosen(person.mic, mic_on),
                camera=chosen(person.camera, camera_on),
            ))  # fmt: skip
            d.emit(ev.QueuesChanged())
            return
        else:
            raise StageError(Refusal.STAGE_FULL, f"the stage is full ({policy.capacity} seats)")
    seated = _to(person, StageStatus.ON_STAGE)
    d.put(replace(
        seated,
        on_stage_since=d.now,
        mic=chosen(person.mic, mic_on),
        camera=chosen(person.camera, camera_on),
        hand=None,  # being brought on stage answers a raised hand
        hand_at=None,
    ))  # fmt: skip
    if person.hand is not None:
        d.emit(ev.QueuesChanged())


def _fill_seats(d: Draft) -> None:
    """Free seats go to the seat queue, first come first served."""
    while d.stage_count < d.policy.capacity:
        waiting = d.indexed(Index.QUEUED)
        if not waiting:
            return
        first = waiting[0]
        _seat(d, first, first.mic.live, first.camera.live)
        d.emit(ev.QueuesChanged())


def _leave_stage(d: Draft, person: Person) -> None:
    require(person.status in (StageStatus.ON_STAGE, StageStatus.QUEUED), Refusal.CONFLICT,
            "not on stage")  # fmt: skip
    _off_stage(d, person, ev.StageExitReason.LEFT)
    _fill_seats(d)


def _off_stage(
    d: Draft, person: Person, reason: ev.StageExitReason, *, by: ParticipantId | None = None
) -> None:
    was_queued = person.status is StageStatus.QUEUED
    d.put(_to(person, StageStatus.VIEWER))
    if was_queued:
        d.emit(ev.QueuesChanged())
    else:
        d.emit(ev.LeftStage(person.participant_id, reason, by))


def _purge_requests_if_closed(d: Draft) -> None:
    if d.policy.stage_access is StageAccess.REQUEST and d.policy.mode is RoomMode.INTERACTIVE:
        return
    for person in d.indexed(Index.REQUESTS):
        if person.status is StageStatus.REQUESTED:
            d.put(_to(person, StageStatus.VIEWER))
            d.emit(ev.RequestCancelled(person.participant_id))
            d.emit(ev.QueuesChanged())


def _to(person: Person, status: StageStatus) -> Person:
    """A stage transition: bumps the revision and clears what the old status held."""
    off = status is not StageStatus.ON_STAGE and status is not StageStatus.QUEUED
    return replace(
        person,
        status=status,
        revision=person.revision + 1,
        request=None if status is not StageStatus.REQUESTED else person.request,
        request_at=None if status is not StageStatus.REQUESTED else person.request_at,
        queued=None,
        queued_at=None,
        invitation=None,
        on_stage_since=person.on_stage_since if status is StageStatus.ON_STAGE else None,
        mic=turned_off(person.mic) if off else person.mic,
        camera=turned_off(person.camera) if off else person.camera,
    )


def _lower_hand(d: Draft, person: Person) -> None:
    if person.hand is not None:
        d.put(replace(person, hand=None, hand_at=None))
        d.emit(ev.QueuesChanged())


# -- guards -----------------------------------------------------------------------------------
def _moderator(actor: Person) -> None:
    require(may.is_moderator(actor), Refusal.FORBIDDEN, "only hosts and moderators may do this")


def _target_at(d: Draft, target: ParticipantId, revision: int) -> Person:
    person = d.person(target)
    require(
        person.revision == revision,
        Refusal.CONFLICT,
        f"{person.name}'s stage state changed (revision {person.revision}, not {revision})",
    )
    return person


def _rights_target(d: Draft, actor: Person, target: ParticipantId) -> Person:
    person = d.person(target)
    require(may.may_change_rights_of(actor, person), Refusal.FORBIDDEN,
            f"a {actor.role} cannot change this for a {person.role}")  # fmt: skip
    return person
