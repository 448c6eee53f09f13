"""The wire codec: what decode_client accepts, how it refuses, and what encode writes."""

from __future__ import annotations

import json
import typing
from typing import Any

import msgspec
import pytest

from signaling import protocol as wire

SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"

CLIENT_MESSAGES: list[wire.ClientMessage] = [
    wire.Join(id="1", token="header.claims.signature", entry=wire.Entry.STAGE, room="town-hall"),
    wire.Join(token="header.claims.signature"),
    wire.Publish(id="2", sdp=SDP),
    wire.SubscribeAnswer(id="3", sdp=SDP),
    wire.Leave(id="4"),
    wire.Leave(),
    wire.Ping(id="5"),
]

PARTICIPANT = wire.Participant(
    participant_id="9f2c4a7b1e03",
    identity="alice",
    name="Alice",
    role="host",
    on_stage=True,
    speaking=True,
    tracks=[wire.Track(track_id="5d0f3c2b", kind="audio", source="microphone")],
)

SERVER_MESSAGES: list[wire.ServerMessage] = [
    wire.Joined(
        id="1",
        protocol=wire.PROTOCOL_VERSION,
        participant_id="9f2c4a7b1e03",
        room="town-hall",
        role="host",
        entry=wire.Entry.STAGE,
        participants=[PARTICIPANT],
    ),
    wire.PublishAnswer(id="2", sdp=SDP),
    wire.SubscribeOffer(sdp=SDP),
    wire.Ack(id="3"),
    wire.Ack(id=None),
    wire.Pong(id="5"),
    wire.ParticipantJoined(participant=PARTICIPANT),
    wire.ParticipantUpdated(participant=PARTICIPANT),
    wire.ParticipantLeft(participant_id="9f2c4a7b1e03"),
    wire.Speaking(participant_id="9f2c4a7b1e03", speaking=False),
    wire.ActiveSpeaker(participant_id="9f2c4a7b1e03"),
    wire.ActiveSpeaker(participant_id=None),
    wire.Error(id="7", code=wire.ErrorCode.CONFLICT, message="no offer is waiting"),
    wire.Bye(reason="shutting_down"),
]


def refused(frame: str | bytes) -> wire.ProtocolError:
    with pytest.raises(wire.ProtocolError) as caught:
        wire.decode_client(frame)
    return caught.value


def frame(**fields: Any) -> str:
    return json.dumps(fields)


# -- decode_client: accepted frames ----------------------------------------------------


@pytest.mark.parametrize("message", CLIENT_MESSAGES, ids=lambda m: type(m).__name__)
def test_every_client_message_round_trips(message: wire.ClientMessage) -> None:
    assert wire.decode_client(msgspec.json.encode(message)) == message


@pytest.mark.parametrize("message", CLIENT_MESSAGES, ids=lambda m: type(m).__name__)
def test_client_messages_are_tagged_by_type(message: wire.ClientMessage) -> None:
    encoded = json.loads(msgspec.json.encode(message))
    assert encoded["type"] in wire.CLIENT_TYPES


def test_client_types_are_exactly_the_tags_of_the_client_union() -> None:
    tags = {cls.__struct_config__.tag for cls in typing.get_args(wire.ClientMessage)}
    assert tags == wire.CLIENT_TYPES


def test_join_defaults_to_viewer_without_a_room() -> None:
    message = wire.decode_client(frame(type="join", token="t"))
    assert message == wire.Join(token="t", entry=wire.Entry.VIEWER, room=None, id=None)


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


# -- decode_client: refused frames -----------------------------------------------------


def test_unknown_type_is_refused_and_keeps_the_request_id() -> None:
    error = refused(frame(type="subscribe", id="42"))
    assert error.code == wire.ErrorCode.UNKNOWN_TYPE
    assert error.request_id == "42"
    assert "'subscribe'" in error.message


def test_a_missing_type_is_an_unknown_type_and_keeps_the_request_id() -> None:
    error = refused(frame(id="42", token="t"))
    assert (error.code, error.request_id) == (wire.ErrorCode.UNKNOWN_TYPE, "42")


def test_server_message_types_are_unknown_to_the_server() -> None:
    error = refused(frame(type="pong", id="1"))
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


def test_a_missing_required_field_is_bad_message_keeping_the_id() -> None:
    error = refused(frame(type="publish", id="1"))
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, "1")
    assert "sdp" in error.message


@pytest.mark.parametrize("token", [{}, {"token": None}])
def test_a_join_without_a_token_decodes_so_the_server_can_say_token_missing(
    token: dict[str, Any],
) -> None:
    message = wire.decode_client(json.dumps({"type": "join", "id": "1", **token}))
    assert message == wire.Join(id="1", token=None)


def test_a_field_of_the_wrong_type_is_bad_message() -> None:
    error = refused(frame(type="publish", id="2", sdp=42))
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, "2")


def test_an_unknown_entry_is_bad_message() -> None:
    error = refused(frame(type="join", id="1", token="t", entry="moderator"))
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, "1")


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
    ["not json", "", "[]", '"ping"', "null", '{"type": "ping"', '{"type": 5, "id": "1"}'],
)
def test_anything_but_a_json_object_with_a_string_type_is_bad_message(text: str) -> None:
    error = refused(text)
    assert (error.code, error.request_id) == (wire.ErrorCode.BAD_MESSAGE, None)


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


@pytest.mark.parametrize("message", SERVER_MESSAGES, ids=lambda m: type(m).__name__)
def test_encoded_server_messages_never_collide_with_client_types(
    message: wire.ServerMessage,
) -> None:
    assert json.loads(wire.encode(message))["type"] not in wire.CLIENT_TYPES


def test_encode_writes_the_type_tag_and_every_field() -> None:
    encoded = json.loads(wire.encode(wire.Joined(
        id=None,
        protocol=1,
        participant_id="p",
        room="r",
        role="participant",
        entry=wire.Entry.VIEWER,
        participants=[wire.Participant(
            participant_id="p", identity="i", name="", role="participant", on_stage=False
        )],
    )))  # fmt: skip
    assert encoded == {
        "type": "joined",
        "id": None,
        "protocol": 1,
        "participant_id": "p",
        "room": "r",
        "role": "participant",
        "entry": "viewer",
        "participants": [
            {
                "participant_id": "p",
                "identity": "i",
                "name": "",
                "role": "participant",
                "on_stage": False,
                "speaking": False,
                "tracks": [],
            }
        ],
    }


def test_replies_without_a_request_id_carry_null() -> None:
    assert json.loads(wire.encode(wire.Ack(id=None))) == {"type": "ack", "id": None}
    error = wire.Error(id=None, code=wire.ErrorCode.MESSAGE_TOO_LARGE, message="too big")
    assert json.loads(wire.encode(error))["id"] is None


def test_events_carry_no_request_id() -> None:
    for message in (
        wire.SubscribeOffer(sdp=SDP),
        wire.ParticipantLeft(participant_id="p"),
        wire.Speaking(participant_id="p", speaking=True),
        wire.ActiveSpeaker(participant_id=None),
        wire.Bye(reason="left"),
    ):
        assert "id" not in json.loads(wire.encode(message))


def test_error_codes_encode_as_their_string_values() -> None:
    for code in wire.ErrorCode:
        encoded = json.loads(wire.encode(wire.Error(id="1", code=code, message="m")))
        assert encoded["code"] == code.value


def test_error_code_values_are_unique_snake_case() -> None:
    values = [code.value for code in wire.ErrorCode]
    assert len(values) == len(set(values))
    assert all(value == value.lower() and " " not in value for value in values)


def test_an_unknown_bye_reason_cannot_be_decoded() -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode('{"type": "bye", "reason": "tired"}', type=wire.ServerMessage)
