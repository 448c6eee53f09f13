"""What the fuzzer has learnt from the server so far: participants, revisions, polls.

Mutations draw targets from it so that commands reach the room logic (a real target
with a current revision) instead of stopping at the first lookup.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any

_KEEP = 64  # bounded: a long run must not grow the fuzzer's memory


class Knowledge:
    def __init__(self) -> None:
        self._revisions: OrderedDict[str, int] = OrderedDict()
        self._polls: OrderedDict[str, int] = OrderedDict()  # poll id -> option count
        self._resume_tokens: OrderedDict[str, str] = OrderedDict()  # token -> room

    def learn(self, message: dict[str, Any]) -> None:
        """Take participant records, polls and resume tokens out of a server message."""
        kind = message.get("type")
        if kind == "joined":
            self._participants(message.get("participants"))
            self._participant(message.get("you"))
            token, room = message.get("resume_token"), message.get("room")
            if isinstance(token, str) and isinstance(room, str):
                _remember(self._resume_tokens, token, room)
            for poll in message.get("polls") or ():
                self._poll(poll)
        elif kind in ("participant_joined", "participant_updated"):
            self._participant(message.get("participant"))
        elif kind == "snapshot":
            self._participants(message.get("participants"))
        elif kind == "poll":
            self._poll(message.get("poll"))

    def _participants(self, records: object) -> None:
        if isinstance(records, list):
            for record in records:
                self._participant(record)

    def _participant(self, record: object) -> None:
        if isinstance(record, dict) and isinstance(record.get("participant_id"), str):
            revision = record.get("revision")
            _remember(
                self._revisions,
                record["participant_id"],
                revision if isinstance(revision, int) else 0,
            )

    def _poll(self, poll: object) -> None:
        if isinstance(poll, dict) and isinstance(poll.get("poll_id"), str):
            options = poll.get("options")
            _remember(
                self._polls, poll["poll_id"], len(options) if isinstance(options, list) else 2
            )

    def target(self, rng: random.Random) -> tuple[str, int]:
        """A participant id and its last revision seen (or an invented one)."""
        if self._revisions and rng.random() < 0.85:
            pid = rng.choice(list(self._revisions))
            return pid, self._revisions[pid]
        return f"{rng.getrandbits(48):012x}", rng.randrange(4)

    def poll(self, rng: random.Random) -> tuple[str, int]:
        if self._polls and rng.random() < 0.85:
            poll_id = rng.choice(list(self._polls))
            return poll_id, self._polls[poll_id]
        return f"{rng.getrandbits(32):08x}", 2

    def resume_token(self, rng: random.Random) -> tuple[str, str] | None:
        if not self._resume_tokens:
            return None
        token = rng.choice(list(self._resume_tokens))
        return token, self._resume_tokens[token]


def _remember(table: OrderedDict[str, Any], key: str, value: Any) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > _KEEP:
        table.popitem(last=False)
