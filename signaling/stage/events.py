"""What a transition did, for the room to announce (it decides who is told)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .model import Device, DeviceState, ParticipantId


class EndReason(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    REVOKED = "revoked"
    EXPIRED = "expired"
    LEFT = "left"  # the invitee left the room
    STAGE_FULL = "stage_full"  # accepted, but queued for a seat


class StageExitReason(StrEnum):
    LEFT = "left"
    REMOVED = "removed"  # by a moderator
    STAGE_FULL = "stage_full"  # evicted to make room


@dataclass(frozen=True, slots=True)
class PersonChanged:
    participant_id: ParticipantId


@dataclass(frozen=True, slots=True)
class PersonEntered:
    participant_id: ParticipantId


@dataclass(frozen=True, slots=True)
class PersonExited:
    participant_id: ParticipantId


@dataclass(frozen=True, slots=True)
class Invited:
    target: ParticipantId
    by: ParticipantId
    expires_at: float
    revision: int


@dataclass(frozen=True, slots=True)
class InvitationEnded:
    target: ParticipantId
    inviter: ParticipantId
    reason: EndReason


@dataclass(frozen=True, slots=True)
class RequestDeclined:
    target: ParticipantId


@dataclass(frozen=True, slots=True)
class RequestCancelled:
    target: ParticipantId  # stage access changed away from "request"


@dataclass(frozen=True, slots=True)
class LeftStage:
    target: ParticipantId
    reason: StageExitReason
    by: ParticipantId | None = None  # the moderator who removed them (REMOVED only)


@dataclass(frozen=True, slots=True)
class DeviceForced:
    target: ParticipantId
    device: Device
    state: DeviceState
    by: ParticipantId


@dataclass(frozen=True, slots=True)
class QueuesChanged:
    """Hands, requests or the seat queue changed order or membership."""


@dataclass(frozen=True, slots=True)
class PolicyChanged:
    pass


@dataclass(frozen=True, slots=True)
class PollChanged:
    poll_id: str


@dataclass(frozen=True, slots=True)
class Kicked:
    target: ParticipantId


@dataclass(frozen=True, slots=True)
class HostLeft:
    """The room has no host any more: its last host left it, or, in a room without a
    host, its last moderator did. The person is gone from the new state (the old one
    has their name and role)."""

    participant_id: ParticipantId


@dataclass(frozen=True, slots=True)
class RoomEnded:
    """A host ended the room for everyone (`end_room`)."""

    by: ParticipantId


StageEvent = (
    PersonChanged
    | PersonEntered
    | PersonExited
    | Invited
    | InvitationEnded
    | RequestDeclined
    | RequestCancelled
    | LeftStage
    | DeviceForced
    | QueuesChanged
    | PolicyChanged
    | PollChanged
    | Kicked
    | HostLeft
    | RoomEnded
)
