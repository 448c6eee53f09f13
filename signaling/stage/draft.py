"""The working copy a transition edits, and how a transition refuses.

Split from machine.py so the helpers in devices.py and polls.py can take a `Draft`
and refuse without importing the machine (which imports them).
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType

from . import events as ev
from .model import ParticipantId, Person, RoomState, StageStatus


class Refusal(StrEnum):
    FORBIDDEN = "forbidden"
    CONFLICT = "conflict"
    NOT_FOUND = "not_found"
    STAGE_FULL = "stage_full"
    BANNED = "banned"
    INVALID = "invalid_argument"


class StageError(Exception):
    def __init__(self, code: Refusal, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Draft:
    """A working copy; the input state is never touched."""

    def __init__(self, state: RoomState, now: float) -> None:
        self.now = now
        self.policy = state.policy
        self.people = dict(state.people)
        self.banned = state.banned
        self.polls = dict(state.polls)
        self.seq = state.next_seq
        self.events: list[ev.StageEvent] = []
        self._changed: list[ParticipantId] = []

    def person(self, participant_id: ParticipantId | None) -> Person:
        person = self.people.get(participant_id) if participant_id is not None else None
        if person is None:
            raise StageError(Refusal.NOT_FOUND, f"participant {participant_id} is not in the room")
        return person

    def put(self, person: Person) -> Person:
        self.people[person.participant_id] = person
        if person.participant_id not in self._changed:
            self._changed.append(person.participant_id)
        return person

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq - 1

    def emit(self, event: ev.StageEvent) -> None:
        self.events.append(event)

    @property
    def stage_count(self) -> int:
        return sum(1 for p in self.people.values() if p.status is StageStatus.ON_STAGE)

    def build(self) -> tuple[RoomState, tuple[ev.StageEvent, ...]]:
        entered = {e.participant_id for e in self.events if isinstance(e, ev.PersonEntered)}
        changed = tuple(
            ev.PersonChanged(pid)
            for pid in self._changed
            if pid in self.people and pid not in entered  # news of arrival says it all
        )
        state = RoomState(
            policy=self.policy,
            people=MappingProxyType(self.people),
            banned=self.banned,
            polls=MappingProxyType(self.polls),
            next_seq=self.seq,
        )
        return state, changed + tuple(self.events)


def require(condition: bool, code: Refusal, message: str) -> None:
    if not condition:
        raise StageError(code, message)
