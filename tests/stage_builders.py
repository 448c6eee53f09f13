"""Builders for stage tests: people and rooms in a consistent shape, and a deep snapshot.

A built person holds exactly what its status implies (a request number when
REQUESTED, an invitation when INVITED, a seat time when ON_STAGE, ...), so a
test states only what matters to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from signaling.roles import Role
from signaling.stage.commands import Command
from signaling.stage.events import PersonChanged, StageEvent
from signaling.stage.machine import Refusal, StageError, transition
from signaling.stage.model import (
    DeviceState,
    FullStagePolicy,
    Invitation,
    ParticipantId,
    Permission,
    Person,
    Poll,
    RoomMode,
    RoomPolicy,
    RoomState,
    StageAccess,
    StageStatus,
)
from signaling.stage.roster import Roster

NOW = 100.0
TTL = 60.0
SEATED_AT = 10.0

HOST = Role.HOST
MODERATOR = Role.MODERATOR
PARTICIPANT = Role.PARTICIPANT

VIEWER = StageStatus.VIEWER
REQUESTED = StageStatus.REQUESTED
INVITED = StageStatus.INVITED
QUEUED = StageStatus.QUEUED
ON_STAGE = StageStatus.ON_STAGE

ON = DeviceState.ON
OFF = DeviceState.OFF
MUTED = DeviceState.MUTED
LOCKED = DeviceState.LOCKED


def pid(name: str) -> ParticipantId:
    return ParticipantId(name)


def person(
    name: str,
    role: Role = PARTICIPANT,
    *,
    status: StageStatus = VIEWER,
    speaker: bool = False,
    viewer_only: bool = False,
    identity: str | None = None,
    revision: int = 0,
    mic: DeviceState = OFF,
    camera: DeviceState = OFF,
    hand: int | None = None,
    seq: int = 1,
    invited_by: str = "inviter",
    expires_at: float = NOW + TTL,
    on_stage_since: float = SEATED_AT,
    last_spoke_at: float | None = None,
    joined_at: float = 0.0,
    granted: Iterable[Permission] = (),
) -> Person:
    """A person whose fields agree with `status`; `seq` numbers a request or a queue place."""
    return Person(
        participant_id=pid(name),
        identity=identity if identity is not None else name.lower(),
        name=name,
        role=role,
        joined_at=joined_at,
        speaker=speaker,
        granted=frozenset(granted),
        viewer_only=viewer_only,
        status=status,
        revision=revision,
        mic=mic,
        camera=camera,
        hand=hand,
        hand_at=None if hand is None else joined_at,
        request=seq if status is REQUESTED else None,
        request_at=joined_at if status is REQUESTED else None,
        queued=seq if status is QUEUED else None,
        queued_at=joined_at if status is QUEUED else None,
        invitation=(
            Invitation(
                by=pid(invited_by),
                sent_at=expires_at - TTL,
                expires_at=expires_at,
                revision=revision,
            )
            if status is INVITED
            else None
        ),
        on_stage_since=on_stage_since if status is ON_STAGE else None,
        last_spoke_at=last_spoke_at,
    )


def poll(
    poll_id: str = "lunch",
    *,
    options: tuple[str, ...] = ("pizza", "salad"),
    votes: Mapping[str, int] | None = None,
    closed: bool = False,
    question: str = "What for lunch?",
    created_by: str = "creator",
) -> Poll:
    return Poll(
        poll_id=poll_id,
        question=question,
        options=options,
        created_by=pid(created_by),
        votes=MappingProxyType(dict(votes or {})),
        closed=closed,
    )


def room(
    *people: Person,
    mode: RoomMode = RoomMode.INTERACTIVE,
    access: StageAccess = StageAccess.EVERYONE,
    capacity: int = 25,
    full: FullStagePolicy = FullStagePolicy.REJECT,
    polls: Iterable[Poll] = (),
    banned: Iterable[str] = (),
) -> RoomState:
    """A room holding `people`; the sequence counter continues after every number in use."""
    used = [n for p in people for n in (p.hand, p.request, p.queued) if n is not None]
    return RoomState(
        policy=RoomPolicy(
            mode=mode,
            stage_access=access,
            capacity=capacity,
            full_policy=full,
            invitation_ttl=TTL,
        ),
        people=Roster.of({p.participant_id: p for p in people}),
        banned=frozenset(banned),
        polls=MappingProxyType({p.poll_id: p for p in polls}),
        next_seq=max(used, default=0) + 1,
    )


def snapshot(state: RoomState) -> tuple[Any, ...]:
    """Everything in a state, copied out of its read-only views, to detect any mutation."""
    return (
        state.policy,
        dict(state.people),
        state.banned,
        {k: (p, dict(p.votes)) for k, p in state.polls.items()},
        state.next_seq,
    )


def apply(
    state: RoomState, actor: str | None, command: Command, now: float = NOW
) -> tuple[RoomState, tuple[StageEvent, ...]]:
    """One accepted transition; also checks that the input state was not touched."""
    before = snapshot(state)
    result = transition(state, None if actor is None else pid(actor), command, now)
    assert snapshot(state) == before, "transition mutated its input state"
    return result


def refusal(state: RoomState, actor: str | None, command: Command, now: float = NOW) -> Refusal:
    """The refusal code of a command that must be refused, after checking nothing changed."""
    before = snapshot(state)
    try:
        transition(state, None if actor is None else pid(actor), command, now)
    except StageError as error:
        assert snapshot(state) == before, "a refused command changed the state"
        return error.code
    raise AssertionError(f"{command!r} by {actor} was accepted")


def announced(events: Iterable[StageEvent]) -> list[StageEvent]:
    """Events other than the per-person change notices."""
    return [e for e in events if not isinstance(e, PersonChanged)]
