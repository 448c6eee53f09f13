"""The working copy a transition edits, and how a transition refuses.

Split from machine.py so the helpers in devices.py and polls.py can take a `Draft`
and refuse without importing the machine (which imports them).
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType

from . import events as ev
from .model import ParticipantId, Person, RoomState
from .roster import KEYS, Index


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
    """A working copy; the input state is never touched. Edits are kept apart from the
    input's roster and applied once in `build`, so a transition costs what it changes,
    not the size of the room (roster.py)."""

    def __init__(self, state: RoomState, now: float) -> None:
        self.now = now
        self.policy = state.policy
        self.banned = state.banned
        self.polls = dict(state.polls)  # a handful per room
        self.seq = state.next_seq
        self.events: list[ev.StageEvent] = []
        self._roster = state.people
        self._edits: dict[ParticipantId, Person | None] = {}
        self._stage_count = state.people.count(Index.STAGE)
        self._changed: list[ParticipantId] = []

    # -- people -----------------------------------------------------------------------------
    def get(self, participant_id: ParticipantId) -> Person | None:
        if participant_id in self._edits:
            return self._edits[participant_id]
        return self._roster.get(participant_id)

    def person(self, participant_id: ParticipantId | None) -> Person:
        person = self.get(participant_id) if participant_id is not None else None
        if person is None:
            raise StageError(Refusal.NOT_FOUND, f"participant {participant_id} is not in the room")
        return person

    def put(self, person: Person) -> Person:
        """Store a changed person; the change is announced (PersonChanged)."""
        self.store(person)
        if person.participant_id not in self._changed:
            self._changed.append(person.participant_id)
        return person

    def store(self, person: Person) -> None:
        """Store a person without announcing it (a newcomer, or bookkeeping nobody sees)."""
        before = self.get(person.participant_id)
        self._stage_count += person.on_stage - (before is not None and before.on_stage)
        self._edits[person.participant_id] = person

    def remove(self, participant_id: ParticipantId) -> None:
        before = self.get(participant_id)
        if before is not None:
            self._stage_count -= before.on_stage
            self._edits[participant_id] = None

    def indexed(self, name: Index) -> list[Person]:
        """The current people in one index (roster.py), by its order: costs the
        index's size plus this draft's edits."""
        key, roster = KEYS[name], self._roster
        found = {
            pid: (sort_key, roster.arrival(pid), roster[pid])
            for pid, sort_key in roster.index(name).items()
            if pid not in self._edits
        }
        newcomer = roster.next_arrival  # arrive in the order they were stored
        for pid, edited in self._edits.items():
            arrived = roster.arrival(pid)
            if arrived < 0:
                arrived, newcomer = newcomer, newcomer + 1
            if edited is not None and (sort_key := key(edited)) is not None:
                found[pid] = (sort_key, arrived, edited)
        return [person for _, _, person in sorted(found.values(), key=lambda e: e[:2])]

    def sessions(self, identity: str) -> list[Person]:
        """Everyone in the room under one identity, oldest first."""
        pids = list(self._roster.sessions(identity))
        pids += [
            pid for pid, p in self._edits.items()
            if p is not None and p.identity == identity and pid not in pids
        ]  # fmt: skip
        return [p for pid in pids if (p := self.get(pid)) is not None]

    @property
    def stage_count(self) -> int:
        return self._stage_count

    # -- the rest -----------------------------------------------------------------------------
    def next_seq(self) -> int:
        self.seq += 1
        return self.seq - 1

    def emit(self, event: ev.StageEvent) -> None:
        self.events.append(event)

    def build(self) -> tuple[RoomState, tuple[ev.StageEvent, ...]]:
        entered = {e.participant_id for e in self.events if isinstance(e, ev.PersonEntered)}
        changed = tuple(
            ev.PersonChanged(pid)
            for pid in self._changed
            if self.get(pid) is not None and pid not in entered  # news of arrival says it all
        )
        state = RoomState(
            policy=self.policy,
            people=self._roster.changed(self._edits),
            banned=self.banned,
            polls=MappingProxyType(self.polls),
            next_seq=self.seq,
        )
        return state, changed + tuple(self.events)


def require(condition: bool, code: Refusal, message: str) -> None:
    if not condition:
        raise StageError(code, message)
