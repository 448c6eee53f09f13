"""docs/protocol.md stays in step with signaling/protocol/ and the server's constants.

Every message tag, field, enum value and error code must be documented, every JSON
example must be a message the server would accept (client -> server) or could have
sent (server -> client), and the limits and defaults the page states must be the
code's.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sfu import ortc
from signaling import audience, members, room, session
from signaling import protocol as wire
from signaling.roles import Role
from signaling.settings import RoomSettings, ServerSettings
from signaling.stage import machine
from signaling.stage.model import (
    Device,
    DeviceState,
    FullStagePolicy,
    ParticipantId,
    Permission,
    Person,
    RoomMode,
    RoomPolicy,
    StageAccess,
    StageStatus,
)
from signaling.web import front, ws

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
DOC = DOC_PATH.read_text(encoding="utf-8")

CLIENT_SECTION = "Client → server messages"
SERVER_SECTION = "Server → client messages"
OBJECTS_SECTION = "Shared objects"
AUDIENCE_SECTION = "Audiences"
SETTINGS_SECTION = "Room settings"
STAGE_SECTION = "The stage"
ERROR_SECTION = "Error codes"
CLOSE_SECTION = "WebSocket close codes"
TRANSCRIPT_SECTION = "Example session"

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_FENCE = re.compile(r"^```(\S*)\s*$")
_BACKTICKED = re.compile(r"^`([^`]+)`$")
_CODE = re.compile(r"`([^`]+)`")
DASH = "\N{EN DASH}"  # the page writes ranges with an en dash, as in 1-64


@dataclass(frozen=True)
class Block:
    """One fenced code block and the headings it sits under."""

    lang: str
    body: str
    line: int
    section: str  # the enclosing level-2 heading
    heading: str  # the nearest heading of any level


def _parse(doc: str) -> tuple[list[tuple[int, str, int]], list[Block]]:
    headings: list[tuple[int, str, int]] = []
    blocks: list[Block] = []
    section = heading = ""
    fence: tuple[str, int, list[str]] | None = None
    for number, line in enumerate(doc.splitlines(), start=1):
        fence_match = _FENCE.match(line)
        if fence is not None:
            if line.strip() == "```":
                lang, start, body = fence
                blocks.append(Block(lang, "\n".join(body), start, section, heading))
                fence = None
            else:
                fence[2].append(line)
            continue
        if fence_match is not None:
            fence = (fence_match[1], number, [])
            continue
        heading_match = _HEADING.match(line)
        if heading_match is not None:
            level, text = len(heading_match[1]), heading_match[2]
            headings.append((level, text, number))
            heading = text
            if level <= 2:
                section = text
    assert fence is None, "unterminated code fence"
    return headings, blocks


HEADINGS, BLOCKS = _parse(DOC)
JSON_BLOCKS = [b for b in BLOCKS if b.lang == "json"]
LINES = DOC.splitlines()


def _tag(cls: type[Any]) -> str:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


SERVER_CLASSES = {_tag(cls): cls for cls in typing.get_args(wire.ServerMessage)}
CLIENT_CLASSES = {_tag(cls): cls for cls in typing.get_args(wire.ClientMessage)}
SERVER_TYPES = frozenset(SERVER_CLASSES)
CLIENT_TYPES = frozenset(CLIENT_CLASSES)
STAGE_TYPES = frozenset(_tag(cls) for cls in typing.get_args(wire.StageRequest))


def _message_headings(section: str) -> set[str]:
    """Backticked level-3 headings inside the level-2 `section`."""
    names: set[str] = set()
    inside = False
    for level, text, _ in HEADINGS:
        if level <= 2:
            inside = text == section
        elif inside and level == 3:
            match = _BACKTICKED.match(text)
            if match is not None:
                names.add(match[1])
    return names


def _text_until_next(start: int, max_level: int) -> str:
    """The lines after the heading at line `start`, up to the next heading of `max_level`."""
    end = next(
        (number for level, _, number in HEADINGS if level <= max_level and number > start),
        len(LINES) + 1,
    )
    return "\n".join(LINES[start : end - 1])


def _section_text(section: str) -> str:
    start = next(number for level, text, number in HEADINGS if level == 2 and text == section)
    return _text_until_next(start, 2)


def _subsection_text(section: str, heading: str) -> str:
    """The text under the level-3 `heading` of the level-2 `section`."""
    inside = False
    for level, text, number in HEADINGS:
        if level <= 2:
            inside = text == section
        elif inside and level == 3 and text == heading:
            return _text_until_next(number, 3)
    pytest.fail(f"no heading {heading!r} in the {section!r} section")


def _table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|") and not re.fullmatch(r"\|[\s:|-]+\|", stripped):
            cells = re.split(r"(?<!\\)\|", stripped.strip("|"))
            rows.append([cell.strip() for cell in cells])
    return rows


def _first_column_codes(text: str) -> set[str]:
    codes = set()
    for row in _table_rows(text):
        match = _BACKTICKED.match(row[0])
        if match is not None:
            codes.add(match[1])
    return codes


def _rows_by_name(text: str) -> dict[str, str]:
    """Table rows keyed by each backticked name of their first cell (`mic`, `camera`)."""
    rows: dict[str, str] = {}
    for row in _table_rows(text):
        for name in _CODE.findall(row[0]):
            rows[name] = " | ".join(row)
    return rows


def _load(block: Block) -> dict[str, Any]:
    try:
        value = json.loads(block.body)
    except json.JSONDecodeError as exc:  # pragma: no cover - the failure message
        pytest.fail(f"docs/protocol.md line {block.line}: JSON example does not parse: {exc}")
    assert isinstance(value, dict), f"line {block.line}: an example must be a JSON object"
    return value


def _check_client(text: str, where: str) -> wire.ClientMessage:
    try:
        return wire.decode_client(text)
    except wire.ProtocolError as exc:  # pragma: no cover - the failure message
        pytest.fail(f"{where}: client example refused: {exc.code}: {exc.message}")


def _check_server(text: str, where: str) -> wire.ServerMessage:
    try:
        message: wire.ServerMessage = msgspec.json.decode(text, type=wire.ServerMessage)
    except msgspec.ValidationError as exc:  # pragma: no cover - the failure message
        pytest.fail(f"{where}: server example does not decode: {exc}")
    # The server always sends every field: an example must look exactly like its output.
    assert json.loads(wire.encode(message)) == json.loads(text), (
        f"{where}: server example differs from what the server would send"
    )
    return message


def _transcript_lines() -> list[tuple[str, str, str]]:
    lines = []
    for block in BLOCKS:
        if block.section != TRANSCRIPT_SECTION:
            continue
        for offset, line in enumerate(block.body.splitlines(), start=1):
            if line.startswith(("→ ", "← ")):
                where = f"docs/protocol.md line {block.line + offset}"
                lines.append((line[0], line[2:], where))
    return lines


def _server_examples() -> list[tuple[str, str]]:
    """(JSON text, where) for every server message the page shows."""
    examples = [
        (block.body, f"docs/protocol.md line {block.line}")
        for block in JSON_BLOCKS
        if block.section == SERVER_SECTION
        or (block.section != CLIENT_SECTION and _load(block).get("type") not in CLIENT_TYPES)
    ]
    examples += [
        (text, where) for direction, text, where in _transcript_lines() if direction == "←"
    ]
    return examples


def _values(enum: type[Enum]) -> set[str]:
    return {member.value for member in enum}


def _literal_values(cls: type[Any], field: str) -> tuple[str, ...]:
    hints = typing.get_type_hints(cls)
    values = typing.get_args(hints[field])
    assert values, f"{cls.__name__}.{field} is not a Literal"
    return values


# -- coverage of the protocol ----------------------------------------------------------


def test_the_doc_exists_and_states_the_protocol_version() -> None:
    assert f"version {wire.PROTOCOL_VERSION}" in DOC
    assert f"version **{wire.PROTOCOL_VERSION}**" in DOC
    assert f'"protocol": {wire.PROTOCOL_VERSION}' in DOC


def test_client_types_constant_matches_the_client_message_union() -> None:
    assert CLIENT_TYPES == wire.CLIENT_TYPES


def test_every_client_message_has_a_heading_in_the_client_section() -> None:
    assert _message_headings(CLIENT_SECTION) == CLIENT_TYPES


def test_every_server_message_has_a_heading_in_the_server_section() -> None:
    assert _message_headings(SERVER_SECTION) == SERVER_TYPES


def test_the_client_message_overview_table_lists_every_client_message_once() -> None:
    text = _section_text(CLIENT_SECTION)
    listed = [
        name
        for row in _table_rows(text)[1:]
        for name in _CODE.findall(row[1])
        if name in CLIENT_TYPES
    ]
    # `lower_hand` is listed for everyone and again, with a target, for moderators.
    assert set(listed) == CLIENT_TYPES
    assert sorted(name for name in listed if name != "lower_hand") == sorted(
        CLIENT_TYPES - {"lower_hand"}
    )


@pytest.mark.parametrize("tag", sorted(CLIENT_TYPES | SERVER_TYPES))
def test_every_message_has_a_json_example_under_its_heading(tag: str) -> None:
    examples = [b for b in JSON_BLOCKS if b.heading == f"`{tag}`"]
    assert examples, f"no JSON example under the `{tag}` heading"
    for block in examples:
        assert _load(block).get("type") == tag, (
            f"line {block.line}: an example under `{tag}` must be a `{tag}` message"
        )


def _fields(cls: type[msgspec.Struct]) -> tuple[msgspec.inspect.Field, ...]:
    """A message's fields as the codec sees them (types and constraints)."""
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    return info.fields


def _client_type_phrase(info: msgspec.inspect.Type) -> list[str]:
    """What the doc's table row must say about a field's type and constraints."""
    if isinstance(info, msgspec.inspect.UnionType):
        (info,) = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
    match info:
        case msgspec.inspect.StrType(min_length=low, max_length=high):
            return ["string, " + (f"{low}{DASH}{high}" if low else f"≤ {high}")]
        case msgspec.inspect.IntType(ge=low, le=None):
            return [f"integer ≥ {low}"]
        case msgspec.inspect.IntType(ge=low, le=high):
            return [f"integer, {low}{DASH}{high}"]
        case msgspec.inspect.BoolType():
            return ["boolean"]
        case msgspec.inspect.EnumType(cls=enum):
            return [f'`"{value}"`' for value in _values(enum)]
        case msgspec.inspect.ListType(item_type=msgspec.inspect.StrType() as item):
            return [
                f"{info.min_length}{DASH}{info.max_length} strings, "
                f"{item.min_length}{DASH}{item.max_length} each"
            ]
        case msgspec.inspect.ListType(item_type=msgspec.inspect.StructType()):
            return [f"list of at most {info.max_length} objects"]
        case msgspec.inspect.DictType(key_type=msgspec.inspect.StrType() as key):
            values = _client_type_phrase(info.value_type)
            return ["object", f"≤ {key.max_length} characters", *values]
        case _:  # pragma: no cover - a new field type needs a rule here
            pytest.fail(f"no documentation rule for {info}")


# `join.token` is optional on the wire only so that its absence is `token_missing`.
_REQUIRED_IN_PRACTICE = {("join", "token")}


@pytest.mark.parametrize("tag", sorted(CLIENT_TYPES))
def test_every_client_field_has_a_table_row_stating_its_type_limits_and_default(
    tag: str,
) -> None:
    cls = CLIENT_CLASSES[tag]
    rows = _rows_by_name(_subsection_text(CLIENT_SECTION, f"`{tag}`"))
    defaults = {f.name: f.default for f in msgspec.structs.fields(cls)}
    for field in _fields(cls):
        if field.name == "id":
            continue  # documented once, in the overview
        assert field.name in rows, f"`{tag}` has no table row for `{field.name}`"
        _check_row(tag, field, rows[field.name], defaults[field.name])
        if isinstance(field.type, msgspec.inspect.ListType) and isinstance(
            field.type.item_type, msgspec.inspect.StructType
        ):  # a list of objects: one row per member field, named `list[].member`
            item = field.type.item_type
            item_defaults = {f.name: f.default for f in msgspec.structs.fields(item.cls)}
            for member in item.fields:
                name = f"{field.name}[].{member.name}"
                assert name in rows, f"`{tag}` has no table row for `{name}`"
                _check_row(tag, member, rows[name], item_defaults[member.name])
    if not rows:
        assert "No fields." in " ".join(_subsection_text(CLIENT_SECTION, f"`{tag}`").split())


def _check_row(tag: str, field: msgspec.inspect.Field, row: str, default: object) -> None:
    for phrase in _client_type_phrase(field.type):
        assert phrase in row, f"`{tag}.{field.name}`: the row should say {phrase!r}: {row}"
    if not field.required and (tag, field.name) not in _REQUIRED_IN_PRACTICE:
        assert "optional" in row, f"`{tag}.{field.name}` is optional: {row}"
        if default is not None:
            assert f"`{json.dumps(default)}`" in row, (
                f"`{tag}.{field.name}`: the row should give the default {default!r}"
            )


@pytest.mark.parametrize("tag", sorted(SERVER_TYPES))
def test_every_server_field_is_named_under_its_heading(tag: str) -> None:
    text = _subsection_text(SERVER_SECTION, f"`{tag}`")
    for field in msgspec.structs.fields(SERVER_CLASSES[tag]):
        if field.name != "id":
            assert f"`{field.name}`" in text, f"`{tag}` does not explain `{field.name}`"


SHARED_OBJECTS: dict[str, type[msgspec.Struct]] = {
    "Participant": wire.Participant,
    "Track": wire.Track,
    "Policy": wire.Policy,
    "Counts": wire.Counts,
    "QueueEntry": wire.QueueEntry,
    "PollInfo": wire.PollInfo,
    "IceServer": wire.IceServer,
}


@pytest.mark.parametrize("heading", sorted(SHARED_OBJECTS))
def test_each_shared_object_table_lists_exactly_its_fields(heading: str) -> None:
    rows = _rows_by_name(_subsection_text(OBJECTS_SECTION, heading))
    fields = {f.name for f in msgspec.structs.fields(SHARED_OBJECTS[heading])}
    assert set(rows) - {"Field"} == fields


def test_the_status_table_lists_every_stage_status() -> None:
    text = _subsection_text(STAGE_SECTION, "Stage statuses")
    assert _first_column_codes(text) - {"status"} == _values(StageStatus)


def test_the_device_table_lists_every_device_state() -> None:
    text = _subsection_text(STAGE_SECTION, "Devices: microphone and camera")
    assert _first_column_codes(text) == _values(DeviceState)


def test_the_grant_table_names_every_source() -> None:
    text = _subsection_text(STAGE_SECTION, "Grants: what the SFU enforces")
    named = {name for row in _table_rows(text)[1:] for name in _CODE.findall(row[0])}
    assert named == _values(wire.Source)


def test_the_policy_table_names_every_mode_access_and_full_stage_policy() -> None:
    rows = _rows_by_name(_subsection_text(STAGE_SECTION, "Room policy"))
    for field, enum in (
        ("mode", RoomMode),
        ("stage_access", StageAccess),
        ("full_policy", FullStagePolicy),
    ):
        for value in _values(enum):
            assert f"`{value}`" in rows[field], f"policy `{field}` value `{value}`"


@pytest.mark.parametrize(
    "enum", [Role, Permission, Device, wire.Entry, wire.Source], ids=lambda e: e.__name__
)
def test_every_value_of_the_other_enums_is_documented(enum: type[StrEnum]) -> None:
    for value in _values(enum):
        assert f"`{value}`" in DOC or f'`"{value}"`' in DOC, f"{enum.__name__} {value}"


@pytest.mark.parametrize(
    ("tag", "field"),
    [
        ("invitation_ended", "reason"),
        ("request_cancelled", "reason"),
        ("stage_left", "reason"),
        ("bye", "reason"),
    ],
)
def test_every_reason_is_documented_under_its_message(tag: str, field: str) -> None:
    text = _subsection_text(SERVER_SECTION, f"`{tag}`")
    for value in _literal_values(SERVER_CLASSES[tag], field):
        assert f"`{value}`" in text, f"`{tag}` does not document the reason `{value}`"


def test_every_bye_reason_has_a_row_in_the_bye_table() -> None:
    text = _subsection_text(SERVER_SECTION, "`bye`")
    assert _first_column_codes(text) - {"reason"} == set(_literal_values(wire.Bye, "reason"))


def test_the_audience_table_has_one_row_per_server_message() -> None:
    rows = _table_rows(_section_text(AUDIENCE_SECTION))[1:]
    listed = [_BACKTICKED.match(row[0]) for row in rows]
    assert all(listed), "every audience row starts with a backticked message type"
    names = [match[1] for match in listed if match is not None]
    assert sorted(names) == sorted(SERVER_TYPES)
    assert all(len(row) == 3 and all(row) for row in rows)


def test_every_error_code_is_in_the_error_table() -> None:
    assert _first_column_codes(_section_text(ERROR_SECTION)) == {c.value for c in wire.ErrorCode}


def test_every_error_code_row_has_a_meaning_and_an_example_trigger() -> None:
    rows = [r for r in _table_rows(_section_text(ERROR_SECTION)) if _BACKTICKED.match(r[0])]
    for row in rows:
        assert len(row) == 3 and all(row), f"incomplete error table row: {row}"


def test_the_stage_refusals_named_in_the_error_section_are_the_machines() -> None:
    intro = _section_text(ERROR_SECTION).split("\n|", 1)[0]
    assert set(_CODE.findall(intro)) == {r.value for r in machine.Refusal}
    # ... and the room maps each of them onto the wire code of the same name.
    assert {k: v.value for k, v in room._STAGE_ERRORS.items()} == {
        r.value: r.value for r in machine.Refusal
    }


def test_token_error_codes_are_wire_error_codes() -> None:
    # The session maps a TokenError's code onto ErrorCode by value.
    from signaling.auth import TokenErrorCode

    assert {c.value for c in TokenErrorCode} <= {c.value for c in wire.ErrorCode}


def test_the_messages_that_are_not_deduplicated_are_exactly_the_non_stage_ones() -> None:
    text = _subsection_text(STAGE_SECTION, "Request ids make stage commands idempotent")
    match = re.search(r"every client message except (.*?)\) are applied", text, re.S)
    assert match is not None
    assert set(_CODE.findall(match[1])) == CLIENT_TYPES - STAGE_TYPES


def test_every_close_code_the_server_uses_is_in_the_close_code_table() -> None:
    used = {
        session.CLOSE_NORMAL,
        session.CLOSE_GOING_AWAY,
        session.CLOSE_POLICY,
        session.CLOSE_TRY_AGAIN_LATER,
        members.CLOSE_NORMAL,  # the room ended
        members.CLOSE_POLICY,
        1009,  # aiohttp's MESSAGE_TOO_BIG for frames over the hard limit
        front.CLOSE_WORKER_UNAVAILABLE,
        front.CLOSE_WORKER_GONE,
    }
    documented = {int(row[0]) for row in _table_rows(_section_text(CLOSE_SECTION))[1:]}
    assert documented == used


# -- constants and defaults ------------------------------------------------------------


def test_limits_in_the_doc_match_the_code() -> None:
    assert f"**{session.OUTBOX_LIMIT}**" in DOC
    assert f"**{ws.HARD_FRAME_FACTOR}** times" in DOC
    assert f"every **{ws.HEARTBEAT_SECONDS:g}** seconds" in DOC
    assert f"({ServerSettings().max_message_bytes} by default)" in DOC
    assert f"last **{members.REPLY_MEMORY}** request" in DOC
    assert f"every {room.TICK_INTERVAL:g} seconds" in DOC
    assert f"{room.TICK_INTERVAL:g}-second tick" in DOC


def test_the_request_id_limit_in_the_doc_matches_the_codec() -> None:
    (field,) = [f for f in _fields(wire.Ping) if f.name == "id"]
    assert isinstance(field.type, msgspec.inspect.UnionType)
    (string,) = [t for t in field.type.types if isinstance(t, msgspec.inspect.StrType)]
    assert f"a string of at most\n  {string.max_length} characters" in DOC


def test_poll_limits_agree_between_the_codec_the_machine_and_the_doc() -> None:
    fields = {f.name: f.type for f in _fields(wire.CreatePoll)}
    options, question = fields["options"], fields["question"]
    assert isinstance(options, msgspec.inspect.ListType)
    assert isinstance(question, msgspec.inspect.StrType)
    assert options.max_length == machine.MAX_POLL_OPTIONS
    assert question.max_length == machine.MAX_POLL_TEXT
    assert f"{options.min_length}{DASH}{options.max_length}\noptions" in DOC
    assert f"a poll\n  question or option 1{DASH}{question.max_length}" in DOC


def test_capacity_limits_agree_between_the_codec_the_settings_and_the_policy() -> None:
    (field,) = [f for f in _fields(wire.SetCapacity) if f.name == "capacity"]
    assert isinstance(field.type, msgspec.inspect.IntType)
    low, high = field.type.ge, field.type.le
    assert low is not None and high is not None
    RoomPolicy(capacity=low)
    RoomPolicy(capacity=high)
    for outside in (low - 1, high + 1):
        with pytest.raises(ValueError):
            RoomPolicy(capacity=outside)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"stage_capacity": high + 1}, RoomSettings)
    assert f"Seats on the stage, {low}{DASH}{high}." in DOC


def _setting_text(value: object) -> str:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def test_the_room_settings_table_lists_every_setting_with_its_default() -> None:
    rows = {row[0]: row[1] for row in _table_rows(_section_text(SETTINGS_SECTION))[1:]}
    defaults = RoomSettings()
    expected = {
        f"`rooms.{field.name}`": _setting_text(getattr(defaults, field.name))
        for field in msgspec.structs.fields(RoomSettings)
    }
    assert rows == expected


def test_defaults_quoted_in_the_prose_match_the_settings() -> None:
    defaults = RoomSettings()
    assert f"`rooms.reconnect_grace` seconds ({defaults.reconnect_grace:g} by default)" in DOC
    assert f"`rooms.invitation_ttl`, {defaults.invitation_ttl:g} seconds by default" in DOC
    assert f"`rooms.chat_burst` messages at once ({defaults.chat_burst} by" in DOC
    assert f"`rooms.chat_rate` messages per second ({defaults.chat_rate:g} by default)" in DOC


def test_sfu_wide_payload_types_are_documented() -> None:
    rows = {tuple(row) for row in _table_rows(DOC)}
    for name, payload_type in ortc.PAYLOAD_TYPES.items():
        assert (name, str(payload_type)) in rows, f"{name} {payload_type} missing"


def test_sfu_wide_extension_ids_are_documented() -> None:
    rows = {(row[0], row[1]) for row in _table_rows(DOC) if len(row) >= 2}
    for uri, ext_id in ortc.EXTENSION_IDS.items():
        assert (f"`{uri}`", str(ext_id)) in rows, f"{uri} {ext_id} missing"


# -- the examples are real messages ----------------------------------------------------


def test_there_are_json_examples() -> None:
    assert len(JSON_BLOCKS) >= len(CLIENT_TYPES | SERVER_TYPES)


@pytest.mark.parametrize("block", JSON_BLOCKS, ids=lambda b: f"line{b.line}")
def test_every_json_example_parses_and_decodes_in_its_direction(block: Block) -> None:
    value = _load(block)
    where = f"docs/protocol.md line {block.line}"
    if block.section == CLIENT_SECTION:
        expected = "client"
    elif block.section == SERVER_SECTION:
        expected = "server"
    else:  # `chat` names a message in both directions: the sections say which
        assert value.get("type") not in CLIENT_TYPES & SERVER_TYPES, f"{where}: ambiguous"
        expected = "client" if value.get("type") in CLIENT_TYPES else "server"
    if expected == "client":
        assert value.get("type") in CLIENT_TYPES, f"{where}: not a client message"
        message = _check_client(block.body, where)
        assert message.id == value.get("id")
    else:
        assert value.get("type") in SERVER_TYPES, f"{where}: not a server message"
        _check_server(block.body, where)


def _objects(value: Any, key: str) -> Iterator[dict[str, Any]]:
    """Every object found under `key` (or in a list under it), at any depth."""
    if isinstance(value, dict):
        for name, item in value.items():
            if name == key and isinstance(item, dict):
                yield item
            elif name == key and isinstance(item, list):
                yield from (x for x in item if isinstance(x, dict))
            yield from _objects(item, key)
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item, key)


def _participants(message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("participant", "participants", "you"):
        yield from _objects(message, key)


@pytest.mark.parametrize("example", _server_examples(), ids=lambda e: e[1].split()[-1])
def test_server_examples_use_only_values_the_server_sends(example: tuple[str, str]) -> None:
    # The wire types of these fields are plain strings: check them against the enums.
    text, where = example
    message = json.loads(text)
    for person in _participants(message):
        assert person["status"] in _values(StageStatus), where
        assert person["on_stage"] == (person["status"] == StageStatus.ON_STAGE), where
        assert person["role"] in _values(Role), where
        assert {person["mic"], person["camera"]} <= _values(DeviceState), where
        if person["role"] in (Role.HOST, Role.MODERATOR):
            assert person["can_present"], f"{where}: hosts and moderators may present"
        for track in person["tracks"]:
            assert track["source"] in _values(wire.Source), where
            audio = track["source"] in (wire.Source.MICROPHONE, wire.Source.SCREEN_AUDIO)
            assert track["kind"] == ("audio" if audio else "video"), where
    for policy in _objects(message, "policy"):
        assert policy["mode"] in _values(RoomMode), where
        assert policy["stage_access"] in _values(StageAccess), where
        assert policy["full_policy"] in _values(FullStagePolicy), where
    if message["type"] == "device_forced":
        assert message["device"] in _values(Device), where
        assert message["state"] in _values(DeviceState), where
    if message["type"] == "joined":
        assert message["role"] == message["you"]["role"], where
        assert message["participant_id"] == message["you"]["participant_id"], where
        assert message["entries"] in (["viewer"], ["viewer", "stage"]), where
    for poll in _objects(message, "poll") if message["type"] == "poll" else []:
        if poll["results"] is not None:
            assert len(poll["results"]) == len(poll["options"]), where


def test_counts_in_examples_agree_with_the_participants_they_come_with() -> None:
    # joined and snapshot to the full view carry everyone: their counts must add up.
    checked = 0
    for text, where in _server_examples():
        message = json.loads(text)
        if message["type"] not in ("joined", "snapshot"):
            continue
        people = message["participants"]
        full = message["type"] == "snapshot" or audience_is_full(message["you"])
        if not full:
            continue
        expected = {
            "viewers": sum(1 for p in people if not p["on_stage"]),
            "on_stage": sum(1 for p in people if p["on_stage"]),
            "hands": sum(1 for p in people if p["hand"] is not None),
            "requests": sum(1 for p in people if p["status"] == StageStatus.REQUESTED),
        }
        assert message["counts"] == expected, where
        checked += 1
    assert checked


def audience_is_full(person: dict[str, Any]) -> bool:
    moderator = person["role"] in (Role.HOST, Role.MODERATOR)
    return moderator or person["status"] != StageStatus.VIEWER


def test_the_full_view_rule_in_the_checks_above_is_the_servers() -> None:
    for role in Role:
        for status in StageStatus:
            someone = Person(
                participant_id=ParticipantId("p"),
                identity="p",
                name="P",
                role=role,
                joined_at=0.0,
                status=status,
            )
            described = {"role": role.value, "status": status.value}
            assert audience.full_view(someone) == audience_is_full(described)


def test_the_example_transcript_has_both_directions() -> None:
    directions = {direction for direction, _, _ in _transcript_lines()}
    assert directions == {"→", "←"}


@pytest.mark.parametrize("line", _transcript_lines(), ids=lambda line: line[2].split()[-1])
def test_every_transcript_line_is_a_valid_message(line: tuple[str, str, str]) -> None:
    direction, text, where = line
    if direction == "→":
        _check_client(text, where)
    else:
        _check_server(text, where)


def test_the_transcript_pairs_every_request_id_with_a_reply() -> None:
    # Per connection (each block), a request with an id is answered with that id.
    for block in (b for b in BLOCKS if b.section == TRANSCRIPT_SECTION):
        sent, answered = [], set()
        for line in block.body.splitlines():
            if line.startswith("→ "):
                sent.append(json.loads(line[2:]).get("id"))
            elif line.startswith("← "):
                answered.add(json.loads(line[2:]).get("id"))
        assert [request_id for request_id in sent if request_id not in answered] == []


def test_the_transcript_quotes_revisions_the_server_announced() -> None:
    # A command that quotes a revision quotes the target's latest revision on that connection.
    for block in (b for b in BLOCKS if b.section == TRANSCRIPT_SECTION):
        revisions: dict[str, int] = {}
        invited: int | None = None
        for line in block.body.splitlines():
            if not line.startswith(("→ ", "← ")):
                continue
            message = json.loads(line[2:])
            if line.startswith("← "):
                for person in _participants(message):
                    revisions[person["participant_id"]] = person["revision"]
                if message["type"] == "invited":
                    invited = message["revision"]
            elif "revision" in message:
                if "target" in message:
                    assert message["revision"] == revisions[message["target"]], line
                else:
                    assert message["revision"] == invited, line
