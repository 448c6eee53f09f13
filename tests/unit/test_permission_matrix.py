"""Who may do what: every command, for every kind of actor, stage access and room mode.

The expectations below are written from the product rules, not derived from
`signaling.permissions`. Each case is set up so that only permission could
refuse it (the target is in the right state, revisions are current, the stage
has room): "deny" means a `forbidden` refusal, "allow" means the command is
applied. Requesting the stage has a third answer: those who may simply join get
a `conflict`, which is not a permission decision.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, get_args

import pytest

from signaling.roles import Role
from signaling.stage import commands as c
from signaling.stage.machine import Refusal, StageError
from signaling.stage.model import (
    Device,
    FullStagePolicy,
    Permission,
    Person,
    RoomMode,
    RoomState,
    StageAccess,
)
from tests.stage_builders import (
    INVITED,
    LOCKED,
    NOW,
    ON,
    ON_STAGE,
    QUEUED,
    REQUESTED,
    apply,
    person,
    pid,
    poll,
    refusal,
    room,
)


class Outcome(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    CONFLICT = "conflict"  # the command makes no sense for this actor; not a permission matter


ALLOW, DENY, CONFLICT = Outcome.ALLOW, Outcome.DENY, Outcome.CONFLICT


@dataclass(frozen=True)
class Actor:
    key: str
    role: Role
    speaker: bool = False

    @property
    def manages(self) -> bool:
        return self.role in (Role.HOST, Role.MODERATOR)


ACTORS = [
    Actor("host", Role.HOST),
    Actor("moderator", Role.MODERATOR),
    Actor("participant", Role.PARTICIPANT),
    Actor("speaker", Role.PARTICIPANT, speaker=True),
]


# -- the rules ------------------------------------------------------------------------------------
Rule = Callable[[Actor, StageAccess, RoomMode], Outcome]


def everyone(actor: Actor, access: StageAccess, mode: RoomMode) -> Outcome:
    return ALLOW


def hosts_and_moderators(actor: Actor, access: StageAccess, mode: RoomMode) -> Outcome:
    return ALLOW if actor.manages else DENY


def hosts_only(actor: Actor, access: StageAccess, mode: RoomMode) -> Outcome:
    return ALLOW if actor.role is Role.HOST else DENY


def joins_directly(actor: Actor, access: StageAccess, mode: RoomMode) -> Outcome:
    """Hosts, moderators and speakers always; participants in an open interactive room."""
    if actor.manages or actor.speaker:
        return ALLOW
    open_room = mode is RoomMode.INTERACTIVE and access is StageAccess.EVERYONE
    return ALLOW if open_room else DENY


def requests(actor: Actor, access: StageAccess, mode: RoomMode) -> Outcome:
    """Plain participants of an interactive room by request; who may just join: conflict."""
    if joins_directly(actor, access, mode) is ALLOW:
        return CONFLICT
    by_request = mode is RoomMode.INTERACTIVE and access is StageAccess.REQUEST
    return ALLOW if by_request else DENY


# -- the cases ---------------------------------------------------------------------------------
ME = "actor"
T = pid("target")  # a plain participant
TH = pid("target-host")
TM = pid("target-moderator")


def me(actor: Actor, **kw: Any) -> Person:
    return person(ME, actor.role, speaker=actor.speaker, **kw)


Setup = Callable[[Actor], tuple[list[Person], c.Command]]


@dataclass(frozen=True)
class Case:
    rule: Rule
    setup: Setup
    polls: bool = False


def other_access(access: StageAccess) -> StageAccess:
    order = list(StageAccess)
    return order[(order.index(access) + 1) % len(order)]


# Commands a person gives about themselves.
SELF: dict[str, Case] = {
    "join_stage": Case(joins_directly, lambda a: ([me(a)], c.JoinStage())),
    "leave_stage": Case(everyone, lambda a: ([me(a, status=ON_STAGE)], c.LeaveStage())),
    "leave_seat_queue": Case(everyone, lambda a: ([me(a, status=QUEUED)], c.LeaveStage())),
    "request_stage": Case(requests, lambda a: ([me(a)], c.RequestStage())),
    "cancel_request": Case(
        everyone, lambda a: ([me(a, status=REQUESTED, revision=1)], c.CancelRequest())
    ),
    "accept_invitation": Case(
        everyone,
        lambda a: ([me(a, status=INVITED, revision=1)], c.AcceptInvitation(revision=1)),
    ),
    "decline_invitation": Case(
        everyone,
        lambda a: ([me(a, status=INVITED, revision=1)], c.DeclineInvitation(revision=1)),
    ),
    "turn_own_mic_on": Case(
        everyone, lambda a: ([me(a, status=ON_STAGE)], c.SetDevice(device=Device.MIC, on=True))
    ),
    "turn_own_camera_off": Case(
        everyone,
        lambda a: (
            [me(a, status=ON_STAGE, camera=ON)],
            c.SetDevice(device=Device.CAMERA, on=False),
        ),
    ),
    "raise_hand": Case(everyone, lambda a: ([me(a)], c.RaiseHand())),
    "lower_own_hand": Case(everyone, lambda a: ([me(a, hand=1)], c.LowerHand())),
    "lower_own_hand_by_id": Case(
        everyone, lambda a: ([me(a, hand=1)], c.LowerHand(target=pid(ME)))
    ),
    "vote": Case(everyone, lambda a: ([me(a)], c.Vote(poll_id="lunch", option=0)), polls=True),
}

# Commands about someone else (a plain participant), or about the room.
MODERATION: dict[str, Case] = {
    "approve_request": Case(
        hosts_and_moderators,
        lambda a: (
            [me(a), person("target", status=REQUESTED, revision=1)],
            c.ApproveRequest(target=T, revision=1),
        ),
    ),
    "decline_request": Case(
        hosts_and_moderators,
        lambda a: (
            [me(a), person("target", status=REQUESTED, revision=1)],
            c.DeclineRequest(target=T, revision=1),
        ),
    ),
    "invite": Case(
        hosts_and_moderators,
        lambda a: ([me(a), person("target", revision=2)], c.Invite(target=T, revision=2)),
    ),
    "revoke_invitation": Case(
        hosts_and_moderators,
        lambda a: (
            [me(a), person("target", status=INVITED, revision=1, invited_by="someone-else")],
            c.RevokeInvitation(target=T, revision=1),
        ),
    ),
    "remove_from_stage": Case(
        hosts_and_moderators,
        lambda a: (
            [me(a), person("target", status=ON_STAGE, revision=1)],
            c.RemoveFromStage(target=T, revision=1),
        ),
    ),
    "mute": Case(
        hosts_and_moderators,
        lambda a: (
            [me(a), person("target", status=ON_STAGE, mic=ON)],
            c.Mute(target=T, device=Device.MIC),
        ),
    ),
    "lock": Case(
        hosts_and_moderators,
        lambda a: (
            [me(a), person("target", status=ON_STAGE, camera=ON)],
            c.Mute(target=T, device=Device.CAMERA, lock=True),
        ),
    ),
    "unlock": Case(
        hosts_and_moderators,
        lambda a: (
            [me(a), person("target", status=ON_STAGE, mic=LOCKED)],
            c.Unlock(target=T, device=Device.MIC),
        ),
    ),
    "mute_all": Case(
        hosts_and_moderators,
        lambda a: (
            [me(a, status=ON_STAGE), person("target", status=ON_STAGE, mic=ON)],
            c.MuteAll(device=Device.MIC),
        ),
    ),
    "cameras_off_locked": Case(
        hosts_and_moderators,
        lambda a: (
            [me(a), person("target", status=ON_STAGE, camera=ON)],
            c.MuteAll(device=Device.CAMERA, lock=True),
        ),
    ),
    "lower_someones_hand": Case(
        hosts_and_moderators,
        lambda a: ([me(a), person("target", hand=1)], c.LowerHand(target=T)),
    ),
    "lower_all_hands": Case(
        hosts_and_moderators,
        lambda a: ([me(a, hand=2), person("target", hand=1)], c.LowerAllHands()),
    ),
    "set_room_mode": Case(
        hosts_and_moderators,
        lambda a: ([me(a), person("target")], c.SetRoomMode(mode=RoomMode.PANEL)),
    ),
    "set_capacity": Case(
        hosts_and_moderators,
        lambda a: (
            [me(a), person("target", status=ON_STAGE)],
            c.SetCapacity(capacity=3, full_policy=FullStagePolicy.QUEUE),
        ),
    ),
    "create_poll": Case(
        hosts_and_moderators,
        lambda a: ([me(a)], c.CreatePoll(poll_id="q", question="Ready?", options=("y", "n"))),
    ),
    "close_poll": Case(
        hosts_and_moderators, lambda a: ([me(a)], c.ClosePoll(poll_id="lunch")), polls=True
    ),
    "make_moderator": Case(
        hosts_and_moderators,
        lambda a: ([me(a), person("target")], c.SetRole(target=T, role=Role.MODERATOR)),
    ),
    "make_host": Case(
        hosts_only, lambda a: ([me(a), person("target")], c.SetRole(target=T, role=Role.HOST))
    ),
    "set_speaker": Case(
        hosts_and_moderators,
        lambda a: ([me(a), person("target")], c.SetSpeaker(target=T, speaker=True)),
    ),
    "set_permission": Case(
        hosts_and_moderators,
        lambda a: (
            [me(a), person("target")],
            c.SetPermission(target=T, permission=Permission.PRESENT, granted=True),
        ),
    ),
    "kick": Case(hosts_and_moderators, lambda a: ([me(a), person("target")], c.Kick(target=T))),
    "end_room": Case(
        hosts_only, lambda a: ([me(a), person("target", status=ON_STAGE)], c.EndRoom())
    ),
}

# The same commands when the target is a host or a moderator: rank rules apply to rights
# (role, label, permissions, kick), not to stage and microphone management.
HOST = Role.HOST
MOD = Role.MODERATOR
RANKED: dict[str, Case] = {
    "invite_a_host": Case(
        hosts_and_moderators,
        lambda a: ([me(a), person("target-host", HOST)], c.Invite(target=TH, revision=0)),
    ),
    "remove_a_host_from_stage": Case(
        hosts_and_moderators,
        lambda a: (
            [me(a), person("target-host", HOST, status=ON_STAGE)],
            c.RemoveFromStage(target=TH, revision=0),
        ),
    ),
    "mute_a_host": Case(
        hosts_and_moderators,
        lambda a: (
            [me(a), person("target-host", HOST, status=ON_STAGE, mic=ON)],
            c.Mute(target=TH, device=Device.MIC),
        ),
    ),
    "lower_a_hosts_hand": Case(
        hosts_and_moderators,
        lambda a: ([me(a), person("target-host", HOST, hand=1)], c.LowerHand(target=TH)),
    ),
    "demote_a_host": Case(
        hosts_only,
        lambda a: (
            [me(a), person("target-host", HOST)],
            c.SetRole(target=TH, role=Role.PARTICIPANT),
        ),
    ),
    "label_a_host": Case(
        hosts_only,
        lambda a: ([me(a), person("target-host", HOST)], c.SetSpeaker(target=TH, speaker=True)),
    ),
    "permission_for_a_host": Case(
        hosts_only,
        lambda a: (
            [me(a), person("target-host", HOST)],
            c.SetPermission(target=TH, permission=Permission.PRESENT, granted=True),
        ),
    ),
    "kick_a_host": Case(
        hosts_only, lambda a: ([me(a), person("target-host", HOST)], c.Kick(target=TH))
    ),
    "demote_a_moderator": Case(
        hosts_and_moderators,
        lambda a: (
            [me(a), person("target-moderator", MOD)],
            c.SetRole(target=TM, role=Role.PARTICIPANT),
        ),
    ),
    "promote_a_moderator_to_host": Case(
        hosts_only,
        lambda a: ([me(a), person("target-moderator", MOD)], c.SetRole(target=TM, role=HOST)),
    ),
    "label_a_moderator": Case(
        hosts_and_moderators,
        lambda a: (
            [me(a), person("target-moderator", MOD)],
            c.SetSpeaker(target=TM, speaker=True),
        ),
    ),
    "kick_a_moderator": Case(
        hosts_and_moderators,
        lambda a: ([me(a), person("target-moderator", MOD)], c.Kick(target=TM)),
    ),
}

CASES = {**SELF, **MODERATION, **RANKED}


def set_stage_access_case(access: StageAccess) -> Case:
    """Changing stage access: to a different value than the current one."""
    return Case(
        hosts_and_moderators,
        lambda a: ([me(a), person("target")], c.SetStageAccess(access=other_access(access))),
    )


def build(
    case: Case, actor: Actor, access: StageAccess, mode: RoomMode
) -> tuple[RoomState, c.Command]:
    people, command = case.setup(actor)
    state = room(
        *people,
        access=access,
        mode=mode,
        capacity=10,
        polls=[poll("lunch")] if case.polls else [],
    )
    return state, command


def judge(state: RoomState, command: c.Command) -> Outcome:
    try:
        apply(state, ME, command)
    except StageError as error:
        if error.code is Refusal.FORBIDDEN:
            return DENY
        assert error.code is Refusal.CONFLICT, f"refused for another reason: {error.message}"
        return CONFLICT
    return ALLOW


ACCESSES = list(StageAccess)
MODES = list(RoomMode)
COMBINATIONS = [
    pytest.param(name, actor, access, mode, id=f"{name}-{actor.key}-{access}-{mode}")
    for name, actor, access, mode in itertools.product(
        [*CASES, "set_stage_access"], ACTORS, ACCESSES, MODES
    )
]


@pytest.mark.parametrize(("name", "actor", "access", "mode"), COMBINATIONS)
def test_permission(name: str, actor: Actor, access: StageAccess, mode: RoomMode) -> None:
    case = CASES[name] if name in CASES else set_stage_access_case(access)
    state, command = build(case, actor, access, mode)
    expected = case.rule(actor, access, mode)
    assert judge(state, command) is expected
    if expected is not ALLOW:
        refusal(state, ME, command)  # and the refusal changed nothing


# Entering straight onto the stage follows the joining rule. (The speaker label is given in
# the room, never at entry, so a newcomer is a host, a moderator or a plain participant.)
ENTRANTS = [a for a in ACTORS if not a.speaker]


@pytest.mark.parametrize(
    ("actor", "access", "mode"),
    [
        pytest.param(a, access, mode, id=f"enter_on_stage-{a.key}-{access}-{mode}")
        for a, access, mode in itertools.product(ENTRANTS, ACCESSES, MODES)
    ],
)
def test_entering_on_stage(actor: Actor, access: StageAccess, mode: RoomMode) -> None:
    state = room(access=access, mode=mode)
    command = c.Enter(participant_id=pid(ME), identity=ME, name=ME, role=actor.role,
                      on_stage=True)  # fmt: skip
    if joins_directly(actor, access, mode) is ALLOW:
        after, _ = apply(state, None, command, NOW)
        assert after.people[pid(ME)].on_stage
    else:
        assert refusal(state, None, command, NOW) is Refusal.FORBIDDEN


def test_every_command_type_is_covered() -> None:
    covered = {type(build(case, ACTORS[0], StageAccess.EVERYONE, RoomMode.INTERACTIVE)[1])
               for case in CASES.values()}  # fmt: skip
    covered |= {c.SetStageAccess, c.Enter}
    system = {c.Exit, c.Expire, c.Spoke}  # no actor: nothing to permit
    every = {*get_args(c.SelfCommand), *get_args(c.ModeratorCommand), *get_args(c.SystemCommand),
             c.HostCommand}  # fmt: skip
    assert every - system <= covered
