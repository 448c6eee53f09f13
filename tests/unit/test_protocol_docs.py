"""docs/protocol.md stays in step with signaling/protocol.py and the server's constants.

Every message tag and error code must be documented, and every JSON example must be a
message the server would accept (client -> server) or could have sent (server -> client).
"""

from __future__ import annotations

import json
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sfu import ortc
from signaling import protocol as wire
from signaling import session
from signaling.web import ws

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
DOC = DOC_PATH.read_text(encoding="utf-8")

CLIENT_SECTION = "Client → server messages"
SERVER_SECTION = "Server → client messages"
ERROR_SECTION = "Error codes"
CLOSE_SECTION = "WebSocket close codes"
TRANSCRIPT_SECTION = "Example session"

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_FENCE = re.compile(r"^```(\S*)\s*$")
_BACKTICKED = re.compile(r"^`([^`]+)`$")


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


def _tag(cls: type[Any]) -> str:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)
    return tag


SERVER_TYPES = frozenset(_tag(cls) for cls in typing.get_args(wire.ServerMessage))
CLIENT_TYPES = frozenset(_tag(cls) for cls in typing.get_args(wire.ClientMessage))


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


def _section_text(section: str) -> str:
    start = next(number for level, text, number in HEADINGS if level == 2 and text == section)
    end = next(
        (number for level, _, number in HEADINGS if level <= 2 and number > start),
        len(DOC.splitlines()) + 1,
    )
    return "\n".join(DOC.splitlines()[start : end - 1])


def _table_rows(text: str) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|") and not re.fullmatch(r"\|[\s:|-]+\|", stripped):
            rows.append([cell.strip() for cell in stripped.strip("|").split("|")])
    return rows


def _first_column_codes(section: str) -> set[str]:
    codes = set()
    for row in _table_rows(_section_text(section)):
        match = _BACKTICKED.match(row[0])
        if match is not None:
            codes.add(match[1])
    return codes


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


# -- coverage of the protocol ----------------------------------------------------------


def test_the_doc_exists_and_states_the_protocol_version() -> None:
    assert f"version {wire.PROTOCOL_VERSION}" in DOC
    assert f'"protocol": {wire.PROTOCOL_VERSION}' in DOC


def test_client_types_constant_matches_the_client_message_union() -> None:
    assert CLIENT_TYPES == wire.CLIENT_TYPES


def test_every_client_message_has_a_heading_in_the_client_section() -> None:
    assert _message_headings(CLIENT_SECTION) == CLIENT_TYPES


def test_every_server_message_has_a_heading_in_the_server_section() -> None:
    assert _message_headings(SERVER_SECTION) == SERVER_TYPES


@pytest.mark.parametrize("tag", sorted(CLIENT_TYPES | SERVER_TYPES))
def test_every_message_has_a_json_example_under_its_heading(tag: str) -> None:
    examples = [b for b in JSON_BLOCKS if b.heading == f"`{tag}`"]
    assert examples, f"no JSON example under the `{tag}` heading"
    for block in examples:
        assert _load(block).get("type") == tag, (
            f"line {block.line}: an example under `{tag}` must be a `{tag}` message"
        )


def test_every_error_code_is_in_the_error_table() -> None:
    assert _first_column_codes(ERROR_SECTION) == {code.value for code in wire.ErrorCode}


def test_every_error_code_row_has_a_meaning_and_an_example_trigger() -> None:
    rows = [r for r in _table_rows(_section_text(ERROR_SECTION)) if _BACKTICKED.match(r[0])]
    for row in rows:
        assert len(row) == 3 and all(row), f"incomplete error table row: {row}"


def test_token_error_codes_are_wire_error_codes() -> None:
    # The session maps a TokenError's code onto ErrorCode by value.
    from signaling.auth import TokenErrorCode

    assert {c.value for c in TokenErrorCode} <= {c.value for c in wire.ErrorCode}


def test_every_bye_reason_is_documented() -> None:
    reasons = typing.get_args(msgspec.structs.fields(wire.Bye)[0].type)
    assert reasons
    for reason in reasons:
        assert f"`{reason}`" in _section_text(SERVER_SECTION), reason


def test_every_close_code_the_server_uses_is_in_the_close_code_table() -> None:
    used = {
        session.CLOSE_NORMAL,
        session.CLOSE_GOING_AWAY,
        session.CLOSE_POLICY,
        session.CLOSE_TRY_AGAIN_LATER,
        1009,  # aiohttp's MESSAGE_TOO_BIG for frames over the hard limit
    }
    documented = {int(row[0]) for row in _table_rows(_section_text(CLOSE_SECTION))[1:]}
    assert documented == used


def test_limits_in_the_doc_match_the_code() -> None:
    assert f"**{session.OUTBOX_LIMIT}**" in DOC
    assert f"**{ws.HARD_FRAME_FACTOR}** times" in DOC
    assert f"every **{ws.HEARTBEAT_SECONDS:g}** seconds" in DOC
    from signaling.settings import ServerSettings

    assert f"({ServerSettings().max_message_bytes} by default)" in DOC


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
    else:
        expected = "client" if value.get("type") in CLIENT_TYPES else "server"
    if expected == "client":
        assert value.get("type") in CLIENT_TYPES, f"{where}: not a client message"
        message = _check_client(block.body, where)
        assert message.id == value.get("id")
    else:
        assert value.get("type") in SERVER_TYPES, f"{where}: not a server message"
        _check_server(block.body, where)


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
