"""What the room actor accepts: its options, its commands, the media events it hears,
and its one error type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sfu import events as sfu_events

from . import protocol as wire
from .auth import Grants
from .members import Deliver, Disconnect
from .spread import messages as spread_messages
from .spread.home import RemoteOffer
from .stage import commands as sc
from .stage.model import ParticipantId, RoomPolicy


class RoomError(Exception):
    """A command the room refuses; `code` goes to the client as is."""

    def __init__(self, code: wire.ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RateLimited(RoomError):
    """Over a per-identity budget; `retry_after` seconds until one more is allowed."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(wire.ErrorCode.RATE_LIMITED, message)
        self.retry_after = retry_after


class RoomClosed(RoomError):
    """The room closed (its last member left) before it ran the command. A join is
    then retried in a new room of the same name: joins never fail for this."""

    def __init__(self) -> None:
        super().__init__(wire.ErrorCode.CONFLICT, "the room is closed")


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomOptions:
    policy: RoomPolicy
    reconnect_grace: float = 30.0
    # Seconds a room may go on with no host and no moderator (after the last one left)
    # before it ends for everyone; 0: never (the stage runs on, moderation waits).
    empty_host_timeout: float = 0.0
    chat_rate: float = 2.0
    chat_burst: int = 10
    command_rate: float = 20.0
    command_burst: int = 40
    # With several workers: subscribers kept on the room's own worker before the
    # rest spread over the others (signaling/spread/), and where pipes bind.
    spread_after: int = 100
    pipe_address: str = "127.0.0.1"


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinRoom:
    grants: Grants
    entry: wire.Entry
    deliver: Deliver
    disconnect: Disconnect
    viewer_only: bool = False
    mic: bool = True
    camera: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeSession:
    resume_token: str
    deliver: Deliver
    disconnect: Disconnect


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishOffer:
    participant_id: ParticipantId
    sdp: str
    sources: Mapping[str, wire.Source] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplySubscribeAnswer:
    participant_id: ParticipantId
    sdp: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewTracks:
    participant_id: ParticipantId
    tracks: tuple[wire.TrackView, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class GetMediaStats:
    participant_id: ParticipantId


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStageCommand:
    participant_id: ParticipantId
    request_id: str | None
    command: sc.Command


@dataclass(frozen=True, slots=True, kw_only=True)
class PostChat:
    participant_id: ParticipantId
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaveRoom:
    participant_id: ParticipantId


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLost:
    """The client's connection dropped without `leave`: keep its place for a while."""

    participant_id: ParticipantId
    deliver: Deliver  # only the session that is gone may start the grace period


Command = (
    JoinRoom
    | ResumeSession
    | PublishOffer
    | ApplySubscribeAnswer
    | ViewTracks
    | GetMediaStats
    | RunStageCommand
    | PostChat
    | LeaveRoom
    | ConnectionLost
)

# What the room hears besides commands: its router's events, offers made by other
# workers for its spread subscribers, and those workers' reports.
Event = sfu_events.SfuEvent | RemoteOffer | spread_messages.ToHome
