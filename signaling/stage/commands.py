"""Everything that can change the stage, as typed values.

Commands that act on someone else's stage state carry that person's stage
`revision` as the actor last saw it: if anything happened in between, the
command fails with a conflict instead of acting on a state nobody saw.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..roles import Role
from .model import Device, FullStagePolicy, ParticipantId, Permission, RoomMode, StageAccess


@dataclass(frozen=True, slots=True, kw_only=True)
class Enter:
    """System: someone joined the room (as viewer, or straight onto the stage)."""

    participant_id: ParticipantId
    identity: str
    name: str
    role: Role
    on_stage: bool = False
    mic_on: bool = True
    camera_on: bool = True
    viewer_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Exit:
    """System: someone left the room (left, timed out after a disconnect, or was kicked)."""

    participant_id: ParticipantId


@dataclass(frozen=True, slots=True, kw_only=True)
class Expire:
    """System: the clock moved; invitations past their deadline end."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Spoke:
    """System: the participant's microphone was heard (drives silent-longest eviction)."""

    participant_id: ParticipantId


# -- self ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class JoinStage:
    mic_on: bool = True
    camera_on: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaveStage:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestStage:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelRequest:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptInvitation:
    revision: int  # as in the invitation
    mic_on: bool = True
    camera_on: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class DeclineInvitation:
    revision: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SetDevice:
    device: Device
    on: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class RaiseHand:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class LowerHand:
    """Lower one's own hand, or (moderators) someone else's."""

    target: ParticipantId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Vote:
    poll_id: str
    option: int


# -- moderation --------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class ApproveRequest:
    target: ParticipantId
    revision: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DeclineRequest:
    target: ParticipantId
    revision: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Invite:
    target: ParticipantId
    revision: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RevokeInvitation:
    target: ParticipantId
    revision: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveFromStage:
    target: ParticipantId
    revision: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Mute:
    """Turn someone's mic or camera off; `lock` keeps it off until unlocked."""

    target: ParticipantId
    device: Device
    lock: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Unlock:
    target: ParticipantId
    device: Device


@dataclass(frozen=True, slots=True, kw_only=True)
class MuteAll:
    """Everyone on stage except the actor."""

    device: Device
    lock: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LowerAllHands:
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class SetStageAccess:
    access: StageAccess


@dataclass(frozen=True, slots=True, kw_only=True)
class SetRoomMode:
    mode: RoomMode


@dataclass(frozen=True, slots=True, kw_only=True)
class SetCapacity:
    capacity: int
    full_policy: FullStagePolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class SetRole:
    target: ParticipantId
    role: Role


@dataclass(frozen=True, slots=True, kw_only=True)
class SetSpeaker:
    target: ParticipantId
    speaker: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SetPermission:
    target: ParticipantId
    permission: Permission
    granted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Kick:
    target: ParticipantId


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatePoll:
    poll_id: str
    question: str
    options: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosePoll:
    poll_id: str


# -- hosts -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class EndRoom:
    """End the room for everyone. The machine only decides (hosts only) and says so
    (RoomEnded); the room actor closes everyone's media and connections and then the
    room itself, so nobody leaves one by one (no participant_left to thousands)."""


SystemCommand = Enter | Exit | Expire | Spoke
SelfCommand = (
    JoinStage
    | LeaveStage
    | RequestStage
    | CancelRequest
    | AcceptInvitation
    | DeclineInvitation
    | SetDevice
    | RaiseHand
    | LowerHand
    | Vote
)
ModeratorCommand = (
    ApproveRequest
    | DeclineRequest
    | Invite
    | RevokeInvitation
    | RemoveFromStage
    | Mute
    | Unlock
    | MuteAll
    | LowerAllHands
    | SetStageAccess
    | SetRoomMode
    | SetCapacity
    | SetRole
    | SetSpeaker
    | SetPermission
    | Kick
    | CreatePoll
    | ClosePoll
)
HostCommand = EndRoom
Command = SystemCommand | SelfCommand | ModeratorCommand | HostCommand
