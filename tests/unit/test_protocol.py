"""The wire codec: what decode_client accepts, how it refuses, and what encode writes."""

from __future__ import annotations

import json
import typing
from typing import Any

import msgspec
import pytest

from signaling import protocol as wire
from signaling.roles import Role
from signaling.stage.model import Device, FullStagePolicy, Permission, RoomMode, StageAccess

SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
BOB = "4e8d1b6a2c90"

CLIENT_MESSAGES: list[wire.ClientMessage] = [
    # session
    wire.Join(id="1", token="header.claims.signature", entry=wire.Entry.STAGE, room="town-hall"),
    wire.Join(token="header.claims.signature"),
    wire.Join(token="t", viewer_only=True, mic=False, camera=False),
    wire.Resume(id="1", room="town-hall", resume_token="Hn4sWk9TbQ1vYe6XpLr2MzCa8JdF0gUo"),
    wire.Publish(id="2", sdp=SDP),
    wire.Publish(
        id="2",
        sdp=SDP,
        sources={
            "0": wire.Source.MICROPHONE,
            "1": wire.Source.SCREEN,
            "2": wire.Source.SCREEN_AUDIO,
        },
    ),
    wire.SubscribeAnswer(id="3", sdp=SDP),
    wire.ViewTracks(
        id="4",
        tracks=[
            wire.TrackView(track_id="9f1c", height=180),
            wire.TrackView(track_id="77aa", visible=False),
        ],
    ),
    wire.GetMediaStats(id="4"),
    wire.GetMediaStats(),
    wire.Leave(id="4"),
    wire.Leave(),
    wire.Ping(id="5"),
    wire.Chat(id="6", text="Can everyone hear me?"),
    # self-service
    wire.JoinStage(id="7"),
    wire.JoinStage(mic=True, camera=False),
    wire.LeaveStage(id="8"),
    wire.RequestStage(id="9"),
    wire.CancelRequest(id="10"),
    wire.AcceptInvitation(id="11", revision=2),
    wire.AcceptInvitation(revision=0, mic=False, camera=True),
    wire.DeclineInvitation(id="12", revision=2),
    wire.SetDevice(id="13", device=Device.CAMERA, on=False),
    wire.RaiseHand(id="14"),
    wire.LowerHand(id="15"),
    wire.LowerHand(target=BOB),
    wire.Vote(id="17", poll_id="a81f3c92d4e0", option=1),
    # moderation
    wire.ApproveRequest(id="18", target=BOB, revision=1),
    wire.DeclineRequest(id="19", target=BOB, revision=1),
    wire.Invite(id="20", target=BOB, revision=0),
    wire.RevokeInvitation(id="21", target=BOB, revision=1),
    wire.RemoveFromStage(id="22", target=BOB, revision=3),
    wire.Mute(id="23", target=BOB, device=Device.MIC),
    wire.Mute(target=BOB, device=Device.CAMERA, lock=True),
    wire.Unlock(id="24", target=BOB, device=Device.MIC),
    wire.MuteAll(id="25", device=Device.MIC, lock=True),
    wire.LowerAllHands(id="26"),
    wire.SetStageAccess(id="27", access=StageAccess.INVITE_ONLY),
    wire.SetRoomMode(id="28", mode=RoomMode.PANEL),
    wire.SetCapacity(id="29", capacity=6, full_policy=FullStagePolicy.QUEUE),
    wire.SetRole(id="30", target=BOB, role=Role.MODERATOR),
    wire.SetSpeaker(id="31", target=BOB, speaker=True),
    wire.SetPermission(id="32", target=BOB, permission=Permission.PRESENT, granted=False),
    wire.Kick(id="33", target=BOB),
    wire.CreatePoll(id="34", question="Which topic next?", options=["Roadmap", "Hiring", "Q&A"]),
    wire.ClosePoll(id="35", poll_id="a81f3c92d4e0"),
    # hosts
    wire.EndRoom(id="36"),
]

TRACK = wire.Track(track_id="5d0f3c2b", kind="audio", source="microphone")

PARTICIPANT = wire.Participant(
    participant_id="9f2c4a7b1e03",
    identity="alice",
    name="Alice",
    role="host",
    status="on_stage",
    on_stage=True,
    revision=1,
    mic="on",
    camera="muted",
    hand=3,
    can_present=True,
    speaking=True,
    tracks=[TRACK, wire.Track(track_id="e4a92c7b", kind="video", source="screen")],
)

POLICY = wire.Policy(mode="interactive", stage_access="request", capacity=25, full_policy="queue")
COUNTS = wire.Counts(viewers=212, on_stage=3, hands=5, requests=2)
POLL = wire.PollInfo(poll_id="a81f3c92d4e0", question="Q?", options=["a", "b"], closed=False)
ENTRY = wire.QueueEntry(participant_id=BOB, name="Bob", position=1, waiting_seconds=3.1)

SERVER_MESSAGES: list[wire.ServerMessage] = [
    wire.Joined(
        id="1",
        protocol=wire.PROTOCOL_VERSION,
        participant_id="9f2c4a7b1e03",
        room="town-hall",
        role="host",
        entry=wire.Entry.STAGE,
        resume_token="q3Zt8bVxN0mLwE5rYc2uJkP7aGdS4fHi",
        you=PARTICIPANT,
        entries=["viewer", "stage"],
        policy=POLICY,
        counts=COUNTS,
        participants=[PARTICIPANT],
        polls=[POLL],
    ),
    wire.PublishAnswer(id="2", sdp=SDP),
    wire.SubscribeOffer(sdp=SDP),
    wire.Ack(id="3"),
    wire.Ack(id=None),
    wire.Pong(id="5"),
    wire.MediaStats(id="6", downlink_bps=None, tracks=[]),
    wire.MediaStats(
        id=None,
        downlink_bps=1_200_000,
        tracks=[
            wire.TrackStats(
                track_id="c71e",
                participant_id="9f2c4a7b1e03",
                kind="video",
                layer=0,
                target_layer=1,
                temporal_layer=2,
                limited_by="key_frame",
                layer_switches=3,
                encodings=[
                    wire.EncodingStats(
                        rid="q",
                        active=True,
                        bitrate=150_000,
                        frame_rate=29.9,
                        width=320,
                        height=180,
                        temporal_layers=3,
                    ),
                    wire.EncodingStats(
                        rid="h",
                        active=False,
                        bitrate=0,
                        frame_rate=0.0,
                        width=None,
                        height=None,
                        temporal_layers=0,
                    ),
                ],
            ),
            wire.TrackStats(
                track_id="5d0f",
                participant_id="9f2c4a7b1e03",
                kind="audio",
                layer=0,
                target_layer=0,
                temporal_layer=None,
                limited_by=None,
                layer_switches=0,
                encodings=[
                    wire.EncodingStats(
                        rid=None,
                        active=True,
                        bitrate=32_000,
                        frame_rate=None,
                        width=None,
                        height=None,
                        temporal_layers=0,
                    )
                ],
            ),
        ],
    ),
    wire.ParticipantJoined(participant=PARTICIPANT),
    wire.ParticipantUpdated(participant=PARTICIPANT),
    wire.ParticipantLeft(participant_id="9f2c4a7b1e03"),
    wire.Snapshot(participants=[PARTICIPANT], counts=COUNTS),
    wire.CountsChanged(counts=COUNTS),
    wire.PolicyChanged(policy=POLICY),
    wire.Invited(by="b3a7e2f91d54", by_name="Carol", revision=2, expires_in=60.0),
    wire.InvitationEnded(participant_id=BOB, reason="stage_full"),
    wire.RequestDeclined(),
    wire.RequestCancelled(reason="policy_changed"),
    wire.StageLeft(reason="removed"),
    wire.DeviceForced(device="mic", state="locked", by="9f2c4a7b1e03", by_name="Alice"),
    wire.Queues(hands=[ENTRY], requests=[], seats=[ENTRY]),
    wire.ChatMessage(participant_id=BOB, name="Bob", text="hello", at=1767225731.482),
    wire.Poll(poll=POLL),
    wire.Poll(
        poll=wire.PollInfo(
            poll_id="p", question="Q?", options=["a", "b"], closed=True, results=[0, 1]
        )
    ),
    wire.Speaking(participant_id="9f2c4a7b1e03", speaking=False),
    wire.ActiveSpeaker(participant_id="9f2c4a7b1e03"),
    wire.ActiveSpeaker(participant_id=None),
    wire.Error(id="7", code=wire.ErrorCode.CONFLICT, message="no offer is waiting"),
    wire.HostLeft(
        participant_id="9f2c4a7b1e03", name="Alice", role="host", moderators=1, ends_in=None
    ),
    wire.HostLeft(
        participant_id="b3a7e2f91d54", name="Mo", role="moderator", moderators=0, ends_in=300.0
    ),
    wire.Bye(reason="shutting_down"),
    wire.Bye(reason="kicked"),
    wire.Bye(reason="room_ended", by="9f2c4a7b1e03", by_name="Alice"),
    wire.Bye(reason="room_ended", by=None, by_name=None),
]

SESSION_TYPES = {
    "join", "resume", "publish", "subscribe_answer", "view_tracks", "get_media_stats", "leave",
    "ping", "chat",
}  # fmt: skip


def refused(frame: str | bytes) -> wire.ProtocolError:
    with pytest.raises(wire.ProtocolError) as caught:
        wire.decode_client(frame)
    return caught.value


def frame(**fields: Any) -> str:
    return json.dumps(fields)


def tag(cls: type[Any]) -> str:
    value = cls.__struct_config__.tag
    assert isinstance(value, str)
    return value


# -- decode_client: accepted frames ----------------------------------------------------


@pytest.mark.parametrize("message", CLIENT_MESSAGES, ids=lambda m: type(m).__name__)
def test_every_client_message_round_trips(message: wire.ClientMessage) -> None:
    assert wire.decode_client(msgspec.json.encode(message)) == message


def test_every_client_message_type_is_covered_here() -> None:
    assert {type(m) for m in CLIENT_MESSAGES} == set(typing.get_args(wire.ClientMessage))


@pytest.mark.parametrize("message", CLIENT_MESSAGES, ids=lambda m: type(m).__name__)
def test_client_messages_are_tagged_by_type(message: wire.ClientMessage) -> None:
    encoded = json.loads(msgspec.json.encode(message))
    assert encoded["type"] in wire.CLIENT_TYPES


def test_client_types_are_exactly_the_tags_of_the_client_union() -> None:
    tags = {tag(cls) for cls in typing.get_args(wire.ClientMessage)}
    assert tags == wire.CLIENT_TYPES


def test_stage_requests_are_every_client_message_but_the_session_ones_and_chat() -> None:
    stage = {tag(cls) for cls in typing.get_args(wire.StageRequest)}
    assert stage == wire.CLIENT_TYPES - SESSION_TYPES


def test_join_defaults_to_viewer_without_a_room_with_devices_on() -> None:
    message = wire.decode_client(frame(type="join", token="t"))
    assert message == wire.Join(
        token="t", entry=wire.Entry.VIEWER, room=None, viewer_only=False, mic=True, camera=True
    )


def test_stage_commands_default_to_devices_on_and_no_lock() -> None:
    assert wire.decode_client(frame(type="join_stage")) == wire.JoinStage(mic=True, camera=True)
    accept = wire.decode_client(frame(type="accept_invitation", revision=4))
    assert accept == wire.AcceptInvitation(revision=4, mic=True, camera=True)
    mute = wire.decode_client(frame(type="mute", target="p", device="mic"))
    assert mute == wire.Mute(target="p", device=Device.MIC, lock=False)
    assert wire.decode_client(frame(type="lower_hand")) == wire.LowerHand(target=None)


def test_enum_fields_decode_to_their_enums() -> None:
    message = wire.decode_client(frame(type="set_capacity", capacity=2, full_policy="evict_silent"))
    assert isinstance(message, wire.SetCapacity)
    assert message.full_policy is FullStagePolicy.EVICT_SILENT
    publish = wire.decode_client(frame(type="publish", sdp="v=0", sources={"0": "screen"}))
    assert isinstance(publish, wire.Publish)
    assert publish.sources == {"0": wire.Source.SCREEN}


def test_the_request_id_is_optional_and_may_be_null() -> None:
    assert wire.decode_client(frame(type="ping")) == wire.Ping(id=None)
    assert wire.decode_client(frame(type="ping", id=None)) == wire.Ping(id=None)


def test_a_64_character_id_is_kept() -> None:
    request_id = "a" * 64
    assert wire.decode_client(frame(type="ping", id=request_id)) == wire.Ping(id=request_id)


def test_bytes_frames_decode_like_text_frames() -> None:
    text = frame(type="leave", id="9")
    assert wire.decode_client(text.encode()) == wire.decode_client(text) == wire.Leave(id="9")


def test_field_order_does_not_matter() -> None:
    message = wire.decode_client('{"sdp": "v=0", "id": "2", "type": "publish"}')
    assert message == wire.Publish(id="2", sdp="v=0")


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "chat", "text": "x" * 2000},
        {"type": "chat", "text": "x"},
        {"type": "create_poll", "question": "q", "options": ["a", "b"]},
        {"type": "create_poll", "question": "q" * 300, "options": ["o" * 300] * 10},
        {"type": "set_capacity", "capacity": 1, "full_policy": "reject"},
        {"type": "set_capacity", "capacity": 100, "full_policy": "reject"},
        {"type": "invite", "target": "p" * 64, "revision": 0},
        {"type": "resume", "room": "r" * 128, "resume_token": "t" * 128},
        {"type": "publish", "sdp": "v=0", "sources": {"m" * 32: "camera"}},
        {"type": "vote", "poll_id": "p" * 64, "option": 0},
    ],
    ids=lambda f: f["type"],
)
def test_values_at_their_limits_are_accepted(fields: dict[str, Any]) -> None:
    message = wire.decode_client(json.dumps(fields))
    assert json.loads(msgspec.json.encode(message))["type"] == fields["type"]


# -- decode_client: refused frames -----------------------------------------------------


def test_unknown_type_is_refused_and_keeps_the_request_id() -> None:
    error = refused(frame(type="subscribe", id="42"))
    assert error.code == wire.ErrorCode.UNKNOWN_TYPE
    assert error.request_id == "42"
    assert "'subscribe'" in error.message


def test_a_missing_type_is_an_unknown_type_and_keeps_the_request_id() -> None:
    error = refused(frame(id="42", token="t"))
    assert (error.code, error.request_id) == (wire.ErrorCode.UNKNOWN_TYPE, "42")


@pytest.mark.parametrize("server_type", ["pong", "joined", "snapshot", "invited", "queues"])
def test_server_message_types_are_unknown_to_the_server(server_type: str) -> None:
    error = refused(frame(type=server_type, id="1"))
    assert (error.code, error.request_id) == (wire.ErrorCode.UNKNOWN_TYPE, "1")


def test_a_long_unknown_type_is_cut_in_the_error_message() -> None:
    error = refused(frame(type="x" * 1000))
    assert error.code == wire.ErrorCode.UNKNOWN_TYPE
    assert "x" * 40 in error.message
    assert "x" * 41 not in error.message


def test_an_over_long_id_is_dropped_from_an_unknown_type_error() -> None:
    error = refused(frame(type="nope", id="a" * 65))
    assert (error.code, error.request_id) == (wire.ErrorCode.UNKNOWN_TYPE, None)


def test_an_over_long_id_makes_a_known_message_bad_and_is_not_echoed() -> None:
    error = refused(frame(type="ping", id="a" * 65))
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, None)


def test_a_non_string_id_is_bad_and_not_echoed() -> None:
    error = refused(frame(type="ping", id=7))
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, None)


def test_unknown_fields_are_refused_as_bad_message_keeping_the_id() -> None:
    error = refused(frame(type="ping", id="p", extra=1))
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, "p")
    assert "extra" in error.message


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"type": "raise_hand", "target": "p"}, "target"),
        ({"type": "kick", "target": "p", "revision": 1}, "revision"),
        ({"type": "leave_stage", "reason": "bored"}, "reason"),
        ({"type": "resume", "room": "r", "resume_token": "t", "token": "jwt"}, "token"),
    ],
)
def test_unknown_fields_of_stage_commands_are_bad_message(
    fields: dict[str, Any], name: str
) -> None:
    error = refused(json.dumps({**fields, "id": "u"}))
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, "u")
    assert name in error.message


def test_a_missing_required_field_is_bad_message_keeping_the_id() -> None:
    error = refused(frame(type="publish", id="1"))
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, "1")
    assert "sdp" in error.message


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"type": "resume", "room": "r"}, "resume_token"),
        ({"type": "resume", "resume_token": "t"}, "room"),
        ({"type": "chat"}, "text"),
        ({"type": "accept_invitation"}, "revision"),
        ({"type": "decline_invitation"}, "revision"),
        ({"type": "approve_request", "target": "p"}, "revision"),
        ({"type": "invite", "revision": 0}, "target"),
        ({"type": "remove_from_stage", "target": "p"}, "revision"),
        ({"type": "mute", "target": "p"}, "device"),
        ({"type": "unlock", "device": "mic"}, "target"),
        ({"type": "set_device", "device": "mic"}, "on"),
        ({"type": "set_capacity", "capacity": 3}, "full_policy"),
        ({"type": "set_role", "target": "p"}, "role"),
        ({"type": "set_permission", "target": "p", "permission": "present"}, "granted"),
        ({"type": "kick"}, "target"),
        ({"type": "create_poll", "question": "q"}, "options"),
        ({"type": "vote", "poll_id": "p"}, "option"),
        ({"type": "close_poll"}, "poll_id"),
    ],
)
def test_missing_required_fields_of_new_messages_are_bad_message(
    fields: dict[str, Any], name: str
) -> None:
    error = refused(json.dumps({**fields, "id": "m"}))
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, "m")
    assert name in error.message


@pytest.mark.parametrize("token", [{}, {"token": None}])
def test_a_join_without_a_token_decodes_so_the_server_can_say_token_missing(
    token: dict[str, Any],
) -> None:
    message = wire.decode_client(json.dumps({"type": "join", "id": "1", **token}))
    assert message == wire.Join(id="1", token=None)


def test_a_field_of_the_wrong_type_is_bad_message() -> None:
    error = refused(frame(type="publish", id="2", sdp=42))
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, "2")


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"type": "join", "token": "t", "entry": "moderator"}, "entry"),
        ({"type": "set_stage_access", "access": "open"}, "access"),
        ({"type": "set_stage_access", "access": "Everyone"}, "access"),
        ({"type": "set_room_mode", "mode": "webinar"}, "mode"),
        ({"type": "set_capacity", "capacity": 5, "full_policy": "evict"}, "full_policy"),
        ({"type": "set_device", "device": "screen", "on": True}, "device"),
        ({"type": "mute", "target": "p", "device": "speaker"}, "device"),
        ({"type": "set_role", "target": "p", "role": "owner"}, "role"),
        (
            {"type": "set_permission", "target": "p", "permission": "record", "granted": True},
            "permission",
        ),
        ({"type": "publish", "sdp": "v=0", "sources": {"0": "webcam"}}, "sources"),
    ],
)
def test_an_unknown_enum_value_is_bad_message(fields: dict[str, Any], name: str) -> None:
    error = refused(json.dumps({**fields, "id": "e"}))
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, "e")
    assert name in error.message


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"type": "set_device", "device": "mic", "on": "yes"}, "on"),
        ({"type": "set_speaker", "target": "p", "speaker": 1}, "speaker"),
        ({"type": "accept_invitation", "revision": "2"}, "revision"),
        ({"type": "accept_invitation", "revision": 2.5}, "revision"),
        ({"type": "vote", "poll_id": "p", "option": "1"}, "option"),
        ({"type": "create_poll", "question": "q", "options": "a,b"}, "options"),
        ({"type": "create_poll", "question": "q", "options": ["a", 2]}, "options"),
        ({"type": "publish", "sdp": "v=0", "sources": ["camera"]}, "sources"),
        ({"type": "lower_hand", "target": 5}, "target"),
    ],
)
def test_a_field_of_the_wrong_type_in_new_messages_is_bad_message(
    fields: dict[str, Any], name: str
) -> None:
    error = refused(json.dumps({**fields, "id": "w"}))
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, "w")
    assert name in error.message


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"type": "create_poll", "question": "q", "options": ["only"]}, "options"),
        (
            {"type": "create_poll", "question": "q", "options": [f"o{i}" for i in range(11)]},
            "options",
        ),
        ({"type": "create_poll", "question": "q", "options": []}, "options"),
        ({"type": "create_poll", "question": "q", "options": ["a", ""]}, "options"),
        ({"type": "create_poll", "question": "q", "options": ["a", "o" * 301]}, "options"),
        ({"type": "create_poll", "question": "", "options": ["a", "b"]}, "question"),
        ({"type": "create_poll", "question": "q" * 301, "options": ["a", "b"]}, "question"),
        ({"type": "chat", "text": "x" * 2001}, "text"),
        ({"type": "chat", "text": ""}, "text"),
        ({"type": "accept_invitation", "revision": -1}, "revision"),
        ({"type": "decline_invitation", "revision": -1}, "revision"),
        ({"type": "approve_request", "target": "p", "revision": -1}, "revision"),
        ({"type": "remove_from_stage", "target": "p", "revision": -5}, "revision"),
        ({"type": "invite", "target": "p" * 65, "revision": 0}, "target"),
        ({"type": "invite", "target": "", "revision": 0}, "target"),
        ({"type": "kick", "target": "p" * 65}, "target"),
        ({"type": "lower_hand", "target": "p" * 65}, "target"),
        ({"type": "mute", "target": "", "device": "mic"}, "target"),
        ({"type": "set_capacity", "capacity": 0, "full_policy": "reject"}, "capacity"),
        ({"type": "set_capacity", "capacity": 101, "full_policy": "queue"}, "capacity"),
        ({"type": "vote", "poll_id": "p", "option": -1}, "option"),
        ({"type": "vote", "poll_id": "p" * 65, "option": 0}, "poll_id"),
        ({"type": "close_poll", "poll_id": "p" * 65}, "poll_id"),
        ({"type": "resume", "room": "", "resume_token": "t"}, "room"),
        ({"type": "resume", "room": "r" * 129, "resume_token": "t"}, "room"),
        ({"type": "resume", "room": "r", "resume_token": ""}, "resume_token"),
        ({"type": "resume", "room": "r", "resume_token": "t" * 129}, "resume_token"),
        ({"type": "publish", "sdp": "v=0", "sources": {"m" * 33: "camera"}}, "sources"),
    ],
)
def test_values_out_of_range_are_bad_message(fields: dict[str, Any], name: str) -> None:
    error = refused(json.dumps({**fields, "id": "9"}))
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, "9")
    assert name in error.message


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"type": "join", "token": "t" * 4097}, "token"),
        ({"type": "join", "token": "t", "room": "r" * 129}, "room"),
        ({"type": "publish", "sdp": "v" * 65537}, "sdp"),
        ({"type": "subscribe_answer", "sdp": "v" * 65537}, "sdp"),
    ],
)
def test_over_long_strings_are_bad_message(fields: dict[str, Any], name: str) -> None:
    error = refused(json.dumps({**fields, "id": "9"}))
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, "9")
    assert name in error.message


def test_strings_at_their_limits_are_accepted() -> None:
    join = wire.decode_client(frame(type="join", token="t" * 4096, room="r" * 128))
    assert isinstance(join, wire.Join)
    publish = wire.decode_client(frame(type="publish", sdp="v" * 65536))
    assert isinstance(publish, wire.Publish)


@pytest.mark.parametrize(
    "text",
    ["not json", "", "[]", '"ping"', "null", '{"type": "ping"'],
)
def test_anything_but_a_json_object_is_bad_message(text: str) -> None:
    error = refused(text)
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, None)


@pytest.mark.parametrize("kind", ["5", "null", "[]", '{"a": 1}', "true", "1.5"])
def test_a_type_that_is_not_a_string_is_bad_message_with_the_id_echoed(kind: str) -> None:
    error = refused(f'{{"type": {kind}, "id": "1"}}')
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, "1")


@pytest.mark.parametrize(
    ("text", "request_id"),
    [
        ('{"type": "ping", "id": "a", "x": ' + "[" * 5000 + "]" * 5000 + "}", "a"),
        ('{"id": "b", "type": "chat", "text": ' + "[" * 5000, "b"),
        ('{"id": "c", "x": ' + '{"k": ' * 5000 + "0" + "}" * 5001, "c"),
        ('{"x": ' + "[" * 5000 + "]" * 5000 + ', "id": "late"}', None),
        ('{"x": {"id": "inner"}, "y": ' + "[" * 5000 + "]" * 5000 + "}", None),
        ('{"x": "\\"id\\"", "y": ' + "[" * 5000 + "]" * 5000 + "}", None),
        ('{"id": 7, "x": ' + "[" * 5000 + "]" * 5000 + "}", None),
    ],
)
def test_nesting_too_deep_is_bad_message_with_a_leading_id_echoed(
    text: str, request_id: str | None
) -> None:
    error = refused(text)
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, request_id)


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("a" * 2000, True),
        ("\U0001f600" * 1000, True),  # 2 UTF-16 units each
        ("\U0001f600" * 1000 + "a", False),
        ("é" * 2000, True),  # one unit each, two UTF-8 bytes
    ],
)
def test_chat_length_is_counted_in_utf16_code_units(text: str, accepted: bool) -> None:
    encoded = json.dumps({"type": "chat", "id": "c", "text": text})
    if accepted:
        assert isinstance(wire.decode_client(encoded), wire.Chat)
    else:
        error = refused(encoded)
        assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, "c")
        assert "UTF-16" in error.message


@pytest.mark.parametrize("field", ["revision", "option"])
def test_integers_beyond_2_53_are_bad_message(field: str) -> None:
    base = {"type": "vote", "poll_id": "p"} if field == "option" else {
        "type": "invite", "target": "t"}  # fmt: skip
    assert wire.decode_client(json.dumps({**base, field: 2**53 - 1}))
    for huge in (2**53, 10**3000):
        error = refused(json.dumps({**base, "id": "n", field: huge}))
        assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, "n")


def test_invalid_utf8_is_bad_message() -> None:
    error = refused(b'{"type": "ping", "id": "\xff"}')
    assert error.code == wire.ErrorCode.BAD_MESSAGE


def test_protocol_error_carries_code_message_and_request_id() -> None:
    error = wire.ProtocolError(wire.ErrorCode.NOT_JOINED, "join a room first", "3")
    assert (error.code, error.message, error.request_id) == (
        wire.ErrorCode.NOT_JOINED,
        "join a room first",
        "3",
    )
    assert str(error) == "join a room first"


# -- encode ----------------------------------------------------------------------------


@pytest.mark.parametrize("message", SERVER_MESSAGES, ids=lambda m: type(m).__name__)
def test_every_server_message_round_trips_through_encode(message: wire.ServerMessage) -> None:
    encoded = wire.encode(message)
    assert isinstance(encoded, str)
    assert msgspec.json.decode(encoded, type=wire.ServerMessage) == message


def test_every_server_message_type_is_covered_here() -> None:
    assert {type(m) for m in SERVER_MESSAGES} == set(typing.get_args(wire.ServerMessage))


def test_only_a_room_ended_bye_names_who_ended_it() -> None:
    assert json.loads(wire.encode(wire.Bye(reason="kicked"))) == {"type": "bye", "reason": "kicked"}
    ended = json.loads(wire.encode(wire.Bye(reason="room_ended", by=None, by_name=None)))
    assert ended == {"type": "bye", "reason": "room_ended", "by": None, "by_name": None}


def test_chat_is_the_only_type_used_in_both_directions() -> None:
    server_types = {tag(cls) for cls in typing.get_args(wire.ServerMessage)}
    assert server_types & wire.CLIENT_TYPES == {"chat"}


def test_a_server_chat_sent_back_is_refused_as_a_client_chat() -> None:
    echoed = wire.encode(wire.ChatMessage(participant_id="p", name="P", text="hi", at=1.0))
    error = refused(echoed)
    assert error.code == wire.ErrorCode.BAD_MESSAGE


def test_a_client_chat_is_not_a_server_chat() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(frame(type="chat", text="hi"), type=wire.ServerMessage)


def test_encode_writes_the_type_tag_and_every_field() -> None:
    you = wire.Participant(participant_id="p", identity="i", name="", role="participant")
    encoded = json.loads(wire.encode(wire.Joined(
        id=None,
        protocol=2,
        participant_id="p",
        room="r",
        role="participant",
        entry=wire.Entry.VIEWER,
        resume_token="rt",
        you=you,
        entries=["viewer"],
        policy=wire.Policy(mode="panel", stage_access="invite_only", capacity=4,
                           full_policy="evict_silent"),
        counts=wire.Counts(viewers=1, on_stage=0, hands=0, requests=0),
        participants=[you],
    )))  # fmt: skip
    person = {
        "participant_id": "p",
        "identity": "i",
        "name": "",
        "role": "participant",
        "status": "viewer",
        "on_stage": False,
        "revision": 0,
        "speaker": False,
        "mic": "off",
        "camera": "off",
        "hand": None,
        "can_present": False,
        "viewer_only": False,
        "connected": True,
        "speaking": False,
        "tracks": [],
    }
    assert encoded == {
        "type": "joined",
        "id": None,
        "protocol": 2,
        "participant_id": "p",
        "room": "r",
        "role": "participant",
        "entry": "viewer",
        "resume_token": "rt",
        "you": person,
        "entries": ["viewer"],
        "policy": {
            "mode": "panel",
            "stage_access": "invite_only",
            "capacity": 4,
            "full_policy": "evict_silent",
        },
        "counts": {"viewers": 1, "on_stage": 0, "hands": 0, "requests": 0},
        "participants": [person],
        "polls": [],
        "ice_servers": [],
    }


def test_poll_results_are_written_as_null_when_hidden() -> None:
    encoded = json.loads(wire.encode(wire.Poll(poll=POLL)))
    assert encoded["poll"]["results"] is None
    assert set(encoded["poll"]) == {"poll_id", "question", "options", "closed", "results"}


def test_replies_without_a_request_id_carry_null() -> None:
    assert json.loads(wire.encode(wire.Ack(id=None))) == {"type": "ack", "id": None}
    error = wire.Error(id=None, code=wire.ErrorCode.MESSAGE_TOO_LARGE, message="too big")
    assert json.loads(wire.encode(error))["id"] is None


def test_events_carry_no_request_id() -> None:
    replies = (wire.Joined, wire.PublishAnswer, wire.Ack, wire.Pong, wire.MediaStats, wire.Error)
    events = [m for m in SERVER_MESSAGES if not isinstance(m, replies)]
    assert events
    for message in events:
        assert "id" not in json.loads(wire.encode(message)), type(message).__name__


def test_error_codes_encode_as_their_string_values() -> None:
    for code in wire.ErrorCode:
        encoded = json.loads(wire.encode(wire.Error(id="1", code=code, message="m")))
        assert encoded["code"] == code.value


def test_error_code_values_are_unique_snake_case() -> None:
    values = [code.value for code in wire.ErrorCode]
    assert len(values) == len(set(values))
    assert all(value == value.lower() and " " not in value for value in values)


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "bye", "reason": "tired"}',
        '{"type": "stage_left", "reason": "bored"}',
        '{"type": "invitation_ended", "participant_id": "p", "reason": "ignored"}',
        '{"type": "request_cancelled", "reason": "moderator"}',
    ],
)
def test_an_unknown_reason_cannot_be_decoded(text: str) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(text, type=wire.ServerMessage)
