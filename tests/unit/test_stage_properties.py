"""Properties of the stage machine under random sequences of commands.

Random people of random roles (entering, leaving, being promoted) give random
commands, about people who exist and people who don't, quoting current and
stale revisions, while the clock moves forward, in rooms with random policies.
After every step the invariants below must hold; a refused command must leave
the state exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from signaling.roles import Role
from signaling.stage import commands as c
from signaling.stage import events as ev
from signaling.stage.machine import Refusal, StageError, transition
from signaling.stage.model import (
    Device,
    DeviceState,
    FullStagePolicy,
    ParticipantId,
    Permission,
    Person,
    RoomMode,
    RoomPolicy,
    RoomState,
    StageAccess,
    StageStatus,
)
from signaling.stage.roster import Index
from tests.stage_builders import snapshot

IDENTITIES = ["ann", "bob", "cy", "dee", "eve"]
GHOST = ParticipantId("ghost")  # never in the room
STEPS = [0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 2.0, 5.0, 30.0, 60.0, 120.0]
RARELY = st.sampled_from([False] * 4 + [True])
# Commands by name; FLOW are those that move people to and from the stage (and locks,
# which must outlast such moves).
KINDS = [
    *["enter", "exit", "expire", "spoke", "set_device", "raise", "lower", "vote"],
    *["mute", "unlock", "mute_all", "lower_all", "set_access", "set_mode", "set_capacity"],
    *["set_role", "set_label", "kick", "poll", "end"],
    *["join", "leave", "remove", "cancel", "revoke", "decline_invitation"],
    *["request", "accept", "approve", "invite", "decline_request"],
]
FLOW = ["join", "leave", "remove", "cancel", "revoke", "decline_invitation", "expire", "mute"]
FLOW += ["request", "accept", "approve", "invite", "decline_request"] * 2
SEQ_FIELDS = (("hand", "hand_at"), ("request", "request_at"), ("queued", "queued_at"))
DEVICES = (Device.MIC, Device.CAMERA)

policies = st.builds(
    RoomPolicy,
    mode=st.sampled_from([RoomMode.INTERACTIVE, RoomMode.INTERACTIVE, RoomMode.PANEL]),
    stage_access=st.sampled_from(StageAccess),
    capacity=st.integers(1, 4),
    full_policy=st.sampled_from(FullStagePolicy),
    invitation_ttl=st.sampled_from([5.0, 60.0, 600.0]),
)


def grants(person: Person) -> set[Device]:
    """Sources this person may publish: mic and camera, only on the stage."""
    return set(DEVICES) if person.status is StageStatus.ON_STAGE else set()


def device(person: Person, which: Device) -> DeviceState:
    return person.mic if which is Device.MIC else person.camera


def live(person: Person) -> set[Device]:
    return {d for d in DEVICES if device(person, d) is DeviceState.ON}


class StageRules(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = RoomState()
        self.now = 1000.0
        self.entered = 0
        self.known: list[ParticipantId] = []  # everyone who ever entered, in order

    # -- driving ---------------------------------------------------------------------------
    @initialize(
        policy=policies,
        entrants=st.lists(
            st.tuples(st.sampled_from(Role), st.sampled_from(IDENTITIES), st.booleans()),
            min_size=1,
            max_size=4,
        ),
    )
    def open_room(self, policy: RoomPolicy, entrants: list[tuple[Role, str, bool]]) -> None:
        self.state = RoomState(policy=policy)
        for role, identity, on_stage in entrants:
            self.step(None, self.enter(role, identity, on_stage=on_stage))

    @rule(data=st.data())
    def act(self, data: st.DataObject) -> None:
        self.now += data.draw(st.sampled_from(STEPS), label="time passes")
        actor, command = self.draw_command(data, KINDS)
        self.step(actor, command)

    @rule(data=st.data())
    def move_along(self, data: st.DataObject) -> None:
        """Commands that take people to and from the stage, so that flows run to the end."""
        self.now += data.draw(st.sampled_from(STEPS[:6]), label="time passes")
        actor, command = self.draw_command(data, FLOW)
        self.step(actor, command)

    def enter(self, role: Role, identity: str, **kw: Any) -> c.Enter:
        self.entered += 1
        participant_id = ParticipantId(f"p{self.entered}")
        self.known.append(participant_id)
        return c.Enter(participant_id=participant_id, identity=identity, name=identity,
                       role=role, **kw)  # fmt: skip

    def draw_command(
        self, data: st.DataObject, kinds: list[str]
    ) -> tuple[ParticipantId | None, c.Command]:
        """A random command; its actor and target are usually drawn from those it fits."""
        draw = data.draw
        people = list(self.state.people.values())
        anyone: st.SearchStrategy[ParticipantId] = st.sampled_from(
            [*self.state.people, *self.known, GHOST]
        )

        def pick(label: str, fits: Callable[[Person], bool] = lambda p: True) -> ParticipantId:
            pool = [p.participant_id for p in people if fits(p)]
            if not pool or draw(RARELY, label=f"any {label}"):
                return draw(anyone, label=label)
            return draw(st.sampled_from(pool), label=label)

        def revision_of(participant_id: ParticipantId) -> int:
            current = self.state.people.get(participant_id)
            if current is None or draw(RARELY, label="stale"):
                return draw(st.integers(0, 6), label="revision")
            return current.revision

        def has(*statuses: StageStatus) -> Callable[[Person], bool]:
            return lambda p: p.status in statuses

        def manages(p: Person) -> bool:
            return p.is_moderator

        dev = draw(st.sampled_from(DEVICES), label="device")
        flag = draw(st.booleans(), label="flag")
        flag2 = draw(st.booleans(), label="flag2")
        polls = [*self.state.polls, "nope"]
        kind = draw(st.sampled_from(kinds), label="kind")
        actor: ParticipantId | None
        command: c.Command
        match kind:
            case "enter":
                role = draw(st.sampled_from(Role))
                if draw(RARELY, label="already in") and people:  # someone already in the room
                    again = draw(st.sampled_from(people))
                    return None, c.Enter(participant_id=again.participant_id, identity="x",
                                         name="x", role=role)  # fmt: skip
                return None, self.enter(
                    role,
                    draw(st.sampled_from(IDENTITIES)),
                    on_stage=flag,
                    mic_on=flag2,
                    camera_on=draw(st.booleans()),
                    viewer_only=draw(RARELY, label="viewer only"),
                )
            case "exit":
                return None, c.Exit(participant_id=pick("target", has(StageStatus.ON_STAGE)))
            case "expire":
                return None, c.Expire()
            case "spoke":
                return None, c.Spoke(participant_id=pick("target", has(StageStatus.ON_STAGE)))
            case "join":
                actor = pick("actor", lambda p: not p.on_stage)
                command = c.JoinStage(mic_on=flag, camera_on=flag2)
            case "leave":
                actor = pick("actor", has(StageStatus.ON_STAGE, StageStatus.QUEUED))
                command = c.LeaveStage()
            case "request":
                actor = pick("actor", lambda p: p.status is StageStatus.VIEWER and not p.speaker)
                command = c.RequestStage()
            case "cancel":
                actor = pick("actor", has(StageStatus.REQUESTED))
                command = c.CancelRequest()
            case "accept" | "decline_invitation":
                actor = pick("actor", has(StageStatus.INVITED))
                quoted = revision_of(actor)
                if kind == "accept":
                    command = c.AcceptInvitation(revision=quoted, mic_on=flag, camera_on=flag2)
                else:
                    command = c.DeclineInvitation(revision=quoted)
            case "set_device":
                actor = pick("actor", has(StageStatus.ON_STAGE))
                command = c.SetDevice(device=dev, on=flag)
            case "raise":
                actor = pick("actor")
                command = c.RaiseHand()
            case "lower":
                actor = pick("actor", lambda p: p.hand is not None)
                target = pick("target", lambda p: p.hand is not None)
                command = c.LowerHand(target=target if flag else None)
            case "vote":
                actor = pick("actor")
                command = c.Vote(poll_id=draw(st.sampled_from(polls)),
                                 option=draw(st.integers(-1, 3)))  # fmt: skip
            case "approve" | "decline_request":
                actor = pick("actor", manages)
                target = pick("target", has(StageStatus.REQUESTED))
                if kind == "decline_request":
                    command = c.DeclineRequest(target=target, revision=revision_of(target))
                else:
                    command = c.ApproveRequest(target=target, revision=revision_of(target))
            case "invite":
                actor = pick("actor", manages)
                target = pick("target", has(StageStatus.VIEWER, StageStatus.REQUESTED))
                command = c.Invite(target=target, revision=revision_of(target))
            case "revoke":
                actor = pick("actor", manages)
                target = pick("target", has(StageStatus.INVITED))
                command = c.RevokeInvitation(target=target, revision=revision_of(target))
            case "remove":
                actor = pick("actor", manages)
                target = pick("target", has(StageStatus.ON_STAGE, StageStatus.QUEUED))
                command = c.RemoveFromStage(target=target, revision=revision_of(target))
            case "mute":
                actor = pick("actor", manages)
                target = pick("target", has(StageStatus.ON_STAGE))
                command = c.Mute(target=target, device=dev, lock=flag)
            case "unlock":
                actor = pick("actor", manages)
                target = pick("target", lambda p: DeviceState.LOCKED in (p.mic, p.camera))
                command = c.Unlock(target=target, device=dev)
            case "mute_all":
                actor = pick("actor", manages)
                command = c.MuteAll(device=dev, lock=flag)
            case "lower_all":
                actor = pick("actor", manages)
                command = c.LowerAllHands()
            case "set_access":
                actor = pick("actor", manages)
                command = c.SetStageAccess(access=draw(st.sampled_from(StageAccess)))
            case "set_mode":
                actor = pick("actor", manages)
                command = c.SetRoomMode(mode=draw(st.sampled_from(RoomMode)))
            case "set_capacity":
                actor = pick("actor", manages)
                capacity = draw(st.integers(0, 5))
                policy = draw(st.sampled_from(FullStagePolicy))
                command = c.SetCapacity(capacity=capacity, full_policy=policy)
            case "set_role":
                actor, target = pick("actor", manages), pick("target")
                command = c.SetRole(target=target, role=draw(st.sampled_from(Role)))
            case "set_label":
                actor, target = pick("actor", manages), pick("target")
                if flag2:
                    command = c.SetSpeaker(target=target, speaker=flag)
                else:
                    command = c.SetPermission(target=target, permission=Permission.PRESENT,
                                              granted=flag)  # fmt: skip
            case "kick":
                actor, target = pick("actor", manages), pick("target")
                command = c.Kick(target=target)
            case "end":
                actor = pick("actor", manages)
                command = c.EndRoom()
            case _:
                assert kind == "poll", kind
                actor = pick("actor", manages)
                poll_id = draw(st.sampled_from(["q1", "q2", *polls]))
                if flag:
                    command = c.ClosePoll(poll_id=poll_id)
                else:
                    options = draw(st.lists(st.sampled_from(["", "yes", "no", "maybe"]),
                                            max_size=4))  # fmt: skip
                    command = c.CreatePoll(poll_id=poll_id, question="?", options=tuple(options))
        return actor, command

    # -- one step and its checks -----------------------------------------------------------------
    def step(self, actor: ParticipantId | None, command: c.Command) -> None:
        before = self.state
        frozen = snapshot(before)
        try:
            after, events = transition(before, actor, command, self.now)
        except StageError as error:
            assert isinstance(error.code, Refusal)
            assert snapshot(before) == frozen, f"refused {command!r} changed the state"
            return
        assert snapshot(before) == frozen, f"{command!r} mutated its input"
        check_state(after)
        check_step(before, after, actor, command, events, self.now)
        check_authority(before, after, actor, command)
        self.state = after


def check_state(state: RoomState) -> None:
    policy = state.policy
    assert 1 <= policy.capacity <= 100
    assert state.stage_count <= policy.capacity
    numbers: list[int] = []
    for pid, p in state.people.items():
        assert pid == p.participant_id
        assert p.identity not in state.banned, f"banned {p.identity} is in the room"
        assert (p.status is StageStatus.ON_STAGE) == (p.on_stage_since is not None)
        assert (p.status is StageStatus.REQUESTED) == (p.request is not None)
        assert (p.status is StageStatus.QUEUED) == (p.queued is not None)
        assert (p.status is StageStatus.INVITED) == (p.invitation is not None)
        for number, at in SEQ_FIELDS:
            assert (getattr(p, number) is None) == (getattr(p, at) is None)
            if getattr(p, number) is not None:
                numbers.append(getattr(p, number))
        if p.invitation is not None:
            assert p.invitation.revision == p.revision
        if p.status is StageStatus.QUEUED:
            assert grants(p) == set()  # choices remembered, nothing published
        else:
            assert live(p) <= grants(p), f"{pid} is {p.status} with {live(p)} live"
            if p.status is not StageStatus.ON_STAGE:
                assert {p.mic, p.camera} <= {DeviceState.OFF, DeviceState.LOCKED}
        if p.viewer_only:
            assert p.status is StageStatus.VIEWER
        if p.status is StageStatus.REQUESTED:  # requests exist only while they may be made
            assert policy.mode is RoomMode.INTERACTIVE
            assert policy.stage_access is StageAccess.REQUEST
    assert len(numbers) == len(set(numbers)), "a sequence number was handed out twice"
    assert all(0 < n < state.next_seq for n in numbers)
    for number, at in SEQ_FIELDS:
        line = state.queue(number)
        times = [getattr(p, at) for p in line]
        assert times == sorted(times), f"{number} order disagrees with when it was granted"
    for poll in state.polls.values():
        assert all(0 <= v < len(poll.options) for v in poll.votes.values())
        votes = list(poll.votes.values())
        assert poll.results() == [votes.count(i) for i in range(len(poll.options))]
    check_indices(state)


def check_indices(state: RoomState) -> None:
    """The roster's indices, kept up to date change by change, agree with a full scan."""
    people = state.people
    scan = {
        Index.STAGE: {p.participant_id for p in people.values() if p.on_stage},
        Index.QUEUED: {p.participant_id for p in people.values() if p.status is StageStatus.QUEUED},
        Index.HANDS: {p.participant_id for p in people.values() if p.hand is not None},
        Index.REQUESTS: {
            p.participant_id for p in people.values() if p.status is StageStatus.REQUESTED
        },
        Index.INVITED: {
            p.participant_id for p in people.values() if p.status is StageStatus.INVITED
        },
        Index.FULL_VIEW: {
            p.participant_id for p in people.values()
            if p.is_moderator or p.status is not StageStatus.VIEWER
        },
        Index.HOSTS: {p.participant_id for p in people.values() if p.role is Role.HOST},
        Index.MODERATORS: {p.participant_id for p in people.values() if p.role is Role.MODERATOR},
    }  # fmt: skip
    for name, expected in scan.items():
        assert set(people.index(name)) == expected, f"index {name} disagrees with a scan"
        assert people.count(name) == len(expected)
    arrival = [p.participant_id for p in people.in_arrival_order()]
    assert sorted(arrival) == sorted(people) and len(set(arrival)) == len(arrival)
    for identity in {p.identity for p in people.values()}:
        sessions = [p.participant_id for p in people.values() if p.identity == identity]
        assert sorted(people.sessions(identity)) == sorted(sessions)


def check_step(
    before: RoomState,
    after: RoomState,
    actor: ParticipantId | None,
    command: c.Command,
    events: tuple[ev.StageEvent, ...],
    now: float,
) -> None:
    assert after.next_seq >= before.next_seq
    assert before.banned <= after.banned
    for pid, new in after.people.items():
        old = before.people.get(pid)
        for number, _ in SEQ_FIELDS:
            value = getattr(new, number)
            if value is not None and (old is None or getattr(old, number) != value):
                assert value >= before.next_seq, f"{pid}.{number} reused an old number"
        if old is None:
            continue
        assert new.revision >= old.revision, f"{pid}'s revision went back"
        if new.status is not old.status:
            assert new.revision > old.revision, f"{pid} changed status without a revision"
        for which in DEVICES:
            prior, later = device(old, which), device(new, which)
            if prior is DeviceState.LOCKED and later is not DeviceState.LOCKED:
                assert command == c.Unlock(target=pid, device=which), f"{pid} lock lifted"
                assert later is not DeviceState.ON
            if prior is not DeviceState.ON and later is DeviceState.ON:
                assert actor == pid, f"{actor} turned {pid}'s {which} on"
                assert isinstance(command, c.JoinStage | c.AcceptInvitation | c.SetDevice)
    was_queued = {p.participant_id: p.queued for p in before.people.values() if p.queued}
    for waiting, place in was_queued.items():
        seated = after.people.get(waiting)
        if seated is not None and seated.on_stage:  # promoted: nobody ahead is still waiting
            ahead = [q for q, n in was_queued.items() if n < place and q in after.people]
            assert all(after.people[q].status is not StageStatus.QUEUED for q in ahead)
    if isinstance(command, c.Expire):
        due = [p for p in after.people.values() if p.invitation and p.invitation.expires_at <= now]
        assert not due, "an invitation outlived its deadline"
    if isinstance(command, c.MuteAll) and actor is not None and actor in after.people:
        assert device(after.people[actor], command.device) == device(
            before.people[actor], command.device
        ), "mute-all touched the actor"
    if isinstance(command, c.Vote):
        voter = before.people[actor] if actor else None
        old_votes, new_votes = (
            before.polls[command.poll_id].votes,
            after.polls[command.poll_id].votes,
        )
        assert voter is not None and voter.identity not in old_votes
        assert dict(new_votes) == {**old_votes, voter.identity: command.option}
    for event in events:
        match event:
            case ev.PersonChanged(participant_id=pid):
                assert pid in after.people
            case ev.LeftStage(target=pid, reason=ev.StageExitReason.STAGE_FULL):
                evicted = before.people[pid]
                assert evicted.role is Role.PARTICIPANT and not evicted.speaker
                seated = entrant(before, actor, command)
                assert (
                    before.policy.full_policy is FullStagePolicy.EVICT_SILENT or seated.is_moderator
                ), "evicted under a policy that does not evict, for a non-moderator"
            case ev.RequestDeclined(target=pid):
                assert before.people[pid].status is StageStatus.REQUESTED
                assert isinstance(command, c.DeclineRequest) and command.target == pid
            case ev.Kicked(target=pid):
                assert pid not in after.people
                assert before.people[pid].identity in after.banned
            case ev.HostLeft(participant_id=pid):
                assert pid not in after.people and pid in before.people
                assert isinstance(command, c.Exit | c.Kick)
                assert not [p for p in after.people.values() if p.role is Role.HOST]
                if before.people[pid].role is Role.MODERATOR:
                    assert not [p for p in after.people.values() if p.is_moderator]
                else:
                    assert before.people[pid].role is Role.HOST
            case ev.RoomEnded(by=by):
                assert by == actor and isinstance(command, c.EndRoom)
                assert after == before, "ending the room is decided here, done by the room"
            case _:
                pass
    for poll_id, poll in before.polls.items():
        if poll.closed:
            assert after.polls[poll_id] == poll
    check_host_left(before, after, events)


def check_host_left(
    before: RoomState, after: RoomState, events: tuple[ev.StageEvent, ...]
) -> None:
    """`host_left` exactly when a step leaves the room without a host: its last host left,
    or in a room without one its last moderator (and once per step)."""

    def roles(state: RoomState) -> set[Role]:
        return {p.role for p in state.people.values()}

    had, has = roles(before), roles(after)
    lost_host = Role.HOST in had and Role.HOST not in has
    lost_moderators = (
        Role.HOST not in had and Role.MODERATOR in had and not has & {Role.HOST, Role.MODERATOR}
    )
    announced = [e for e in events if isinstance(e, ev.HostLeft)]
    assert len(announced) == (1 if lost_host or lost_moderators else 0), (had, has, announced)


def entrant(before: RoomState, actor: ParticipantId | None, command: c.Command) -> Person:
    """Who is taking a seat: the actor, or for an Enter the newcomer."""
    if isinstance(command, c.Enter):
        return Person(participant_id=command.participant_id, identity=command.identity,
                      name=command.name, role=command.role, joined_at=0.0)  # fmt: skip
    assert actor is not None
    return before.people[actor]


def check_authority(
    before: RoomState, after: RoomState, actor: ParticipantId | None, command: c.Command
) -> None:
    """An accepted command was one its actor may give (the product rules, stated again)."""
    if actor is None:
        if isinstance(command, c.Enter) and command.on_stage:
            newcomer = entrant(before, actor, command)
            assert not command.viewer_only
            assert may_take_the_stage(newcomer, before)
        return
    me = before.people[actor]
    manages = me.role in (Role.HOST, Role.MODERATOR)
    match command:
        case c.LowerHand(target=target) if target not in (None, actor):
            assert manages
        case c.JoinStage():
            assert may_take_the_stage(me, before)
        case c.RequestStage() if after.people[actor].status is not me.status:
            assert me.role is Role.PARTICIPANT and not me.speaker and not me.viewer_only
            assert before.policy.mode is RoomMode.INTERACTIVE
            assert before.policy.stage_access is StageAccess.REQUEST
        case c.EndRoom():
            assert me.role is Role.HOST
        case c.SetRole() | c.SetSpeaker() | c.SetPermission() | c.Kick():
            subject = before.people[command.target]
            assert manages and command.target != actor
            assert subject.role is not Role.HOST or me.role is Role.HOST
            if isinstance(command, c.SetRole) and command.role is Role.HOST:
                assert me.role is Role.HOST
        case _ if type(command) in get_args(c.ModeratorCommand):
            assert manages
        case _:
            pass


def may_take_the_stage(who: Person, before: RoomState) -> bool:
    if who.viewer_only:
        return False
    if who.role in (Role.HOST, Role.MODERATOR) or who.speaker:
        return True
    policy = before.policy
    return policy.mode is RoomMode.INTERACTIVE and policy.stage_access is StageAccess.EVERYONE


StageRules.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # no "explain" phase: its line tracing makes a failing run take minutes
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
TestStageProperties = StageRules.TestCase
