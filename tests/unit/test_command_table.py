"""The stage command table: every wire stage request becomes its stage machine command."""

from __future__ import annotations

from typing import get_args

import pytest

from signaling import protocol as wire
from signaling.command_table import BY_WIRE, DEFINITIONS, Definition, stage_command
from signaling.permissions import Sender
from signaling.roles import Role
from signaling.stage import commands as sc
from signaling.stage.model import Device, FullStagePolicy, ParticipantId, Permission, StageAccess

BOB = "4e8d1b6a2c90"


@pytest.mark.parametrize(
    ("message", "command"),
    [
        (wire.JoinStage(id="1", mic=False), sc.JoinStage(mic_on=False, camera_on=True)),
        (wire.AcceptInvitation(revision=3, camera=False),
         sc.AcceptInvitation(revision=3, mic_on=True, camera_on=False)),
        (wire.LowerHand(), sc.LowerHand()),
        (wire.LowerHand(target=BOB), sc.LowerHand(target=ParticipantId(BOB))),
        (wire.Vote(poll_id="p", option=2), sc.Vote(poll_id="p", option=2)),
        (wire.Invite(target=BOB, revision=4), sc.Invite(target=ParticipantId(BOB), revision=4)),
        (wire.Mute(target=BOB, device=Device.CAMERA, lock=True),
         sc.Mute(target=ParticipantId(BOB), device=Device.CAMERA, lock=True)),
        (wire.SetStageAccess(access=StageAccess.REQUEST),
         sc.SetStageAccess(access=StageAccess.REQUEST)),
        (wire.SetCapacity(capacity=5, full_policy=FullStagePolicy.QUEUE),
         sc.SetCapacity(capacity=5, full_policy=FullStagePolicy.QUEUE)),
        (wire.SetRole(target=BOB, role=Role.MODERATOR),
         sc.SetRole(target=ParticipantId(BOB), role=Role.MODERATOR)),
        (wire.SetPermission(target=BOB, permission=Permission.PRESENT, granted=False),
         sc.SetPermission(target=ParticipantId(BOB), permission=Permission.PRESENT,
                          granted=False)),
        (wire.EndRoom(id="9"), sc.EndRoom()),
    ],
    ids=lambda value: type(value).__name__,
)  # fmt: skip
def test_a_stage_request_becomes_its_command_with_every_field(
    message: wire.StageRequest, command: sc.Command
) -> None:
    assert stage_command(message) == command


def test_a_new_poll_gets_a_fresh_id_and_keeps_its_options_in_order() -> None:
    message = wire.CreatePoll(question="Lunch?", options=["soup", "salad"])
    first, second = stage_command(message), stage_command(message)
    assert isinstance(first, sc.CreatePoll) and isinstance(second, sc.CreatePoll)
    assert (first.question, first.options) == ("Lunch?", ("soup", "salad"))
    assert first.poll_id != second.poll_id


def test_every_stage_request_has_exactly_one_definition() -> None:
    assert [d.wire for d in DEFINITIONS] == list(get_args(wire.StageRequest))
    assert set(BY_WIRE) == set(get_args(wire.StageRequest))


def test_every_definition_names_a_distinct_command() -> None:
    assert len({d.command for d in DEFINITIONS}) == len(DEFINITIONS)


def test_a_definition_whose_wire_fields_differ_from_its_command_is_refused() -> None:
    with pytest.raises(TypeError, match="JoinStage carries"):
        Definition(wire=wire.JoinStage, command=sc.JoinStage, sender=Sender.EVERYONE)
