"""The stage's state: immutable values, replaced (never mutated) by transitions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType
from typing import NewType

from immutables import Map

from ..roles import Role
from .roster import Index, Roster

ParticipantId = NewType("ParticipantId", str)


class RoomMode(StrEnum):
    INTERACTIVE = "interactive"  # participants may reach the stage as stage access allows
    PANEL = "panel"  # participants reach the stage only by invitation


class StageAccess(StrEnum):
    EVERYONE = "everyone"  # join directly
    REQUEST = "request"  # ask, then a moderator brings to stage or declines
    INVITE_ONLY = "invite_only"


class FullStagePolicy(StrEnum):
    REJECT = "reject"
    EVICT_SILENT = "evict_silent"  # the participant silent the longest leaves the stage
    QUEUE = "queue"  # wait for a free seat, in order


class StageStatus(StrEnum):
    VIEWER = "viewer"
    REQUESTED = "requested"
    INVITED = "invited"
    QUEUED = "queued"  # waiting for a free seat (full-stage policy "queue")
    ON_STAGE = "on_stage"


class Device(StrEnum):
    MIC = "mic"
    CAMERA = "camera"


class DeviceState(StrEnum):
    """A mic or camera as everyone sees it. Nobody can turn another person's on."""

    ON = "on"
    OFF = "off"  # turned off by its owner
    MUTED = "muted"  # turned off by a moderator; the owner may turn it back on
    LOCKED = "locked"  # turned off by a moderator; stays off until a moderator unlocks

    @property
    def live(self) -> bool:
        return self is DeviceState.ON


class Permission(StrEnum):
    PRESENT = "present"  # share content (screen), even as a viewer


@dataclass(frozen=True, slots=True, kw_only=True)
class Invitation:
    by: ParticipantId
    sent_at: float
    expires_at: float
    revision: int  # the invitee's stage revision when invited; accept must quote it
    approved_request: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Person:
    participant_id: ParticipantId
    identity: str
    name: str
    role: Role
    joined_at: float
    speaker: bool = False  # an assigned presenter: may take the stage in any mode
    granted: frozenset[Permission] = frozenset()
    viewer_only: bool = False  # e.g. a mobile client that only watches
    status: StageStatus = StageStatus.VIEWER
    revision: int = 0  # +1 on every stage transition; moderators quote it
    mic: DeviceState = DeviceState.OFF
    camera: DeviceState = DeviceState.OFF
    hand: int | None = None  # position key in the server-ordered hand queue
    hand_at: float | None = None
    request: int | None = None
    request_at: float | None = None
    queued: int | None = None
    queued_at: float | None = None
    invitation: Invitation | None = None
    on_stage_since: float | None = None
    last_spoke_at: float | None = None

    @property
    def is_moderator(self) -> bool:
        return self.role in (Role.HOST, Role.MODERATOR)

    @property
    def on_stage(self) -> bool:
        return self.status is StageStatus.ON_STAGE

    @property
    def in_full_view(self) -> bool:
        """Sees every participant's changes (hosts, moderators, and anyone on stage or on
        the way there); plain viewers see the stage and counts."""
        return self.is_moderator or self.status is not StageStatus.VIEWER

    @property
    def silent_since(self) -> float:
        """When this stage member last spoke (or took the stage, if never)."""
        candidates = [t for t in (self.last_spoke_at, self.on_stage_since) if t is not None]
        return max(candidates) if candidates else self.joined_at


@dataclass(frozen=True, slots=True, kw_only=True)
class Poll:
    poll_id: str
    question: str
    options: tuple[str, ...]
    created_by: ParticipantId
    votes: Mapping[str, int] = field(default_factory=Map)  # identity -> option
    closed: bool = False
    tally: tuple[int, ...] = ()  # votes per option, kept with each vote (derived if empty)

    def __post_init__(self) -> None:
        if not isinstance(self.votes, Map):
            object.__setattr__(self, "votes", Map(dict(self.votes)))
        if len(self.tally) != len(self.options):
            counts = [0] * len(self.options)
            for option in self.votes.values():
                counts[option] += 1
            object.__setattr__(self, "tally", tuple(counts))

    def with_vote(self, identity: str, option: int) -> Poll:
        """One more vote: O(log voters), so a poll in a room of thousands stays cheap."""
        tally = list(self.tally)
        tally[option] += 1
        votes: Map[str, int] = self.votes.set(identity, option)  # type: ignore[attr-defined]
        return replace(self, votes=votes, tally=tuple(tally))

    def results(self) -> list[int]:
        return list(self.tally)


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomPolicy:
    mode: RoomMode = RoomMode.INTERACTIVE
    stage_access: StageAccess = StageAccess.EVERYONE
    capacity: int = 25
    full_policy: FullStagePolicy = FullStagePolicy.REJECT
    invitation_ttl: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.capacity <= 100:
            raise ValueError(f"capacity: must be 1..100, got {self.capacity}")
        if self.invitation_ttl <= 0:
            raise ValueError("invitation_ttl: must be > 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomState:
    policy: RoomPolicy = field(default_factory=RoomPolicy)
    # Any mapping is accepted and kept as a Roster (signaling/stage/roster.py), whose
    # indices answer "who is on stage / waiting / invited" without scanning everyone.
    people: Roster = field(default_factory=Roster)
    banned: frozenset[str] = frozenset()  # identities kept out for the room's lifetime
    polls: Mapping[str, Poll] = field(default_factory=lambda: MappingProxyType({}))
    next_seq: int = 1  # one counter orders hands, requests and the seat queue

    def __post_init__(self) -> None:
        given: object = self.people  # typed Roster, but any mapping is welcome
        if not isinstance(given, Roster):
            object.__setattr__(self, "people", Roster.of(self.people))

    def person(self, participant_id: ParticipantId) -> Person | None:
        return self.people.get(participant_id)

    @property
    def on_stage(self) -> list[Person]:
        return self.people.ordered(Index.STAGE)

    @property
    def stage_count(self) -> int:
        return self.people.count(Index.STAGE)

    def queue(self, key: str) -> list[Person]:
        """People ordered by a sequence field: "hand", "request" or "queued"."""
        return self.people.ordered(_QUEUES[key])

    def with_people(self, changes: Mapping[ParticipantId, Person | None]) -> RoomState:
        """A copy with some people replaced (or removed, for None)."""
        return replace(self, people=self.people.changed(changes))


_QUEUES = {"hand": Index.HANDS, "request": Index.REQUESTS, "queued": Index.QUEUED}
