"""Server -> client messages. Replies echo the request "id"; events carry none."""

from __future__ import annotations

from typing import Literal

import msgspec

from .client import Entry
from .errors import ErrorCode


class Track(msgspec.Struct, kw_only=True):
    """One forwarded track; a viewer's WebRTC track carries msid `participant_id track_id`."""

    track_id: str
    kind: str
    source: str


class Participant(msgspec.Struct, kw_only=True):
    participant_id: str
    identity: str
    name: str
    role: str
    status: str = "viewer"  # viewer | requested | invited | queued | on_stage
    on_stage: bool = False
    revision: int = 0  # quote it in moderator commands about this participant
    speaker: bool = False  # an assigned presenter
    mic: str = "off"  # on | off | muted (by a moderator) | locked (by a moderator)
    camera: str = "off"
    hand: int | None = None  # raised-hand order: lower is earlier
    can_present: bool = False
    viewer_only: bool = False
    connected: bool = True
    speaking: bool = False
    tracks: list[Track] = msgspec.field(default_factory=list)


class Policy(msgspec.Struct, kw_only=True):
    mode: str
    stage_access: str
    capacity: int
    full_policy: str


class Counts(msgspec.Struct, kw_only=True):
    viewers: int
    on_stage: int
    hands: int
    requests: int


class QueueEntry(msgspec.Struct, kw_only=True):
    participant_id: str
    name: str
    position: int
    waiting_seconds: float


class PollInfo(msgspec.Struct, kw_only=True):
    poll_id: str
    question: str
    options: list[str]
    closed: bool
    results: list[int] | None = None  # hosts and moderators always; everyone once closed


class IceServer(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One RTCIceServer (W3C webrtc-pc, RTCIceServer dictionary): pass the list to
    RTCPeerConnection as is. STUN servers come without `username` and `credential`."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


# Why a received track is below the best its publisher sends (sfu.layer_report.Limit).
LimitedBy = Literal[
    "hidden", "paused", "connecting", "bandwidth_paused", "key_frame", "publisher", "bandwidth",
    "tile_size",
]  # fmt: skip


class EncodingStats(msgspec.Struct, kw_only=True):
    """One encoding a publisher sends (the only one without simulcast), as the server
    measures it over the last second."""

    rid: str | None
    active: bool  # the publisher sends it now
    bitrate: int  # bit/s
    frame_rate: float | None  # frames a second (video)
    width: int | None  # from its last key frame (VP8); null while unknown
    height: int | None
    temporal_layers: int  # VP8 temporal layers seen; 0: none


class TrackStats(msgspec.Struct, kw_only=True):
    """One track you receive: whose, what is forwarded of it, and why no more."""

    track_id: str
    participant_id: str
    kind: str
    layer: int  # the encoding forwarded now, an index into `encodings`
    target_layer: int  # the encoding it is headed for (switched to at its key frame)
    temporal_layer: int | None  # the highest VP8 temporal layer forwarded; null: none
    limited_by: LimitedBy | None
    layer_switches: int
    encodings: list[EncodingStats]


class _Event(msgspec.Struct, tag_field="type", kw_only=True):
    pass


class Joined(_Event, tag="joined"):
    id: str | None
    protocol: int
    participant_id: str
    room: str
    role: str
    entry: Entry
    resume_token: str
    you: Participant
    entries: list[str]  # how this participant may enter the stage: viewer, stage
    policy: Policy
    counts: Counts
    participants: list[Participant]  # everyone for the full view, else the stage and you
    polls: list[PollInfo] = msgspec.field(default_factory=list)
    # STUN/TURN servers for both connections, TURN with credentials valid from now on.
    ice_servers: list[IceServer] = msgspec.field(default_factory=list)


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


class MediaStats(_Event, tag="media_stats"):
    """Reply to get_media_stats: your downlink estimate (null when the server has none)
    and every track you receive."""

    id: str | None
    downlink_bps: int | None
    tracks: list[TrackStats]


class ParticipantJoined(_Event, tag="participant_joined"):
    participant: Participant


class ParticipantUpdated(_Event, tag="participant_updated"):
    participant: Participant


class ParticipantLeft(_Event, tag="participant_left"):
    participant_id: str


class Snapshot(_Event, tag="snapshot"):
    """Everyone in the room: sent when a participant starts receiving the full view."""

    participants: list[Participant]
    counts: Counts


class CountsChanged(_Event, tag="counts"):
    counts: Counts


class PolicyChanged(_Event, tag="policy"):
    policy: Policy


class Invited(_Event, tag="invited"):
    by: str
    by_name: str
    revision: int  # quote it in accept_invitation / decline_invitation
    expires_in: float


class InvitationEnded(_Event, tag="invitation_ended"):
    participant_id: str
    reason: Literal["accepted", "declined", "revoked", "expired", "left", "stage_full"]


class RequestDeclined(_Event, tag="request_declined"):
    pass


class RequestCancelled(_Event, tag="request_cancelled"):
    reason: Literal["policy_changed"]


class StageLeft(_Event, tag="stage_left"):
    """To the person concerned: you are now a viewer."""

    reason: Literal["left", "removed", "stage_full"]
    by: str | None = None  # who removed them ("removed" only), and their name
    by_name: str | None = None


class DeviceForced(_Event, tag="device_forced"):
    """To the person concerned: a moderator turned your mic or camera off (or unlocked it)."""

    device: str
    state: str
    by: str
    by_name: str


class Queues(_Event, tag="queues"):
    """To hosts and moderators: raised hands, stage requests and the seat queue, in order."""

    hands: list[QueueEntry]
    requests: list[QueueEntry]
    seats: list[QueueEntry]


class ChatMessage(_Event, tag="chat"):
    participant_id: str
    name: str
    text: str
    at: float  # Unix seconds


class Poll(_Event, tag="poll"):
    poll: PollInfo


class Speaking(_Event, tag="speaking"):
    participant_id: str
    speaking: bool


class ActiveSpeaker(_Event, tag="active_speaker"):
    participant_id: str | None


class HostLeft(_Event, tag="host_left"):
    """To everyone: the room has no host any more. Its last host left (`role` host), or,
    in a room without a host, its last moderator (`role` moderator)."""

    participant_id: str
    name: str
    role: Literal["host", "moderator"]
    moderators: int  # moderators still in the room, running the stage without a host
    ends_in: float | None  # seconds until the room ends by itself (rooms.empty_host_timeout)


class Error(_Event, tag="error"):
    id: str | None
    code: ErrorCode
    message: str
    # rate_limited only: seconds until the same command would be accepted.
    retry_after: float | msgspec.UnsetType = msgspec.UNSET


ByeReason = Literal["left", "shutting_down", "transport_failed", "kicked", "replaced", "room_ended"]


class Bye(_Event, tag="bye"):
    reason: ByeReason
    # room_ended only: the host who ended it, and their name (null when the room ended
    # itself, having had no host or moderator for rooms.empty_host_timeout).
    by: str | msgspec.UnsetType | None = msgspec.UNSET
    by_name: str | msgspec.UnsetType | None = msgspec.UNSET


ServerMessage = (
    Joined
    | PublishAnswer
    | SubscribeOffer
    | Ack
    | Pong
    | MediaStats
    | ParticipantJoined
    | ParticipantUpdated
    | ParticipantLeft
    | Snapshot
    | CountsChanged
    | PolicyChanged
    | Invited
    | InvitationEnded
    | RequestDeclined
    | RequestCancelled
    | StageLeft
    | DeviceForced
    | Queues
    | ChatMessage
    | Poll
    | Speaking
    | ActiveSpeaker
    | HostLeft
    | Error
    | Bye
)

REPLY_TYPES = frozenset(
    message.__struct_config__.tag
    for message in (Joined, PublishAnswer, Ack, Pong, MediaStats, Error)
)
"""The messages that answer a request, each carrying its id: a request gets exactly one."""
