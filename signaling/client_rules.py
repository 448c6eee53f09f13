"""The permission rules as data for the web client (served as /static/rules.json), so
the page offers what the server will accept without a hand copy of the rules.

Generated from the command table and the server's own predicates, evaluated over every
combination of what they read: the sender's role, speaker label and viewer-only flag,
and the room's mode and stage access (a few dozen combinations). The page looks its
answers up (signaling/static/rules.js); the server still decides every command.
"""

from __future__ import annotations

import itertools
from typing import Any

from . import permissions as may
from .command_table import DEFINITIONS
from .roles import Role
from .stage.model import ParticipantId, Person, RoomMode, RoomPolicy, StageAccess

PERSON_KEYS = ("role", "speaker", "viewer_only")
POLICY_KEYS = ("mode", "stage_access")


def _person(
    role: Role, *, speaker: bool = False, viewer_only: bool = False, name: str = "you"
) -> Person:
    return Person(
        participant_id=ParticipantId(name),
        identity=name,
        name=name,
        role=role,
        joined_at=0.0,
        speaker=speaker,
        viewer_only=viewer_only,
    )


def _key(values: tuple[object, ...]) -> str:
    """As the page writes it: JavaScript's String() of each value, joined by '/'."""
    return "/".join(str(v).lower() if isinstance(v, bool) else str(v) for v in values)


def _situations() -> list[tuple[str, Person, RoomPolicy]]:
    """Every combination of what the sender rules read, with its lookup key."""
    return [
        (
            _key((role, speaker, viewer_only, mode, access)),
            _person(role, speaker=speaker, viewer_only=viewer_only),
            RoomPolicy(mode=mode, stage_access=access),
        )
        for role, speaker, viewer_only, mode, access in itertools.product(
            Role, (False, True), (False, True), RoomMode, StageAccess
        )
    ]


def client_rules() -> dict[str, Any]:
    """The JSON document: `senders` lists, per sender rule, the keys it allows;
    `commands` names each command's rules (see command_table.Definition); `rights` and
    `grants` list, per role, whose rights it may change (another person's) and which
    roles it may give; `moderators` are the roles that run the stage."""
    situations = _situations()
    return {
        "keys": {"person": list(PERSON_KEYS), "policy": list(POLICY_KEYS)},
        "senders": {
            sender.value: [
                key for key, person, policy in situations if may.may_send(sender, person, policy)
            ]
            for sender in may.Sender
        },
        "commands": {
            d.type: {
                "sender": d.sender.value,
                "about_others": d.about_others.value if d.about_others else None,
                "rights": d.rights,
            }
            for d in DEFINITIONS
        },
        "moderators": [role.value for role in Role if may.is_moderator(_person(role))],
        "rights": {
            actor.value: [
                target.value
                for target in Role
                if may.may_change_rights_of(_person(actor), _person(target, name="them"))
            ]
            for actor in Role
        },
        "grants": {
            actor.value: [role.value for role in Role if may.may_grant_role(_person(actor), role)]
            for actor in Role
        },
    }
