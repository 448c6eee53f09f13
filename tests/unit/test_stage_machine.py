"""The stage machine, command by command: from a situation, who does what, and what follows.

Each row names a starting room, an actor and a command, and expects either a
refusal code or the resulting changes: the listed fields of the listed people
(None: gone from the room), every other person untouched, and the exact events
announced (the per-person change notices aside). A refusal must leave the input
state exactly as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import pytest

from signaling.roles import Role
from signaling.stage import commands as c
from signaling.stage import events as ev
from signaling.stage.machine import Refusal
from signaling.stage.model import (
    Device,
    DeviceState,
    FullStagePolicy,
    Permission,
    Person,
    Poll,
    RoomMode,
    RoomState,
    StageAccess,
)
from tests.stage_builders import (
    HOST,
    INVITED,
    LOCKED,
    MODERATOR,
    MUTED,
    NOW,
    OFF,
    ON,
    ON_STAGE,
    PARTICIPANT,
    QUEUED,
    REQUESTED,
    TTL,
    VIEWER,
    announced,
    apply,
    person,
    pid,
    poll,
    refusal,
    room,
)

MIC = Device.MIC
CAMERA = Device.CAMERA
EVERYONE = StageAccess.EVERYONE
REQUEST = StageAccess.REQUEST
INVITE_ONLY = StageAccess.INVITE_ONLY
INTERACTIVE = RoomMode.INTERACTIVE
PANEL = RoomMode.PANEL
REJECT = FullStagePolicy.REJECT
EVICT = FullStagePolicy.EVICT_SILENT
QUEUE = FullStagePolicy.QUEUE

FORBIDDEN = Refusal.FORBIDDEN
CONFLICT = Refusal.CONFLICT
NOT_FOUND = Refusal.NOT_FOUND
STAGE_FULL = Refusal.STAGE_FULL
BANNED = Refusal.BANNED
INVALID = Refusal.INVALID


@dataclass(frozen=True)
class Expect:
    people: Mapping[str, Mapping[str, object] | None] = field(default_factory=dict)
    events: tuple[ev.StageEvent, ...] | None = ()
    policy: Mapping[str, object] = field(default_factory=dict)
    banned: frozenset[str] | None = None
    polls: Mapping[str, Poll] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    state: RoomState
    actor: str | None
    command: c.Command
    expect: Refusal | Expect
    now: float = NOW


def row(
    name: str,
    state: RoomState,
    actor: str | None,
    command: c.Command,
    expect: Refusal | Expect,
    now: float = NOW,
) -> object:
    return pytest.param(Row(state, actor, command, expect, now), id=name)


def ok(
    events: tuple[ev.StageEvent, ...] | None = (),
    *,
    policy: Mapping[str, object] | None = None,
    banned: frozenset[str] | None = None,
    polls: Mapping[str, Poll] | None = None,
    **people: Mapping[str, object] | None,
) -> Expect:
    return Expect(people, events, policy or {}, banned, polls or {})


def check(r: Row) -> None:
    if isinstance(r.expect, Refusal):
        assert refusal(r.state, r.actor, r.command, r.now) == r.expect
        return
    new, events = apply(r.state, r.actor, r.command, r.now)
    want = r.expect
    for name, fields in want.people.items():
        if fields is None:
            assert pid(name) not in new.people, f"{name} should have left"
            continue
        got = new.people[pid(name)]
        for key, value in fields.items():
            actual = reduce(getattr, key.split("."), got)
            assert actual == value, f"{name}.{key}: {actual!r} != {value!r}"
    for participant_id, before in r.state.people.items():
        if participant_id not in want.people:
            assert new.people.get(participant_id) == before, f"{participant_id} changed"
    assert set(new.people) <= set(r.state.people) | {pid(n) for n in want.people}
    if want.events is not None:
        assert announced(events) == list(want.events)
    changed = {e.participant_id for e in events if isinstance(e, ev.PersonChanged)}
    assert changed <= set(new.people)
    for key, value in want.policy.items():
        assert getattr(new.policy, key) == value, f"policy.{key}"
    if not want.policy:
        assert new.policy == r.state.policy
    assert new.banned == (r.state.banned if want.banned is None else want.banned)
    for poll_id, expected in want.polls.items():
        assert new.polls[poll_id] == expected
    if not want.polls:
        assert dict(new.polls) == dict(r.state.polls)


# -- shorthands for events ------------------------------------------------------------------------
A, B, C, D = pid("A"), pid("B"), pid("C"), pid("D")
M, M2, H = pid("M"), pid("M2"), pid("H")
INVITER = pid("inviter")
QUEUES = ev.QueuesChanged()
POLICY = ev.PolicyChanged()


def left(who: str, reason: ev.StageExitReason, by: str | None = None) -> ev.LeftStage:
    return ev.LeftStage(pid(who), reason, None if by is None else pid(by))


def ended(who: str, reason: ev.EndReason, by: str = "inviter") -> ev.InvitationEnded:
    return ev.InvitationEnded(pid(who), pid(by), reason)


def forced(who: str, device: Device, state: DeviceState, by: str = "M") -> ev.DeviceForced:
    return ev.DeviceForced(pid(who), device, state, pid(by))


def enter(name: str, role: Role = PARTICIPANT, **kw: bool) -> c.Enter:
    return c.Enter(participant_id=pid(name), identity=name.lower(), name=name, role=role, **kw)


SEATED = {"status": ON_STAGE, "on_stage_since": NOW}
OFF_STAGE = {"status": VIEWER, "on_stage_since": None, "mic": OFF, "camera": OFF}
NO_INVITATION = {"invitation": None}

# -- entering the room ----------------------------------------------------------------------------
ENTRY = [
    row("viewer", room(), None, enter("A"),
        ok((ev.PersonEntered(A),), A={"status": VIEWER, "mic": OFF, "camera": OFF,
                                      "revision": 0, "joined_at": NOW})),
    row("on-stage-with-device-choices", room(), None,
        enter("A", on_stage=True, mic_on=True, camera_on=False),
        ok((ev.PersonEntered(A),), A={**SEATED, "mic": ON, "camera": OFF, "revision": 1})),
    row("banned-identity-as-viewer", room(banned={"a"}), None, enter("A"), BANNED),
    row("banned-identity-on-stage", room(banned={"a"}), None, enter("A", on_stage=True), BANNED),
    row("viewer-only-cannot-take-the-stage", room(), None,
        enter("A", on_stage=True, viewer_only=True), FORBIDDEN),
    row("viewer-only-host-cannot-take-the-stage", room(), None,
        enter("H", HOST, on_stage=True, viewer_only=True), FORBIDDEN),
    row("viewer-only-as-viewer", room(), None, enter("A", viewer_only=True),
        ok((ev.PersonEntered(A),), A={"status": VIEWER, "viewer_only": True})),
    row("participant-on-stage-when-access-is-by-request", room(access=REQUEST), None,
        enter("A", on_stage=True), FORBIDDEN),
    row("participant-on-stage-in-panel", room(mode=PANEL), None,
        enter("A", on_stage=True), FORBIDDEN),
    row("host-on-stage-in-invite-only-panel", room(mode=PANEL, access=INVITE_ONLY), None,
        enter("H", HOST, on_stage=True), ok((ev.PersonEntered(H),), H=SEATED)),
    row("moderator-on-stage-by-request", room(access=REQUEST), None,
        enter("M", MODERATOR, on_stage=True), ok((ev.PersonEntered(M),), M=SEATED)),
    row("same-participant-id-twice", room(person("A")), None, enter("A"), CONFLICT),
    row("on-stage-when-full-and-reject", room(person("B", status=ON_STAGE), capacity=1), None,
        enter("A", on_stage=True), STAGE_FULL),
    row("on-stage-when-full-and-queue", room(person("B", status=ON_STAGE), capacity=1,
                                             full=QUEUE), None,
        enter("A", on_stage=True, mic_on=True, camera_on=False),
        ok((QUEUES, ev.PersonEntered(A)),
           A={"status": QUEUED, "queued": 1, "queued_at": NOW, "mic": ON, "camera": OFF,
              "on_stage_since": None})),
    row("host-when-full-evicts-a-participant", room(person("B", status=ON_STAGE), capacity=1),
        None, enter("H", HOST, on_stage=True),
        ok((left("B", ev.StageExitReason.STAGE_FULL), ev.PersonEntered(H)),
           H=SEATED, B=OFF_STAGE)),
]  # fmt: skip


@pytest.mark.parametrize("r", ENTRY)
def test_entering_the_room(r: Row) -> None:
    check(r)


# -- joining and leaving the stage ----------------------------------------------------------------
STAGE = [
    row("join-when-everyone-may", room(person("A")), "A", c.JoinStage(),
        ok(A={**SEATED, "revision": 1, "mic": ON, "camera": ON})),
    row("join-with-mic-off-camera-on", room(person("A")), "A",
        c.JoinStage(mic_on=False, camera_on=True), ok(A={**SEATED, "mic": OFF, "camera": ON})),
    row("join-answers-a-raised-hand", room(person("A", hand=3)), "A", c.JoinStage(),
        ok((QUEUES,), A={**SEATED, "hand": None, "hand_at": None})),
    row("join-while-invited-accepts", room(person("A", status=INVITED, revision=1)), "A",
        c.JoinStage(), ok((ended("A", ev.EndReason.ACCEPTED),),
                          A={**SEATED, "revision": 2, **NO_INVITATION})),
    row("participant-join-by-request", room(person("A"), access=REQUEST), "A", c.JoinStage(),
        FORBIDDEN),
    row("participant-join-invite-only", room(person("A"), access=INVITE_ONLY), "A",
        c.JoinStage(), FORBIDDEN),
    row("participant-join-panel-everyone", room(person("A"), mode=PANEL), "A", c.JoinStage(),
        FORBIDDEN),
    row("invited-participant-join-invite-only", room(person("A", status=INVITED),
                                                     access=INVITE_ONLY), "A",
        c.JoinStage(), FORBIDDEN),
    row("speaker-join-in-invite-only-panel", room(person("S", speaker=True), mode=PANEL,
                                                  access=INVITE_ONLY), "S",
        c.JoinStage(), ok(S=SEATED)),
    row("moderator-join-in-panel", room(person("M", MODERATOR), mode=PANEL), "M",
        c.JoinStage(), ok(M=SEATED)),
    row("host-join-by-request", room(person("H", HOST), access=REQUEST), "H", c.JoinStage(),
        ok(H=SEATED)),
    row("viewer-only-host-join", room(person("H", HOST, viewer_only=True)), "H", c.JoinStage(),
        FORBIDDEN),
    row("join-when-on-stage", room(person("A", status=ON_STAGE)), "A", c.JoinStage(), CONFLICT),
    row("join-when-queued", room(person("A", status=QUEUED)), "A", c.JoinStage(), CONFLICT),
    row("unknown-actor", room(), "A", c.JoinStage(), NOT_FOUND),
    row("leave", room(person("A", status=ON_STAGE, revision=1, mic=ON, camera=ON)), "A",
        c.LeaveStage(), ok((left("A", ev.StageExitReason.LEFT),), A={**OFF_STAGE, "revision": 2})),
    row("leave-keeps-a-raised-hand", room(person("A", status=ON_STAGE, hand=4)), "A",
        c.LeaveStage(), ok((left("A", ev.StageExitReason.LEFT),), A={**OFF_STAGE, "hand": 4})),
    row("leave-as-viewer", room(person("A")), "A", c.LeaveStage(), CONFLICT),
    row("leave-the-seat-queue", room(person("A", status=QUEUED, mic=ON)), "A", c.LeaveStage(),
        ok((QUEUES,), A={**OFF_STAGE, "queued": None, "queued_at": None})),
]  # fmt: skip


@pytest.mark.parametrize("r", STAGE)
def test_joining_and_leaving_the_stage(r: Row) -> None:
    check(r)


# -- requests -------------------------------------------------------------------------------------
asked = person("A", status=REQUESTED, revision=1, seq=1)
REQUESTS = [
    row("request", room(person("A"), person("B", hand=4), access=REQUEST), "A",
        c.RequestStage(),
        ok((QUEUES,), A={"status": REQUESTED, "request": 5, "request_at": NOW, "revision": 1})),
    row("request-again-changes-nothing", room(asked, access=REQUEST), "A", c.RequestStage(),
        ok()),
    row("request-while-invited-changes-nothing", room(person("A", status=INVITED),
                                                      access=REQUEST), "A",
        c.RequestStage(), ok()),
    row("request-when-one-may-join", room(person("A")), "A", c.RequestStage(), CONFLICT),
    row("speaker-request", room(person("S", speaker=True), access=REQUEST), "S",
        c.RequestStage(), CONFLICT),
    row("moderator-request", room(person("M", MODERATOR), access=REQUEST), "M",
        c.RequestStage(), CONFLICT),
    row("request-invite-only", room(person("A"), access=INVITE_ONLY), "A", c.RequestStage(),
        FORBIDDEN),
    row("request-in-panel", room(person("A"), mode=PANEL, access=REQUEST), "A",
        c.RequestStage(), FORBIDDEN),
    row("viewer-only-request", room(person("A", viewer_only=True), access=REQUEST), "A",
        c.RequestStage(), FORBIDDEN),
    row("request-when-on-stage", room(person("A", status=ON_STAGE), access=REQUEST), "A",
        c.RequestStage(), CONFLICT),
    row("cancel", room(asked, access=REQUEST), "A", c.CancelRequest(),
        ok((QUEUES,), A={"status": VIEWER, "request": None, "request_at": None,
                         "revision": 2})),
    row("cancel-without-request", room(person("A"), access=REQUEST), "A", c.CancelRequest(),
        CONFLICT),
    row("approve-sends-an-invitation", room(asked, person("M", MODERATOR), access=REQUEST), "M",
        c.ApproveRequest(target=A, revision=1),
        ok((ev.Invited(A, M, NOW + TTL, 2), QUEUES),
           A={"status": INVITED, "revision": 2, "request": None, "on_stage_since": None,
              "invitation.by": M})),
    row("approve-stale", room(asked, person("M", MODERATOR), access=REQUEST), "M",
        c.ApproveRequest(target=A, revision=0), CONFLICT),
    row("approve-without-request", room(person("A", revision=1), person("M", MODERATOR),
                                        access=REQUEST), "M",
        c.ApproveRequest(target=A, revision=1), CONFLICT),
    row("approve-unknown", room(person("M", MODERATOR), access=REQUEST), "M",
        c.ApproveRequest(target=A, revision=0), NOT_FOUND),
    row("approve-by-participant", room(asked, person("B"), access=REQUEST), "B",
        c.ApproveRequest(target=A, revision=1), FORBIDDEN),
    row("decline-tells-the-requester-only", room(asked, person("B", status=REQUESTED, seq=2),
                                                 person("M", MODERATOR), access=REQUEST), "M",
        c.DeclineRequest(target=A, revision=1),
        ok((ev.RequestDeclined(A), QUEUES),
           A={"status": VIEWER, "request": None, "revision": 2})),
    row("decline-stale", room(asked, person("M", MODERATOR), access=REQUEST), "M",
        c.DeclineRequest(target=A, revision=2), CONFLICT),
    row("decline-unknown", room(person("M", MODERATOR), access=REQUEST), "M",
        c.DeclineRequest(target=A, revision=0), NOT_FOUND),
    row("decline-by-speaker", room(asked, person("S", speaker=True), access=REQUEST), "S",
        c.DeclineRequest(target=A, revision=1), FORBIDDEN),
]  # fmt: skip


@pytest.mark.parametrize("r", REQUESTS)
def test_requests(r: Row) -> None:
    check(r)


# -- invitations ----------------------------------------------------------------------------------
invited = person("A", status=INVITED, revision=1, invited_by="M")
mods = (person("M", MODERATOR), person("M2", MODERATOR))
INVITATIONS = [
    row("invite", room(person("A"), *mods, access=INVITE_ONLY), "M",
        c.Invite(target=A, revision=0),
        ok((ev.Invited(A, M, NOW + TTL, 1),),
           A={"status": INVITED, "revision": 1, "invitation.by": M,
              "invitation.sent_at": NOW, "invitation.expires_at": NOW + TTL,
              "invitation.revision": 1, "invitation.approved_request": False})),
    row("invite-in-panel", room(person("A"), *mods, mode=PANEL), "M2",
        c.Invite(target=A, revision=0), ok((ev.Invited(A, M2, NOW + TTL, 1),),
                                           A={"status": INVITED})),
    row("invite-a-requester-approves", room(asked, *mods, access=REQUEST), "M",
        c.Invite(target=A, revision=1),
        ok((ev.Invited(A, M, NOW + TTL, 2), QUEUES),
           A={"status": INVITED, "request": None, "invitation.approved_request": True})),
    row("invite-someone-on-stage", room(person("A", status=ON_STAGE), *mods), "M",
        c.Invite(target=A, revision=0), CONFLICT),
    row("invite-someone-invited", room(invited, *mods), "M2", c.Invite(target=A, revision=1),
        CONFLICT),
    row("invite-oneself", room(*mods), "M", c.Invite(target=M, revision=0), CONFLICT),
    row("invite-a-viewer-only-client", room(person("A", viewer_only=True), *mods), "M",
        c.Invite(target=A, revision=0), FORBIDDEN),
    row("invite-stale", room(person("A", revision=3), *mods), "M",
        c.Invite(target=A, revision=2), CONFLICT),
    row("invite-unknown", room(*mods), "M", c.Invite(target=A, revision=0), NOT_FOUND),
    row("invite-by-participant", room(person("A"), person("B")), "B",
        c.Invite(target=A, revision=0), FORBIDDEN),
    row("revoke-by-another-moderator", room(invited, *mods), "M2",
        c.RevokeInvitation(target=A, revision=1),
        ok((ended("A", ev.EndReason.REVOKED, by="M"),),
           A={"status": VIEWER, "revision": 2, **NO_INVITATION})),
    row("revoke-by-a-host", room(invited, person("H", HOST)), "H",
        c.RevokeInvitation(target=A, revision=1),
        ok((ended("A", ev.EndReason.REVOKED, by="M"),), A={"status": VIEWER})),
    row("revoke-stale", room(invited, *mods), "M2", c.RevokeInvitation(target=A, revision=0),
        CONFLICT),
    row("revoke-without-invitation", room(person("A", revision=1), *mods), "M2",
        c.RevokeInvitation(target=A, revision=1), CONFLICT),
    row("revoke-unknown", room(*mods), "M2", c.RevokeInvitation(target=A, revision=0),
        NOT_FOUND),
    row("revoke-by-speaker", room(invited, person("S", speaker=True)), "S",
        c.RevokeInvitation(target=A, revision=1), FORBIDDEN),
    row("accept-mic-off-camera-on", room(invited, access=INVITE_ONLY), "A",
        c.AcceptInvitation(revision=1, mic_on=False, camera_on=True),
        ok((ended("A", ev.EndReason.ACCEPTED, by="M"),),
           A={**SEATED, "revision": 2, "mic": OFF, "camera": ON, **NO_INVITATION})),
    row("accept-mic-on-camera-off", room(invited, mode=PANEL), "A",
        c.AcceptInvitation(revision=1, mic_on=True, camera_on=False),
        ok((ended("A", ev.EndReason.ACCEPTED, by="M"),), A={**SEATED, "mic": ON,
                                                            "camera": OFF})),
    row("accept-stale-revision", room(invited), "A", c.AcceptInvitation(revision=0), CONFLICT),
    row("accept-without-invitation", room(person("A")), "A", c.AcceptInvitation(revision=0),
        CONFLICT),
    row("accept-just-before-expiry", room(invited), "A", c.AcceptInvitation(revision=1),
        ok((ended("A", ev.EndReason.ACCEPTED, by="M"),), A={"status": ON_STAGE}),
        now=NOW + TTL - 0.001),
    row("accept-at-expiry", room(invited), "A", c.AcceptInvitation(revision=1), CONFLICT,
        now=NOW + TTL),
    row("decline", room(invited), "A", c.DeclineInvitation(revision=1),
        ok((ended("A", ev.EndReason.DECLINED, by="M"),),
           A={"status": VIEWER, "revision": 2, **NO_INVITATION})),
    row("decline-stale", room(invited), "A", c.DeclineInvitation(revision=0), CONFLICT),
    row("expire-at-the-deadline", room(invited), None, c.Expire(),
        ok((ended("A", ev.EndReason.EXPIRED, by="M"),),
           A={"status": VIEWER, "revision": 2, **NO_INVITATION}), now=NOW + TTL),
    row("expire-after-the-deadline", room(invited), None, c.Expire(),
        ok((ended("A", ev.EndReason.EXPIRED, by="M"),), A={"status": VIEWER}),
        now=NOW + TTL + 5),
    row("expire-before-the-deadline", room(invited), None, c.Expire(), ok(),
        now=NOW + TTL - 0.001),
    row("expire-only-the-due", room(invited, person("B", status=INVITED, expires_at=NOW + 5)),
        None, c.Expire(), ok((ended("B", ev.EndReason.EXPIRED),), B={"status": VIEWER}),
        now=NOW + 30),
]  # fmt: skip


@pytest.mark.parametrize("r", INVITATIONS)
def test_invitations(r: Row) -> None:
    check(r)


# -- removal from the stage -----------------------------------------------------------------------
seated_a = person("A", status=ON_STAGE, revision=1, mic=ON, camera=ON)
REMOVALS = [
    row("remove", room(seated_a, *mods), "M", c.RemoveFromStage(target=A, revision=1),
        ok((left("A", ev.StageExitReason.REMOVED, by="M"),), A={**OFF_STAGE, "revision": 2})),
    row("moderator-removes-a-host", room(person("H", HOST, status=ON_STAGE), *mods), "M",
        c.RemoveFromStage(target=H, revision=0),
        ok((left("H", ev.StageExitReason.REMOVED, by="M"),), H=OFF_STAGE)),
    row("remove-from-the-seat-queue", room(person("A", status=QUEUED), *mods), "M",
        c.RemoveFromStage(target=A, revision=0), ok((QUEUES,), A={**OFF_STAGE, "queued": None})),
    row("remove-stale", room(seated_a, *mods), "M", c.RemoveFromStage(target=A, revision=0),
        CONFLICT),
    row("remove-a-viewer", room(person("A"), *mods), "M",
        c.RemoveFromStage(target=A, revision=0), CONFLICT),
    row("remove-unknown", room(*mods), "M", c.RemoveFromStage(target=A, revision=0), NOT_FOUND),
    row("remove-by-participant", room(seated_a, person("B", status=ON_STAGE)), "B",
        c.RemoveFromStage(target=A, revision=1), FORBIDDEN),
]  # fmt: skip


@pytest.mark.parametrize("r", REMOVALS)
def test_removal_from_the_stage(r: Row) -> None:
    check(r)


# -- a full stage ---------------------------------------------------------------------------------
def on(name: str, role: Role = PARTICIPANT, **kw: Any) -> Person:
    return person(name, role, status=ON_STAGE, **kw)


def stage(*people: Person, capacity: int, full: FullStagePolicy, **kw: Any) -> RoomState:
    return room(*people, capacity=capacity, full=full, **kw)


EVICTED = left("C", ev.StageExitReason.STAGE_FULL)
CAPACITY = [
    row("reject", stage(person("A"), on("B"), capacity=1, full=REJECT), "A", c.JoinStage(),
        STAGE_FULL),
    row("reject-an-accepted-invitation", stage(invited, on("B"), capacity=1, full=REJECT), "A",
        c.AcceptInvitation(revision=1), STAGE_FULL),
    row("evict-the-silent-longest", stage(person("A"), on("B", on_stage_since=10,
                                                          last_spoke_at=50),
                                          on("C", on_stage_since=20), capacity=2, full=EVICT),
        "A", c.JoinStage(), ok((EVICTED,), A=SEATED, C=OFF_STAGE)),
    row("evict-a-participant-never-a-host-moderator-or-speaker",
        stage(person("A"), on("H", HOST, on_stage_since=1), on("M", MODERATOR, on_stage_since=2),
              on("S", speaker=True, on_stage_since=3), on("C", last_spoke_at=90),
              capacity=4, full=EVICT),
        "A", c.JoinStage(), ok((EVICTED,), A=SEATED, C=OFF_STAGE)),
    row("evict-with-nobody-evictable", stage(person("A"), on("H", HOST), on("S", speaker=True),
                                             capacity=2, full=EVICT),
        "A", c.JoinStage(), STAGE_FULL),
    row("evict-on-accept", stage(invited, on("C"), capacity=1, full=EVICT), "A",
        c.AcceptInvitation(revision=1),
        ok((EVICTED, ended("A", ev.EndReason.ACCEPTED, by="M")), A=SEATED, C=OFF_STAGE)),
    row("queue", stage(person("A"), on("B"), capacity=1, full=QUEUE), "A",
        c.JoinStage(mic_on=True, camera_on=False),
        ok((QUEUES,), A={"status": QUEUED, "queued": 1, "queued_at": NOW, "mic": ON,
                         "camera": OFF, "on_stage_since": None, "revision": 1})),
    row("queue-an-accepted-invitation", stage(invited, on("B"), capacity=1, full=QUEUE), "A",
        c.AcceptInvitation(revision=1, mic_on=False),
        ok((QUEUES, ended("A", ev.EndReason.STAGE_FULL, by="M")),
           A={"status": QUEUED, "mic": OFF, "camera": ON, **NO_INVITATION})),
    row("promote-on-leave",
        stage(on("B"), person("C", status=QUEUED, seq=2), person("A", status=QUEUED, seq=1,
                                                                 mic=ON),
              capacity=1, full=QUEUE),
        "B", c.LeaveStage(),
        ok((left("B", ev.StageExitReason.LEFT), QUEUES),
           B=OFF_STAGE, A={**SEATED, "queued": None, "mic": ON, "camera": OFF})),
    row("promote-on-removal",
        stage(on("B"), person("A", status=QUEUED, seq=1), person("M", MODERATOR),
              capacity=1, full=QUEUE),
        "M", c.RemoveFromStage(target=B, revision=0),
        ok((left("B", ev.StageExitReason.REMOVED, by="M"), QUEUES), B=OFF_STAGE, A=SEATED)),
    row("promote-on-exit", stage(on("B"), person("A", status=QUEUED), capacity=1, full=QUEUE),
        None, c.Exit(participant_id=B), ok((ev.PersonExited(B), QUEUES), B=None, A=SEATED)),
    row("promote-on-capacity-increase",
        stage(on("B"), person("C", status=QUEUED, seq=7), person("A", status=QUEUED, seq=3),
              person("D", status=QUEUED, seq=9), person("M", MODERATOR), capacity=1,
              full=QUEUE),
        "M", c.SetCapacity(capacity=3, full_policy=QUEUE),
        ok((QUEUES, QUEUES, POLICY), policy={"capacity": 3}, A=SEATED, C=SEATED)),
    row("moderator-evicts-under-reject", stage(on("C"), person("M", MODERATOR), capacity=1,
                                               full=REJECT),
        "M", c.JoinStage(), ok((EVICTED,), M=SEATED, C=OFF_STAGE)),
    row("host-evicts-under-queue", stage(on("C"), person("H", HOST), capacity=1, full=QUEUE),
        "H", c.JoinStage(), ok((EVICTED,), H=SEATED, C=OFF_STAGE)),
    row("host-evicts-the-silent-longest-under-reject",
        stage(on("B", last_spoke_at=90), on("C", last_spoke_at=40), person("H", HOST),
              capacity=2, full=REJECT),
        "H", c.JoinStage(), ok((EVICTED,), H=SEATED, C=OFF_STAGE)),
    row("moderator-with-nobody-evictable", stage(on("H", HOST), person("M", MODERATOR),
                                                 capacity=1, full=REJECT),
        "M", c.JoinStage(), STAGE_FULL),
    row("capacity-below-the-stage", stage(on("B"), on("C"), person("M", MODERATOR),
                                          capacity=2, full=REJECT),
        "M", c.SetCapacity(capacity=1, full_policy=REJECT), CONFLICT),
    row("capacity-zero", room(person("M", MODERATOR)), "M",
        c.SetCapacity(capacity=0, full_policy=REJECT), INVALID),
    row("capacity-over-100", room(person("M", MODERATOR)), "M",
        c.SetCapacity(capacity=101, full_policy=REJECT), INVALID),
    row("leaving-queue-policy-empties-the-queue",
        stage(on("B"), person("A", status=QUEUED, mic=ON), person("M", MODERATOR),
              capacity=1, full=QUEUE),
        "M", c.SetCapacity(capacity=1, full_policy=REJECT),
        ok((QUEUES, POLICY), policy={"full_policy": REJECT},
           A={**OFF_STAGE, "queued": None})),
]  # fmt: skip


@pytest.mark.parametrize("r", CAPACITY)
def test_a_full_stage(r: Row) -> None:
    check(r)


# -- microphones and cameras ----------------------------------------------------------------------
DEVICES = [
    row("turn-own-mic-on", room(on("A"), on("B", mic=MUTED)), "A",
        c.SetDevice(device=MIC, on=True), ok(A={"mic": ON})),
    row("turn-own-mic-off", room(on("A", mic=ON)), "A", c.SetDevice(device=MIC, on=False),
        ok(A={"mic": OFF})),
    row("turn-own-camera-on", room(on("A")), "A", c.SetDevice(device=CAMERA, on=True),
        ok(A={"camera": ON, "mic": OFF})),
    row("turn-on-after-a-soft-mute", room(on("A", mic=MUTED)), "A",
        c.SetDevice(device=MIC, on=True), ok(A={"mic": ON})),
    row("turn-on-when-locked", room(on("A", mic=LOCKED)), "A", c.SetDevice(device=MIC, on=True),
        FORBIDDEN),
    row("turn-off-when-locked-stays-locked", room(on("A", camera=LOCKED)), "A",
        c.SetDevice(device=CAMERA, on=False), ok()),
    row("devices-as-a-viewer", room(person("A")), "A", c.SetDevice(device=MIC, on=True),
        CONFLICT),
    row("mute", room(on("A", mic=ON), *mods), "M", c.Mute(target=A, device=MIC),
        ok((forced("A", MIC, MUTED),), A={"mic": MUTED})),
    row("mute-a-camera", room(on("A", camera=ON, mic=ON), *mods), "M",
        c.Mute(target=A, device=CAMERA), ok((forced("A", CAMERA, MUTED),),
                                            A={"camera": MUTED, "mic": ON})),
    row("mute-what-is-off", room(on("A"), *mods), "M", c.Mute(target=A, device=MIC), ok()),
    row("soft-mute-keeps-a-lock", room(on("A", mic=LOCKED), *mods), "M",
        c.Mute(target=A, device=MIC), ok()),
    row("moderator-mutes-a-host", room(on("H", HOST, mic=ON), *mods), "M",
        c.Mute(target=H, device=MIC), ok((forced("H", MIC, MUTED),), H={"mic": MUTED})),
    row("lock", room(on("A", mic=ON), *mods), "M", c.Mute(target=A, device=MIC, lock=True),
        ok((forced("A", MIC, LOCKED),), A={"mic": LOCKED})),
    row("lock-what-is-off", room(on("A"), *mods), "M2", c.Mute(target=A, device=MIC, lock=True),
        ok((forced("A", MIC, LOCKED, by="M2"),), A={"mic": LOCKED})),
    row("mute-oneself", room(on("M", MODERATOR, mic=ON)), "M", c.Mute(target=M, device=MIC),
        CONFLICT),
    row("mute-a-viewer", room(person("A"), *mods), "M", c.Mute(target=A, device=MIC), CONFLICT),
    row("mute-unknown", room(*mods), "M", c.Mute(target=A, device=MIC), NOT_FOUND),
    row("mute-by-participant", room(on("A", mic=ON), on("B")), "B",
        c.Mute(target=A, device=MIC), FORBIDDEN),
    row("unlock-leaves-it-muted", room(on("A", mic=LOCKED), *mods), "M2",
        c.Unlock(target=A, device=MIC), ok((forced("A", MIC, MUTED, by="M2"),),
                                           A={"mic": MUTED})),
    row("unlock-off-stage-leaves-it-off", room(person("A", camera=LOCKED), *mods), "M",
        c.Unlock(target=A, device=CAMERA), ok((forced("A", CAMERA, OFF),), A={"camera": OFF})),
    row("unlock-what-is-not-locked", room(on("A", mic=MUTED), *mods), "M",
        c.Unlock(target=A, device=MIC), CONFLICT),
    row("unlock-by-participant", room(on("A", mic=LOCKED), on("B")), "B",
        c.Unlock(target=A, device=MIC), FORBIDDEN),
    row("mute-all-but-oneself",
        room(on("M", MODERATOR, mic=ON), on("A", mic=ON), on("B"), on("C", mic=LOCKED),
             on("H", HOST, mic=ON), person("D", status=QUEUED, mic=ON)),
        "M", c.MuteAll(device=MIC),
        ok((forced("A", MIC, MUTED), forced("H", MIC, MUTED)), A={"mic": MUTED},
           H={"mic": MUTED})),
    row("cameras-off-and-locked-for-all-but-oneself",
        room(on("H", HOST, camera=ON), on("A", camera=ON, mic=ON), on("B"), person("C")),
        "H", c.MuteAll(device=CAMERA, lock=True),
        ok((forced("A", CAMERA, LOCKED, by="H"), forced("B", CAMERA, LOCKED, by="H")),
           A={"camera": LOCKED, "mic": ON}, B={"camera": LOCKED})),
    row("mute-all-by-speaker", room(on("S", speaker=True), on("A", mic=ON)), "S",
        c.MuteAll(device=MIC), FORBIDDEN),
]  # fmt: skip


@pytest.mark.parametrize("r", DEVICES)
def test_microphones_and_cameras(r: Row) -> None:
    check(r)


# -- hands ----------------------------------------------------------------------------------------
HANDS = [
    row("raise", room(person("A"), person("B", hand=6)), "A", c.RaiseHand(),
        ok((QUEUES,), A={"hand": 7, "hand_at": NOW})),
    row("raise-on-stage", room(on("A")), "A", c.RaiseHand(), ok((QUEUES,), A={"hand": 1})),
    row("raise-again-keeps-the-place", room(person("A", hand=2)), "A", c.RaiseHand(), ok()),
    row("lower", room(person("A", hand=2)), "A", c.LowerHand(),
        ok((QUEUES,), A={"hand": None, "hand_at": None})),
    row("lower-own-by-id", room(person("A", hand=2)), "A", c.LowerHand(target=A),
        ok((QUEUES,), A={"hand": None})),
    row("lower-when-not-raised", room(person("A")), "A", c.LowerHand(), ok()),
    row("moderator-lowers-one", room(person("A", hand=2), person("B", hand=3), *mods), "M",
        c.LowerHand(target=A), ok((QUEUES,), A={"hand": None})),
    row("participant-lowers-another", room(person("A", hand=2), person("B")), "B",
        c.LowerHand(target=A), FORBIDDEN),
    row("lower-unknown", room(*mods), "M", c.LowerHand(target=A), NOT_FOUND),
    row("lower-all", room(person("A", hand=2), on("B", hand=3), person("C"), *mods), "M",
        c.LowerAllHands(), ok((QUEUES,), A={"hand": None}, B={"hand": None})),
    row("lower-all-by-participant", room(person("A", hand=2), person("B")), "B",
        c.LowerAllHands(), FORBIDDEN),
]  # fmt: skip


@pytest.mark.parametrize("r", HANDS)
def test_hands(r: Row) -> None:
    check(r)


# -- stage access and room mode -------------------------------------------------------------------
def requesters(**kw: Any) -> RoomState:
    return room(
        person("A", status=REQUESTED, seq=1, revision=1),
        person("B", status=REQUESTED, seq=2, revision=1),
        on("C"),
        person("D", status=INVITED),
        person("M", MODERATOR),
        **kw,
    )


CANCELLED = (ev.RequestCancelled(A), QUEUES, ev.RequestCancelled(B), QUEUES, POLICY)
DROPPED = {"status": VIEWER, "request": None, "request_at": None, "revision": 2}
POLICIES = [
    row("request-to-everyone-cancels-requests", requesters(access=REQUEST), "M",
        c.SetStageAccess(access=EVERYONE),
        ok(CANCELLED, policy={"stage_access": EVERYONE}, A=DROPPED, B=DROPPED)),
    row("request-to-invite-only-cancels-requests", requesters(access=REQUEST), "M",
        c.SetStageAccess(access=INVITE_ONLY),
        ok(CANCELLED, policy={"stage_access": INVITE_ONLY}, A=DROPPED, B=DROPPED)),
    row("request-to-request-keeps-them", requesters(access=REQUEST), "M",
        c.SetStageAccess(access=REQUEST), ok((POLICY,), policy={"stage_access": REQUEST})),
    row("everyone-to-request", room(person("A"), person("M", MODERATOR)), "M",
        c.SetStageAccess(access=REQUEST), ok((POLICY,), policy={"stage_access": REQUEST})),
    row("panel-cancels-requests", requesters(access=REQUEST), "M", c.SetRoomMode(mode=PANEL),
        ok(CANCELLED, policy={"mode": PANEL, "stage_access": REQUEST}, A=DROPPED, B=DROPPED)),
    row("back-to-interactive", room(person("M", MODERATOR), mode=PANEL, access=REQUEST), "M",
        c.SetRoomMode(mode=INTERACTIVE), ok((POLICY,), policy={"mode": INTERACTIVE})),
    row("host-changes-access", room(person("H", HOST), access=INVITE_ONLY), "H",
        c.SetStageAccess(access=EVERYONE), ok((POLICY,), policy={"stage_access": EVERYONE})),
    row("participant-changes-access", room(person("A")), "A",
        c.SetStageAccess(access=REQUEST), FORBIDDEN),
    row("speaker-changes-mode", room(person("S", speaker=True)), "S",
        c.SetRoomMode(mode=PANEL), FORBIDDEN),
    row("speaker-changes-capacity", room(person("S", speaker=True)), "S",
        c.SetCapacity(capacity=5, full_policy=QUEUE), FORBIDDEN),
    row("capacity-and-policy", room(person("M", MODERATOR)), "M",
        c.SetCapacity(capacity=5, full_policy=EVICT),
        ok((POLICY,), policy={"capacity": 5, "full_policy": EVICT})),
]  # fmt: skip


@pytest.mark.parametrize("r", POLICIES)
def test_stage_access_and_room_mode(r: Row) -> None:
    check(r)


# -- roles, labels and permissions ----------------------------------------------------------------
cast = (
    person("H", HOST),
    person("H2", HOST),
    person("M", MODERATOR),
    person("M2", MODERATOR),
    person("A"),
)
H2 = pid("H2")
RIGHTS = [
    row("host-makes-a-moderator", room(*cast), "H", c.SetRole(target=A, role=MODERATOR),
        ok(A={"role": MODERATOR})),
    row("host-makes-a-host", room(*cast), "H", c.SetRole(target=A, role=HOST),
        ok(A={"role": HOST})),
    row("host-demotes-a-host", room(*cast), "H", c.SetRole(target=H2, role=PARTICIPANT),
        ok(H2={"role": PARTICIPANT})),
    row("host-demotes-oneself", room(*cast), "H", c.SetRole(target=H, role=MODERATOR),
        FORBIDDEN),
    row("moderator-makes-a-moderator", room(*cast), "M", c.SetRole(target=A, role=MODERATOR),
        ok(A={"role": MODERATOR})),
    row("moderator-demotes-a-moderator", room(*cast), "M",
        c.SetRole(target=M2, role=PARTICIPANT), ok(M2={"role": PARTICIPANT})),
    row("moderator-makes-a-host", room(*cast), "M", c.SetRole(target=A, role=HOST), FORBIDDEN),
    row("moderator-promotes-a-moderator-to-host", room(*cast), "M",
        c.SetRole(target=M2, role=HOST), FORBIDDEN),
    row("moderator-demotes-a-host", room(*cast), "M", c.SetRole(target=H, role=PARTICIPANT),
        FORBIDDEN),
    row("moderator-demotes-oneself", room(*cast), "M", c.SetRole(target=M, role=PARTICIPANT),
        FORBIDDEN),
    row("participant-promotes-oneself", room(*cast), "A", c.SetRole(target=A, role=MODERATOR),
        FORBIDDEN),
    row("set-role-unknown", room(*cast), "H", c.SetRole(target=B, role=MODERATOR), NOT_FOUND),
    row("demoted-on-stage-stays", room(person("H", HOST), on("M", MODERATOR, mic=ON),
                                       access=INVITE_ONLY, mode=PANEL), "H",
        c.SetRole(target=M, role=PARTICIPANT),
        ok(M={"role": PARTICIPANT, "status": ON_STAGE, "mic": ON})),
    row("moderator-labels-a-speaker", room(*cast), "M", c.SetSpeaker(target=A, speaker=True),
        ok(A={"speaker": True})),
    row("host-removes-a-label", room(person("H", HOST), person("S", speaker=True)), "H",
        c.SetSpeaker(target=pid("S"), speaker=False), ok(S={"speaker": False})),
    row("moderator-labels-a-host", room(*cast), "M", c.SetSpeaker(target=H, speaker=True),
        FORBIDDEN),
    row("host-labels-oneself", room(*cast), "H", c.SetSpeaker(target=H, speaker=True),
        FORBIDDEN),
    row("speaker-labels-someone", room(person("S", speaker=True), person("A")), "S",
        c.SetSpeaker(target=A, speaker=True), FORBIDDEN),
    row("grant-presenting", room(*cast), "M",
        c.SetPermission(target=A, permission=Permission.PRESENT, granted=True),
        ok(A={"granted": frozenset({Permission.PRESENT})})),
    row("withdraw-presenting", room(person("M", MODERATOR),
                                    person("A", granted=[Permission.PRESENT])), "M",
        c.SetPermission(target=A, permission=Permission.PRESENT, granted=False),
        ok(A={"granted": frozenset()})),
    row("moderator-permission-for-a-host", room(*cast), "M",
        c.SetPermission(target=H, permission=Permission.PRESENT, granted=True), FORBIDDEN),
    row("participant-permission-for-oneself", room(*cast), "A",
        c.SetPermission(target=A, permission=Permission.PRESENT, granted=True), FORBIDDEN),
]  # fmt: skip


@pytest.mark.parametrize("r", RIGHTS)
def test_roles_labels_and_permissions(r: Row) -> None:
    check(r)


# -- kicks and exits ------------------------------------------------------------------------------
KICKS = [
    row("kick", room(on("A", hand=2), *mods), "M", c.Kick(target=A),
        ok((ev.Kicked(A), QUEUES, ev.PersonExited(A)), banned=frozenset({"a"}), A=None)),
    row("kick-frees-a-seat",
        stage(on("A"), person("B", status=QUEUED), person("M", MODERATOR), capacity=1,
              full=QUEUE),
        "M", c.Kick(target=A),
        ok((ev.Kicked(A), ev.PersonExited(A), QUEUES), banned=frozenset({"a"}), A=None,
           B=SEATED)),
    row("kick-an-invitee", room(invited, *mods), "M2", c.Kick(target=A),
        ok((ev.Kicked(A), ended("A", ev.EndReason.LEFT, by="M"), ev.PersonExited(A)),
           banned=frozenset({"a"}), A=None)),
    row("kick-every-session-of-the-identity",
        room(person("A"), person("A2", identity="a"), person("B"), *mods), "M", c.Kick(target=A),
        ok((ev.Kicked(A), ev.PersonExited(A), ev.Kicked(pid("A2")), ev.PersonExited(pid("A2"))),
           banned=frozenset({"a"}), A=None, A2=None)),
    row("host-kicks-a-moderator", room(*cast), "H", c.Kick(target=M),
        ok((ev.Kicked(M), ev.PersonExited(M)), banned=frozenset({"m"}), M=None)),
    row("moderator-kicks-a-host", room(*cast), "M", c.Kick(target=H), FORBIDDEN),
    row("kick-oneself", room(*cast), "H", c.Kick(target=H), FORBIDDEN),
    row("kick-another-session-of-oneself", room(person("H", HOST),
                                                person("H-phone", identity="h")), "H",
        c.Kick(target=pid("H-phone")), FORBIDDEN),
    row("participant-kicks", room(*cast), "A", c.Kick(target=M), FORBIDDEN),
    row("kick-unknown", room(*cast), "H", c.Kick(target=B), NOT_FOUND),
    row("exit-with-a-request", room(asked, access=REQUEST), None, c.Exit(participant_id=A),
        ok((QUEUES, ev.PersonExited(A)), A=None)),
    row("exit-while-invited", room(invited), None, c.Exit(participant_id=A),
        ok((ended("A", ev.EndReason.LEFT, by="M"), ev.PersonExited(A)), A=None)),
    row("exit-unknown", room(), None, c.Exit(participant_id=A), NOT_FOUND),
    row("spoke", room(on("A")), None, c.Spoke(participant_id=A),
        ok(A={"last_spoke_at": NOW}, events=None)),
]  # fmt: skip


@pytest.mark.parametrize("r", KICKS)
def test_kicks_and_exits(r: Row) -> None:
    check(r)


# -- the host leaving, and ending the room --------------------------------------------------------
def host_left(who: str) -> ev.HostLeft:
    return ev.HostLeft(pid(who))


LEADERSHIP = [
    row("host-ends-the-room", room(on("H", HOST), on("A"), person("M", MODERATOR),
                                   person("B", hand=1)),
        "H", c.EndRoom(), ok((ev.RoomEnded(H),))),
    row("host-off-stage-ends-the-room", room(person("H", HOST), person("A")), "H", c.EndRoom(),
        ok((ev.RoomEnded(H),))),
    row("moderator-may-not-end-the-room", room(person("H", HOST), person("M", MODERATOR)), "M",
        c.EndRoom(), FORBIDDEN),
    row("moderator-may-not-end-a-room-without-host", room(person("M", MODERATOR)), "M",
        c.EndRoom(), FORBIDDEN),
    row("participant-may-not-end-the-room", room(person("H", HOST), on("A")), "A", c.EndRoom(),
        FORBIDDEN),
    row("speaker-may-not-end-the-room", room(person("H", HOST), person("S", speaker=True)), "S",
        c.EndRoom(), FORBIDDEN),
    row("stranger-may-not-end-the-room", room(person("H", HOST)), "A", c.EndRoom(), NOT_FOUND),
    row("last-host-leaves-moderators-remain", room(person("H", HOST), *mods, person("A")), None,
        c.Exit(participant_id=H), ok((ev.PersonExited(H), host_left("H")), H=None)),
    row("last-host-leaves-nobody-to-run-the-room", room(on("H", HOST), on("A")), None,
        c.Exit(participant_id=H), ok((ev.PersonExited(H), host_left("H")), H=None)),
    row("last-host-leaves-a-seat-to-the-queue",
        stage(on("H", HOST), person("B", status=QUEUED), capacity=1, full=QUEUE), None,
        c.Exit(participant_id=H),
        ok((ev.PersonExited(H), host_left("H"), QUEUES), H=None, B=SEATED)),
    row("a-host-leaves-another-stays", room(person("H", HOST), person("H2", HOST)), None,
        c.Exit(participant_id=H), ok((ev.PersonExited(H),), H=None)),
    row("a-hosts-tab-leaves-the-other-stays",
        room(person("H", HOST), person("H-phone", HOST, identity="h")), None,
        c.Exit(participant_id=H), ok((ev.PersonExited(H),), H=None)),
    row("a-moderator-leaves-with-a-host-present", room(person("H", HOST), person("M", MODERATOR)),
        None, c.Exit(participant_id=M), ok((ev.PersonExited(M),), M=None)),
    row("a-moderator-leaves-another-stays", room(*mods, person("A")), None,
        c.Exit(participant_id=M), ok((ev.PersonExited(M),), M=None)),
    row("last-moderator-of-a-room-without-host", room(person("M", MODERATOR), person("A")), None,
        c.Exit(participant_id=M), ok((ev.PersonExited(M), host_left("M")), M=None)),
    row("a-participant-leaves-a-room-without-host", room(person("A"), person("B")), None,
        c.Exit(participant_id=A), ok((ev.PersonExited(A),), A=None)),
    row("a-host-kicks-the-other-host", room(person("H", HOST), person("H2", HOST)), "H",
        c.Kick(target=pid("H2")),
        ok((ev.Kicked(pid("H2")), ev.PersonExited(pid("H2"))), banned=frozenset({"h2"}),
           H2=None)),
    row("a-host-kicks-the-last-moderator", room(person("H", HOST), person("M", MODERATOR)), "H",
        c.Kick(target=M), ok((ev.Kicked(M), ev.PersonExited(M)), banned=frozenset({"m"}),
                             M=None)),
]  # fmt: skip


@pytest.mark.parametrize("r", LEADERSHIP)
def test_the_host_leaving_and_ending_the_room(r: Row) -> None:
    check(r)


# -- polls ----------------------------------------------------------------------------------------
open_poll = poll("lunch", votes={"b": 0})
POLLS = [
    row("create", room(person("M", MODERATOR)), "M",
        c.CreatePoll(poll_id="q", question="Ready?", options=("yes", "no")),
        ok((ev.PollChanged("q"),),
           polls={"q": poll("q", question="Ready?", options=("yes", "no"), created_by="M")})),
    row("create-by-participant", room(person("A")), "A",
        c.CreatePoll(poll_id="q", question="Ready?", options=("yes", "no")), FORBIDDEN),
    row("create-by-speaker", room(person("S", speaker=True)), "S",
        c.CreatePoll(poll_id="q", question="Ready?", options=("yes", "no")), FORBIDDEN),
    row("create-with-one-option", room(person("M", MODERATOR)), "M",
        c.CreatePoll(poll_id="q", question="Ready?", options=("yes",)), INVALID),
    row("create-with-eleven-options", room(person("M", MODERATOR)), "M",
        c.CreatePoll(poll_id="q", question="Pick", options=tuple("abcdefghijk")), INVALID),
    row("create-with-ten-options", room(person("M", MODERATOR)), "M",
        c.CreatePoll(poll_id="q", question="Pick", options=tuple("abcdefghij")),
        ok((ev.PollChanged("q"),), polls={"q": poll("q", question="Pick",
                                                    options=tuple("abcdefghij"),
                                                    created_by="M")})),
    row("create-with-an-empty-option", room(person("M", MODERATOR)), "M",
        c.CreatePoll(poll_id="q", question="Ready?", options=("yes", "")), INVALID),
    row("create-with-an-empty-question", room(person("M", MODERATOR)), "M",
        c.CreatePoll(poll_id="q", question="", options=("yes", "no")), INVALID),
    row("create-with-a-long-question", room(person("M", MODERATOR)), "M",
        c.CreatePoll(poll_id="q", question="x" * 301, options=("yes", "no")), INVALID),
    row("create-twice", room(person("M", MODERATOR), polls=[open_poll]), "M",
        c.CreatePoll(poll_id="lunch", question="Again?", options=("yes", "no")), CONFLICT),
    row("vote", room(person("A"), polls=[open_poll]), "A", c.Vote(poll_id="lunch", option=1),
        ok((ev.PollChanged("lunch"),), polls={"lunch": poll("lunch", votes={"b": 0, "a": 1})})),
    row("vote-again-from-another-session", room(person("B2", identity="b"), polls=[open_poll]),
        "B2", c.Vote(poll_id="lunch", option=1), CONFLICT),
    row("vote-on-a-closed-poll", room(person("A"), polls=[poll("lunch", closed=True)]), "A",
        c.Vote(poll_id="lunch", option=0), CONFLICT),
    row("vote-for-no-option", room(person("A"), polls=[open_poll]), "A",
        c.Vote(poll_id="lunch", option=2), INVALID),
    row("vote-negative", room(person("A"), polls=[open_poll]), "A",
        c.Vote(poll_id="lunch", option=-1), INVALID),
    row("vote-unknown-poll", room(person("A")), "A", c.Vote(poll_id="nope", option=0),
        NOT_FOUND),
    row("close", room(person("M", MODERATOR), polls=[open_poll]), "M",
        c.ClosePoll(poll_id="lunch"),
        ok((ev.PollChanged("lunch"),), polls={"lunch": poll("lunch", votes={"b": 0},
                                                            closed=True)})),
    row("close-closed", room(person("M", MODERATOR), polls=[poll("lunch", closed=True)]), "M",
        c.ClosePoll(poll_id="lunch"), CONFLICT),
    row("close-unknown", room(person("M", MODERATOR)), "M", c.ClosePoll(poll_id="nope"),
        NOT_FOUND),
    row("close-by-participant", room(person("A"), polls=[open_poll]), "A",
        c.ClosePoll(poll_id="lunch"), FORBIDDEN),
]  # fmt: skip


@pytest.mark.parametrize("r", POLLS)
def test_polls(r: Row) -> None:
    check(r)


# -- sequences of commands ------------------------------------------------------------------------
def test_an_approved_request_becomes_an_invitation_then_a_seat() -> None:
    state = room(person("A"), person("M", MODERATOR), access=REQUEST)
    state, _ = apply(state, "A", c.RequestStage())
    state, _ = apply(state, "M", c.ApproveRequest(target=A, revision=1))
    assert state.people[A].status is INVITED
    assert state.stage_count == 0
    state, events = apply(state, "A", c.AcceptInvitation(revision=2, mic_on=True,
                                                         camera_on=False))  # fmt: skip
    assert state.people[A].status is ON_STAGE
    assert (state.people[A].mic, state.people[A].camera) == (ON, OFF)
    assert ended("A", ev.EndReason.ACCEPTED, by="M") in events


def test_accepting_a_revoked_or_superseded_invitation_is_a_conflict() -> None:
    state = room(person("A"), person("M", MODERATOR), person("M2", MODERATOR))
    state, _ = apply(state, "M", c.Invite(target=A, revision=0))
    state, _ = apply(state, "M2", c.RevokeInvitation(target=A, revision=1))
    assert refusal(state, "A", c.AcceptInvitation(revision=1)) == CONFLICT
    state, _ = apply(state, "M", c.Invite(target=A, revision=2))
    assert refusal(state, "A", c.AcceptInvitation(revision=1)) == CONFLICT
    state, _ = apply(state, "A", c.AcceptInvitation(revision=3))
    assert state.people[A].on_stage


def test_speaking_decides_who_is_evicted() -> None:
    state = room(person("A"), on("B", on_stage_since=10), on("C", on_stage_since=20),
                 capacity=2, full=EVICT)  # fmt: skip
    assert apply(state, "A", c.JoinStage())[0].people[B].status is VIEWER
    state, _ = apply(state, None, c.Spoke(participant_id=B), now=30)
    after, events = apply(state, "A", c.JoinStage(), now=40)
    assert after.people[B].on_stage
    assert after.people[C].status is VIEWER
    assert left("C", ev.StageExitReason.STAGE_FULL) in events


def test_the_seat_queue_is_served_in_order() -> None:
    state = room(on("B"), person("A"), person("C"), person("D"), person("M", MODERATOR),
                 capacity=1, full=QUEUE)  # fmt: skip
    for name in ("D", "A", "C"):
        state, _ = apply(state, name, c.JoinStage())
    assert [p.participant_id for p in state.queue("queued")] == [D, A, C]
    state, _ = apply(state, "B", c.LeaveStage())
    assert [p.participant_id for p in state.on_stage] == [D]
    state, _ = apply(state, "M", c.RemoveFromStage(target=D, revision=2))
    assert [p.participant_id for p in state.on_stage] == [A]
    state, _ = apply(state, None, c.Exit(participant_id=A))
    assert [p.participant_id for p in state.on_stage] == [C]
    assert state.queue("queued") == []


def test_a_lock_survives_leaving_and_rejoining_the_stage() -> None:
    state = room(on("A", mic=ON), person("M", MODERATOR))
    state, _ = apply(state, "M", c.Mute(target=A, device=MIC, lock=True))
    state, _ = apply(state, "A", c.LeaveStage())
    assert state.people[A].mic is LOCKED
    state, _ = apply(state, "A", c.JoinStage(mic_on=True, camera_on=True))
    assert (state.people[A].mic, state.people[A].camera) == (LOCKED, ON)
    assert refusal(state, "A", c.SetDevice(device=MIC, on=True)) == FORBIDDEN
    state, _ = apply(state, "M", c.Unlock(target=A, device=MIC))
    assert state.people[A].mic is MUTED
    state, _ = apply(state, "A", c.SetDevice(device=MIC, on=True))
    assert state.people[A].mic is ON


def test_hands_are_ordered_by_the_server_not_by_name_or_clock() -> None:
    state = room(person("A"), person("B"), person("C"), person("M", MODERATOR))
    for name in ("C", "A", "B"):
        state, _ = apply(state, name, c.RaiseHand(), now=NOW)
    assert [p.participant_id for p in state.queue("hand")] == [C, A, B]
    state, _ = apply(state, "C", c.LowerHand())
    state, _ = apply(state, "C", c.RaiseHand())
    assert [p.participant_id for p in state.queue("hand")] == [A, B, C]
    state, _ = apply(state, "M", c.LowerHand(target=B))
    assert [p.participant_id for p in state.queue("hand")] == [A, C]


def test_a_kicked_identity_cannot_come_back() -> None:
    state = room(person("A"), person("M", MODERATOR))
    state, _ = apply(state, "M", c.Kick(target=A))
    again = c.Enter(participant_id=pid("A2"), identity="a", name="A again", role=PARTICIPANT)
    assert refusal(state, None, again) == BANNED
    assert refusal(state, None, c.Enter(participant_id=pid("A3"), identity="a", name="A",
                                        role=HOST, on_stage=True)) == BANNED  # fmt: skip


def test_set_device_only_ever_changes_the_actor() -> None:
    state = room(on("A"), on("B", mic=MUTED, camera=OFF), on("M", MODERATOR))
    for actor in ("A", "B", "M"):
        for device in (MIC, CAMERA):
            for turn_on in (True, False):
                after, _ = apply(state, actor, c.SetDevice(device=device, on=turn_on))
                others = {k: v for k, v in after.people.items() if k != pid(actor)}
                assert others == {k: v for k, v in state.people.items() if k != pid(actor)}
