"""Everyone in a room, with the indices that let a step touch only the people it concerns.

A town hall has thousands of people and a command changes one or two of them. Copying
or scanning everyone for each command would make every step cost as much as the room
(and filling a room quadratic), so the people and each index are persistent hash maps
(`immutables.Map`, the HAMT behind contextvars): a changed copy costs O(log n) per
changed person and shares the rest with the original, which stays valid, so
transitions remain pure functions of their input.

Each index maps the participants it holds to a sort key (ties, and indices without a
key of their own, go by order of arrival in the room); listing an index costs its own
size, never the room's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, TypeAlias

from immutables import Map

from ..roles import Role

if TYPE_CHECKING:  # model.py builds its RoomState on the roster
    from .model import ParticipantId, Person

SortKey: TypeAlias = float


class Index(StrEnum):
    STAGE = "stage"  # on stage
    QUEUED = "queued"  # waiting for a seat, in queue order
    HANDS = "hands"  # hand raised, in raising order
    REQUESTS = "requests"  # asked to join the stage, in asking order
    INVITED = "invited"  # holding an invitation, by its expiry
    FULL_VIEW = "full_view"  # sees everyone: moderators and anyone not a plain viewer
    HOSTS = "hosts"  # role host
    MODERATORS = "moderators"  # role moderator (hosts not included)


# A person's sequence fields are set exactly while the status they belong to lasts
# (machine.py `_to`), so each index reads one field.
def _stage(p: Person) -> SortKey | None:
    return 0 if p.on_stage else None


def _queued(p: Person) -> SortKey | None:
    return p.queued


def _hands(p: Person) -> SortKey | None:
    return p.hand


def _requests(p: Person) -> SortKey | None:
    return p.request


def _invited(p: Person) -> SortKey | None:
    return p.invitation.expires_at if p.invitation is not None else None


def _full_view(p: Person) -> SortKey | None:
    return 0 if p.in_full_view else None


def _hosts(p: Person) -> SortKey | None:
    return 0 if p.role is Role.HOST else None


def _moderators(p: Person) -> SortKey | None:
    return 0 if p.role is Role.MODERATOR else None


KEYS: Mapping[Index, Callable[[Person], SortKey | None]] = {
    Index.STAGE: _stage,
    Index.QUEUED: _queued,
    Index.HANDS: _hands,
    Index.REQUESTS: _requests,
    Index.INVITED: _invited,
    Index.FULL_VIEW: _full_view,
    Index.HOSTS: _hosts,
    Index.MODERATORS: _moderators,
}


class Roster(Mapping["ParticipantId", "Person"]):
    """An immutable mapping of participant id to Person, plus indices, each identity's
    sessions and the order of arrival. Iteration order is not meaningful: use `ordered`
    or `in_arrival_order`."""

    __slots__ = ("_arrival", "_indices", "_people", "_sessions", "next_arrival")

    def __init__(self) -> None:
        self._people: Map[ParticipantId, Person] = Map()
        self._indices: dict[Index, Map[ParticipantId, SortKey]] = {name: Map() for name in Index}
        self._sessions: Map[str, tuple[ParticipantId, ...]] = Map()
        self._arrival: Map[ParticipantId, int] = Map()
        self.next_arrival = 0  # the arrival number the next newcomer gets

    @classmethod
    def of(cls, people: Mapping[ParticipantId, Person] | Iterable[Person]) -> Roster:
        """Built from scratch (tests, restored state), arriving in the order given: O(n)."""
        if isinstance(people, Roster):
            return people
        listed = list(people.values()) if isinstance(people, Mapping) else list(people)
        return cls().changed({p.participant_id: p for p in listed})

    # -- Mapping --------------------------------------------------------------------------
    def __getitem__(self, participant_id: ParticipantId) -> Person:
        return self._people[participant_id]

    def __iter__(self) -> Iterator[ParticipantId]:
        return iter(self._people)

    def __len__(self) -> int:
        return len(self._people)

    def __contains__(self, participant_id: object) -> bool:
        return participant_id in self._people

    # -- indices ----------------------------------------------------------------------------
    def index(self, name: Index) -> Map[ParticipantId, SortKey]:
        return self._indices[name]

    def count(self, name: Index) -> int:
        return len(self._indices[name])

    def arrival(self, participant_id: ParticipantId) -> int:
        """When this person arrived, relative to the others (-1 if not here)."""
        return self._arrival.get(participant_id, -1)

    def ordered(self, name: Index) -> list[Person]:
        """The people in one index, by its sort key, then by arrival."""
        people, arrival = self._people, self._arrival
        entries = sorted(self._indices[name].items(), key=lambda kv: (kv[1], arrival[kv[0]]))
        return [people[pid] for pid, _ in entries]

    def in_arrival_order(self) -> list[Person]:
        """Everyone, oldest first: O(n log n), for full lists only."""
        people = self._people
        return [people[pid] for pid, _ in sorted(self._arrival.items(), key=lambda kv: kv[1])]

    def sessions(self, identity: str) -> tuple[ParticipantId, ...]:
        """The participant ids one identity is in the room with, oldest first."""
        return self._sessions.get(identity, ())

    # -- change -----------------------------------------------------------------------------
    def changed(self, edits: Mapping[ParticipantId, Person | None]) -> Roster:
        """A copy with some people replaced, added (arriving in the order given) or, for
        None, removed: O(k log n) for k edits."""
        if not edits:
            return self
        people = self._people.mutate()
        indices = {name: index.mutate() for name, index in self._indices.items()}
        sessions = self._sessions.mutate()
        arrival = self._arrival.mutate()
        following = self.next_arrival
        for pid, new in edits.items():
            old = self._people.get(pid)
            if new is None:
                if old is not None:
                    del people[pid]
                    del arrival[pid]
            else:
                people[pid] = new
                if old is None:
                    arrival[pid] = following
                    following += 1
            for name, key in KEYS.items():
                before = key(old) if old is not None else None
                after = key(new) if new is not None else None
                if before == after:
                    continue
                if after is None:
                    del indices[name][pid]
                else:
                    indices[name][pid] = after
            if old is None and new is not None:
                sessions[new.identity] = (*sessions.get(new.identity, ()), pid)
            elif old is not None and new is None:
                rest = tuple(p for p in sessions.get(old.identity, ()) if p != pid)
                if rest:
                    sessions[old.identity] = rest
                else:
                    del sessions[old.identity]
        roster = Roster.__new__(Roster)
        roster._people = people.finish()
        roster._indices = {name: index.finish() for name, index in indices.items()}
        roster._sessions = sessions.finish()
        roster._arrival = arrival.finish()
        roster.next_arrival = following
        return roster
