"""Client -> server messages. Every request may carry an "id" that the reply echoes;
stage commands with the same id from the same participant are applied once."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

from ..roles import Role
from ..stage.model import Device, FullStagePolicy, Permission, RoomMode, StageAccess

RequestId = Annotated[str, msgspec.Meta(max_length=64)]
Sdp = Annotated[str, msgspec.Meta(max_length=65536)]
Target = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
# JSON numbers beyond 2**53 - 1 are not exact in JavaScript; no counter of ours gets there.
MAX_INTEGER = 2**53 - 1
Revision = Annotated[int, msgspec.Meta(ge=0, le=MAX_INTEGER)]
CHAT_MAX_UTF16 = 2000


def utf16_length(text: str) -> int:
    """Length as browsers count it (`String.length`, `maxlength`): UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


class Entry(StrEnum):
    VIEWER = "viewer"
    STAGE = "stage"


class Source(StrEnum):
    MICROPHONE = "microphone"
    CAMERA = "camera"
    SCREEN = "screen"
    SCREEN_AUDIO = "screen_audio"


class _Request(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True):
    id: RequestId | None = None


# -- session ------------------------------------------------------------------------
class Join(_Request, tag="join"):
    # Optional on the wire so that a join without one is refused as token_missing.
    token: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    entry: Entry = Entry.VIEWER
    room: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    viewer_only: bool = False  # e.g. a mobile client that only watches
    mic: bool = True  # initial device choices when entering on stage
    camera: bool = True


class Resume(_Request, tag="resume"):
    """Take back a dropped session within the grace period (the token is single use)."""

    room: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    resume_token: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class Publish(_Request, tag="publish"):
    """An SDP offer for the publish connection; `sources` names each sending mid."""

    sdp: Sdp
    sources: dict[Annotated[str, msgspec.Meta(max_length=32)], Source] | None = None


class SubscribeAnswer(_Request, tag="subscribe_answer"):
    sdp: Sdp


# Device pixels; a tile taller than an 8K screen is a client's mistake.
MAX_TILE_HEIGHT = 4320


class TrackView(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """How the viewer shows one received video track: `visible` false pauses it (nothing
    is forwarded), `height` is its tile's height in device pixels (0: no limit)."""

    track_id: Target
    visible: bool = True
    height: Annotated[int, msgspec.Meta(ge=0, le=MAX_TILE_HEIGHT)] = 0


class ViewTracks(_Request, tag="view_tracks"):
    """What the viewer's tiles show now; tracks not named keep their last setting."""

    tracks: Annotated[list[TrackView], msgspec.Meta(max_length=64)]


class GetMediaStats(_Request, tag="get_media_stats"):
    """What you receive now and why at that quality: your own connection only."""


class Leave(_Request, tag="leave"):
    pass


class Ping(_Request, tag="ping"):
    pass


# -- self-service -------------------------------------------------------------------
class JoinStage(_Request, tag="join_stage"):
    mic: bool = True
    camera: bool = True


class LeaveStage(_Request, tag="leave_stage"):
    pass


class RequestStage(_Request, tag="request_stage"):
    pass


class CancelRequest(_Request, tag="cancel_request"):
    pass


class AcceptInvitation(_Request, tag="accept_invitation"):
    revision: Revision
    mic: bool = True
    camera: bool = True


class DeclineInvitation(_Request, tag="decline_invitation"):
    revision: Revision


class SetDevice(_Request, tag="set_device"):
    device: Device
    on: bool


class RaiseHand(_Request, tag="raise_hand"):
    pass


class LowerHand(_Request, tag="lower_hand"):
    target: Target | None = None  # someone else's: hosts and moderators


class Chat(_Request, tag="chat"):
    # The code-point bound is a cheap first cut; the limit is counted in UTF-16 units.
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=CHAT_MAX_UTF16)]

    def __post_init__(self) -> None:
        if utf16_length(self.text) > CHAT_MAX_UTF16:
            raise ValueError(f"chat text is limited to {CHAT_MAX_UTF16} UTF-16 code units")


class Vote(_Request, tag="vote"):
    poll_id: Annotated[str, msgspec.Meta(max_length=64)]
    option: Annotated[int, msgspec.Meta(ge=0, le=MAX_INTEGER)]


# -- moderation ---------------------------------------------------------------------
class ApproveRequest(_Request, tag="approve_request"):
    target: Target
    revision: Revision


class DeclineRequest(_Request, tag="decline_request"):
    target: Target
    revision: Revision


class Invite(_Request, tag="invite"):
    target: Target
    revision: Revision


class RevokeInvitation(_Request, tag="revoke_invitation"):
    target: Target
    revision: Revision


class RemoveFromStage(_Request, tag="remove_from_stage"):
    target: Target
    revision: Revision


class Mute(_Request, tag="mute"):
    target: Target
    device: Device
    lock: bool = False


class Unlock(_Request, tag="unlock"):
    target: Target
    device: Device


class MuteAll(_Request, tag="mute_all"):
    device: Device
    lock: bool = False


class LowerAllHands(_Request, tag="lower_all_hands"):
    pass


class SetStageAccess(_Request, tag="set_stage_access"):
    access: StageAccess


class SetRoomMode(_Request, tag="set_room_mode"):
    mode: RoomMode


class SetCapacity(_Request, tag="set_capacity"):
    capacity: Annotated[int, msgspec.Meta(ge=1, le=100)]
    full_policy: FullStagePolicy


class SetRole(_Request, tag="set_role"):
    target: Target
    role: Role


class SetSpeaker(_Request, tag="set_speaker"):
    target: Target
    speaker: bool


class SetPermission(_Request, tag="set_permission"):
    target: Target
    permission: Permission
    granted: bool


class Kick(_Request, tag="kick"):
    target: Target


class CreatePoll(_Request, tag="create_poll"):
    question: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    options: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=300)]],
        msgspec.Meta(min_length=2, max_length=10),
    ]


class ClosePoll(_Request, tag="close_poll"):
    poll_id: Annotated[str, msgspec.Meta(max_length=64)]


# -- hosts ----------------------------------------------------------------------------
class EndRoom(_Request, tag="end_room"):
    """End the room for everyone: each connection gets `bye` (room_ended) and a close."""


StageRequest = (
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
    | ApproveRequest
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
    | EndRoom
)
ClientMessage = (
    Join
    | Resume
    | Publish
    | SubscribeAnswer
    | ViewTracks
    | GetMediaStats
    | Leave
    | Ping
    | Chat
    | StageRequest
)
