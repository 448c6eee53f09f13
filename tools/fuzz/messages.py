"""A valid-looking instance of every client message type, the seed of WebSocket mutations.

The types come from the protocol itself (`signaling.protocol.codec.CLIENT_TYPES`), so a
new message type is fuzzed from the day it is added (as a bare `{"type": ...}` until it
gets a template here).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from signaling.protocol.client import Entry, Source
from signaling.protocol.codec import CLIENT_TYPES
from signaling.roles import Role
from signaling.stage.model import Device, FullStagePolicy, Permission, RoomMode, StageAccess

from . import accounts, sdp_sample
from .knowledge import Knowledge

Message = dict[str, Any]
MESSAGE_TYPES: tuple[str, ...] = tuple(sorted(CLIENT_TYPES))


class MessageFactory:
    """Builds `{"type": ..., ...}` dicts with plausible values for one room."""

    def __init__(
        self, rng: random.Random, knowledge: Knowledge, rooms: Callable[[], tuple[str, ...]]
    ) -> None:
        self.rng = rng
        self.knowledge = knowledge
        self.rooms = rooms  # the rooms in use now
        self._identities = 0
        self._builders: dict[str, Callable[[], Message]] = {
            "join": self.join,
            "resume": self._resume,
            "publish": self._publish,
            "subscribe_answer": lambda: {"sdp": sdp_sample.offer()},
            "join_stage": self._devices,
            "accept_invitation": lambda: {**self._devices(), "revision": self._own_revision()},
            "decline_invitation": lambda: {"revision": self._own_revision()},
            "set_device": lambda: {"device": self._pick(Device), "on": self._flag()},
            "lower_hand": lambda: {"target": self._target()} if self._flag() else {},
            "chat": lambda: {"text": self.rng.choice(["hi", "é" * 40, "🙂" * 10, "x" * 2000])},
            "vote": self._vote,
            "approve_request": self._targeted,
            "decline_request": self._targeted,
            "invite": self._targeted,
            "revoke_invitation": self._targeted,
            "remove_from_stage": self._targeted,
            "mute": lambda: {
                "target": self._target(),
                "device": self._pick(Device),
                "lock": self._flag(),
            },
            "unlock": lambda: {"target": self._target(), "device": self._pick(Device)},
            "mute_all": lambda: {"device": self._pick(Device), "lock": self._flag()},
            "set_stage_access": lambda: {"access": self._pick(StageAccess)},
            "set_room_mode": lambda: {"mode": self._pick(RoomMode)},
            "set_capacity": lambda: {
                "capacity": self.rng.choice([1, 2, 25, 100]),
                "full_policy": self._pick(FullStagePolicy),
            },
            "set_role": lambda: {"target": self._target(), "role": self._pick(Role)},
            "set_speaker": lambda: {"target": self._target(), "speaker": self._flag()},
            "set_permission": lambda: {
                "target": self._target(),
                "permission": self._pick(Permission),
                "granted": self._flag(),
            },
            "kick": lambda: {"target": self._target()},
            "create_poll": lambda: {
                "question": "Which?",
                "options": ["a", "b", "c"][: self.rng.randint(2, 3)],
            },
            "close_poll": lambda: {"poll_id": self.knowledge.poll(self.rng)[0]},
        }

    def message(self, kind: str | None = None) -> Message:
        """A message of `kind` (any client type when None), without an id."""
        kind = kind or self.rng.choice(MESSAGE_TYPES)
        builder = self._builders.get(kind)
        return {"type": kind, **(builder() if builder is not None else {})}

    def identity(self) -> str:
        """A fresh identity: a kicked one is banned from its room for the room's life."""
        self._identities += 1
        return f"fuzz{self.rng.getrandbits(32):08x}{self._identities}"

    def join(self, role: Role | None = None, room: str | None = None) -> Message:
        room = room or self.rng.choice(self.rooms())
        message: Message = {
            "token": accounts.token(room, self.identity(), role or Role(self._pick(Role))),
            "entry": self._pick(Entry),
            "viewer_only": self.rng.random() < 0.1,
            **self._devices(),
        }
        if self._flag():
            message["room"] = room
        return {"type": "join", **message}

    # -- field values --------------------------------------------------------------
    def _pick(self, enum: Any) -> str:
        return str(self.rng.choice(list(enum)).value)

    def _flag(self) -> bool:
        return self.rng.random() < 0.5

    def _devices(self) -> Message:
        return {"mic": self._flag(), "camera": self._flag()}

    def _target(self) -> str:
        return self.knowledge.target(self.rng)[0]

    def _targeted(self) -> Message:
        target, revision = self.knowledge.target(self.rng)
        return {"target": target, "revision": revision}

    def _own_revision(self) -> int:
        return self.knowledge.target(self.rng)[1]

    def _vote(self) -> Message:
        poll_id, options = self.knowledge.poll(self.rng)
        return {"poll_id": poll_id, "option": self.rng.randrange(options + 1)}

    def _resume(self) -> Message:
        known = self.knowledge.resume_token(self.rng)
        if known is not None and self.rng.random() < 0.3:
            return {"room": known[1], "resume_token": known[0]}
        return {
            "room": self.rng.choice(self.rooms()),
            "resume_token": f"{self.rng.getrandbits(128):x}",
        }

    def _publish(self) -> Message:
        message: Message = {"sdp": sdp_sample.offer()}
        if self._flag():
            message["sources"] = {"0": self._pick(Source), "1": self._pick(Source)}
        return message
