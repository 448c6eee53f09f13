"""Every stage command a client can send, defined once: its wire message, the stage
machine command it becomes, and who may send it.

Decoding uses the wire structs (signaling/protocol/client.py); `stage_command` turns a
decoded request into the machine's command by this table; the web client's rules are
generated from it (signaling/client_rules.py). The stage machine stays free of wire
types: this table, in the control plane, is what references both.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, get_args

from . import protocol as wire
from .permissions import Sender
from .protocol import StageRequest
from .stage import commands as sc

_DEVICE_CHOICES = MappingProxyType({"mic": "mic_on", "camera": "camera_on"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Definition:
    """One stage command. By default the wire fields (less `id`) are the command's
    fields, renamed by `renames`; `build` replaces that for a command that needs more
    than the wire carries (a fresh poll id).

    `sender` is who may send it; `about_others` who may send it about someone else, when
    the target is optional (one's own hand, or anyone's); `rights` marks commands that
    change the target's rights, which only go to a target one outranks or equals, never
    to oneself (permissions.may_change_rights_of)."""

    wire: type[StageRequest]
    command: type[sc.Command]
    sender: Sender
    about_others: Sender | None = None
    rights: bool = False
    renames: Mapping[str, str] = field(default_factory=dict)
    build: Callable[..., sc.Command] | None = None

    def __post_init__(self) -> None:
        if self.build is None:  # a renamed or missing field fails here, not at first use
            given = {self.renames.get(name, name) for name in _fields(self.wire)}
            wanted = {f.name for f in dataclasses.fields(self.command)}
            if given != wanted:
                raise TypeError(f"{self.wire.__name__} carries {sorted(given)}, "
                                f"{self.command.__name__} takes {sorted(wanted)}")  # fmt: skip

    @property
    def type(self) -> str:
        """The wire `type`."""
        return str(self.wire.__struct_config__.tag)

    def translate(self, message: StageRequest) -> sc.Command:
        values: dict[str, Any] = {
            self.renames.get(name, name): getattr(message, name) for name in _fields(self.wire)
        }
        return (self.build or self.command)(**values)


def _fields(struct: type[StageRequest]) -> tuple[str, ...]:
    return tuple(name for name in struct.__struct_fields__ if name != "id")


def _new_poll(*, question: str, options: list[str]) -> sc.CreatePoll:
    return sc.CreatePoll(poll_id=uuid.uuid4().hex[:12], question=question,
                         options=tuple(options))  # fmt: skip


EVERYONE, STAGE_TAKERS, REQUESTERS = Sender.EVERYONE, Sender.STAGE_TAKERS, Sender.REQUESTERS
MODERATORS, HOSTS = Sender.MODERATORS, Sender.HOSTS

DEFINITIONS: tuple[Definition, ...] = (
    # -- self-service
    Definition(wire=wire.JoinStage, command=sc.JoinStage, sender=STAGE_TAKERS,
               renames=_DEVICE_CHOICES),
    Definition(wire=wire.LeaveStage, command=sc.LeaveStage, sender=EVERYONE),
    Definition(wire=wire.RequestStage, command=sc.RequestStage, sender=REQUESTERS),
    Definition(wire=wire.CancelRequest, command=sc.CancelRequest, sender=EVERYONE),
    Definition(wire=wire.AcceptInvitation, command=sc.AcceptInvitation, sender=EVERYONE,
               renames=_DEVICE_CHOICES),
    Definition(wire=wire.DeclineInvitation, command=sc.DeclineInvitation, sender=EVERYONE),
    Definition(wire=wire.SetDevice, command=sc.SetDevice, sender=EVERYONE),
    Definition(wire=wire.RaiseHand, command=sc.RaiseHand, sender=EVERYONE),
    Definition(wire=wire.LowerHand, command=sc.LowerHand, sender=EVERYONE,
               about_others=MODERATORS),
    Definition(wire=wire.Vote, command=sc.Vote, sender=EVERYONE),
    # -- moderation
    Definition(wire=wire.ApproveRequest, command=sc.ApproveRequest, sender=MODERATORS),
    Definition(wire=wire.DeclineRequest, command=sc.DeclineRequest, sender=MODERATORS),
    Definition(wire=wire.Invite, command=sc.Invite, sender=MODERATORS),
    Definition(wire=wire.RevokeInvitation, command=sc.RevokeInvitation, sender=MODERATORS),
    Definition(wire=wire.RemoveFromStage, command=sc.RemoveFromStage, sender=MODERATORS),
    Definition(wire=wire.Mute, command=sc.Mute, sender=MODERATORS),
    Definition(wire=wire.Unlock, command=sc.Unlock, sender=MODERATORS),
    Definition(wire=wire.MuteAll, command=sc.MuteAll, sender=MODERATORS),
    Definition(wire=wire.LowerAllHands, command=sc.LowerAllHands, sender=MODERATORS),
    Definition(wire=wire.SetStageAccess, command=sc.SetStageAccess, sender=MODERATORS),
    Definition(wire=wire.SetRoomMode, command=sc.SetRoomMode, sender=MODERATORS),
    Definition(wire=wire.SetCapacity, command=sc.SetCapacity, sender=MODERATORS),
    Definition(wire=wire.SetRole, command=sc.SetRole, sender=MODERATORS, rights=True),
    Definition(wire=wire.SetSpeaker, command=sc.SetSpeaker, sender=MODERATORS, rights=True),
    Definition(wire=wire.SetPermission, command=sc.SetPermission, sender=MODERATORS,
               rights=True),
    Definition(wire=wire.Kick, command=sc.Kick, sender=MODERATORS, rights=True),
    Definition(wire=wire.CreatePoll, command=sc.CreatePoll, sender=MODERATORS,
               build=_new_poll),
    Definition(wire=wire.ClosePoll, command=sc.ClosePoll, sender=MODERATORS),
    # -- hosts
    Definition(wire=wire.EndRoom, command=sc.EndRoom, sender=HOSTS),
)  # fmt: skip

BY_WIRE: Mapping[type[StageRequest], Definition] = MappingProxyType(
    {definition.wire: definition for definition in DEFINITIONS}
)
if set(BY_WIRE) != set(get_args(StageRequest)) or len(BY_WIRE) != len(DEFINITIONS):
    raise TypeError("every stage request needs exactly one definition")


def stage_command(message: StageRequest) -> sc.Command:
    """The stage machine's command for a decoded stage request."""
    return BY_WIRE[type(message)].translate(message)
