"""The WebSocket protocol: typed messages, their JSON codec and the error codes.

Every frame is one JSON object with a "type". Requests may carry an "id"
(any string up to 64 characters) that the reply or error echoes, so clients
can match answers to requests. See docs/protocol.md for examples.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

import msgspec

PROTOCOL_VERSION = 1

RequestId = Annotated[str, msgspec.Meta(max_length=64)]
Sdp = Annotated[str, msgspec.Meta(max_length=65536)]


class ErrorCode(StrEnum):
    BAD_MESSAGE = "bad_message"  # not JSON, or fields missing/of the wrong type
    UNKNOWN_TYPE = "unknown_type"
    MESSAGE_TOO_LARGE = "message_too_large"
    NOT_JOINED = "not_joined"
    ALREADY_JOINED = "already_joined"
    TOKEN_MISSING = "token_missing"
    TOKEN_INVALID = "token_invalid"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_WRONG_ROOM = "token_wrong_room"
    INVALID_SDP = "invalid_sdp"
    FORBIDDEN = "forbidden"
    CONFLICT = "conflict"  # the command does not fit the current state
    RATE_LIMITED = "rate_limited"
    SHUTTING_DOWN = "shutting_down"
    INTERNAL = "internal"


class Entry(StrEnum):
    VIEWER = "viewer"
    STAGE = "stage"


# -- client -> server ---------------------------------------------------------
class _Request(msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True):
    id: RequestId | None = None


class Join(_Request, tag="join"):
    # Optional on the wire so that a join without one is refused as token_missing.
    token: Annotated[str, msgspec.Meta(max_length=4096)] | None = None
    entry: Entry = Entry.VIEWER
    room: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class Publish(_Request, tag="publish"):
    """An SDP offer for the publish connection (sendonly audio/video)."""

    sdp: Sdp


class SubscribeAnswer(_Request, tag="subscribe_answer"):
    sdp: Sdp


class Leave(_Request, tag="leave"):
    pass


class Ping(_Request, tag="ping"):
    pass


ClientMessage = Join | Publish | SubscribeAnswer | Leave | Ping
CLIENT_TYPES = frozenset(("join", "publish", "subscribe_answer", "leave", "ping"))


# -- server -> client ---------------------------------------------------------
class Track(msgspec.Struct, kw_only=True):
    """One forwarded track; a viewer's WebRTC track carries msid `stream_id track_id`."""

    track_id: str
    kind: str
    source: str


class Participant(msgspec.Struct, kw_only=True):
    participant_id: str
    identity: str
    name: str
    role: str
    on_stage: bool
    speaking: bool = False
    tracks: list[Track] = msgspec.field(default_factory=list)


class _Event(msgspec.Struct, tag_field="type", kw_only=True):
    pass


class Joined(_Event, tag="joined"):
    id: str | None
    protocol: int
    participant_id: str
    room: str
    role: str
    entry: Entry
    participants: list[Participant]


class PublishAnswer(_Event, tag="publish_answer"):
    id: str | None
    sdp: str


class SubscribeOffer(_Event, tag="subscribe_offer"):
    """The server's offer for the subscribe connection; answer with subscribe_answer."""

    sdp: str


class Ack(_Event, tag="ack"):
    id: str | None


class Pong(_Event, tag="pong"):
    id: str | None


class ParticipantJoined(_Event, tag="participant_joined"):
    participant: Participant


class ParticipantUpdated(_Event, tag="participant_updated"):
    participant: Participant


class ParticipantLeft(_Event, tag="participant_left"):
    participant_id: str


class Speaking(_Event, tag="speaking"):
    participant_id: str
    speaking: bool


class ActiveSpeaker(_Event, tag="active_speaker"):
    participant_id: str | None


class Error(_Event, tag="error"):
    id: str | None
    code: ErrorCode
    message: str


class Bye(_Event, tag="bye"):
    reason: Literal["left", "shutting_down", "replaced", "transport_failed"]


ServerMessage = (
    Joined
    | PublishAnswer
    | SubscribeOffer
    | Ack
    | Pong
    | ParticipantJoined
    | ParticipantUpdated
    | ParticipantLeft
    | Speaking
    | ActiveSpeaker
    | Error
    | Bye
)


class ProtocolError(Exception):
    """A frame we cannot act on; carries the wire error code and the request id."""

    def __init__(self, code: ErrorCode, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


class _Envelope(msgspec.Struct):
    type: str = ""
    id: object = None


_envelope = msgspec.json.Decoder(_Envelope)
_client = msgspec.json.Decoder(ClientMessage)
_encoder = msgspec.json.Encoder()


def decode_client(frame: str | bytes) -> ClientMessage:
    """Parse one client frame or raise ProtocolError with a precise message."""
    try:
        envelope = _envelope.decode(frame)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"not a JSON object: {exc}") from None
    request_id = envelope.id if isinstance(envelope.id, str) and len(envelope.id) <= 64 else None
    if envelope.type not in CLIENT_TYPES:
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE, f"unknown message type {envelope.type[:40]!r}", request_id
        )
    try:
        message: ClientMessage = _client.decode(frame)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, str(exc), request_id) from None
    return message


def encode(message: ServerMessage) -> str:
    return _encoder.encode(message).decode()
