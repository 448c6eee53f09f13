"""Who may do what: pure predicates over roles, labels, grants and room policy.

`authorize` answers for moderation commands (the actor's rank against the
target's); the stage machine uses the predicates for self-service commands,
whose answer also depends on the stage state.
"""

from __future__ import annotations

from enum import StrEnum
from typing import assert_never

from .roles import Role
from .stage.model import Permission, Person, RoomMode, RoomPolicy, StageAccess

_RANK = {Role.PARTICIPANT: 0, Role.MODERATOR: 1, Role.HOST: 2}


def is_moderator(person: Person) -> bool:
    return person.role in (Role.HOST, Role.MODERATOR)


def may_self_join(person: Person, policy: RoomPolicy) -> bool:
    """Take the stage without being invited."""
    if person.viewer_only:
        return False
    if is_moderator(person) or person.speaker:
        return True
    return policy.mode is RoomMode.INTERACTIVE and policy.stage_access is StageAccess.EVERYONE


def may_request(person: Person, policy: RoomPolicy) -> bool:
    """Ask a moderator for the stage (only meaningful when one cannot just join)."""
    return (
        not person.viewer_only
        and not may_self_join(person, policy)
        and policy.mode is RoomMode.INTERACTIVE
        and policy.stage_access is StageAccess.REQUEST
    )


def may_be_invited(person: Person) -> bool:
    return not person.viewer_only


def may_present(person: Person) -> bool:
    """Share content (a screen), on stage or not."""
    return is_moderator(person) or Permission.PRESENT in person.granted


def entries(person: Person, policy: RoomPolicy) -> list[str]:
    """How this person may enter: always as a viewer, on stage if they may self-join."""
    return ["viewer", "stage"] if may_self_join(person, policy) else ["viewer"]


def outranks_or_equals(actor: Person, target: Person) -> bool:
    return _RANK[actor.role] >= _RANK[target.role]


def may_manage_stage_of(actor: Person, target: Person) -> bool:
    """Stage and mute actions: any host or moderator, on anyone (hosts included)."""
    return is_moderator(actor)


def may_change_rights_of(actor: Person, target: Person) -> bool:
    """Roles, labels, permissions and removal from the room: never upward.

    A moderator cannot touch a host; nobody acts on themselves this way.
    """
    return (
        is_moderator(actor)
        and actor.participant_id != target.participant_id
        and outranks_or_equals(actor, target)
    )


def may_end_room(actor: Person) -> bool:
    """End the room for everyone: hosts only. Moderators run the stage on the host's
    behalf; closing the room for all is the owner's decision (as only a host can make
    someone a host)."""
    return actor.role is Role.HOST


def may_grant_role(actor: Person, role: Role) -> bool:
    """Only a host can make someone a host."""
    return is_moderator(actor) and _RANK[actor.role] >= _RANK[role]


class Sender(StrEnum):
    """Who may send a command, judged on the sender and the room policy alone; the
    stage machine then judges the command against the stage state and the target."""

    EVERYONE = "everyone"
    STAGE_TAKERS = "stage_takers"  # may_self_join
    REQUESTERS = "requesters"  # may_request
    MODERATORS = "moderators"
    HOSTS = "hosts"


def may_send(sender: Sender, person: Person, policy: RoomPolicy) -> bool:
    match sender:
        case Sender.EVERYONE:
            return True
        case Sender.STAGE_TAKERS:
            return may_self_join(person, policy)
        case Sender.REQUESTERS:
            return may_request(person, policy)
        case Sender.MODERATORS:
            return is_moderator(person)
        case Sender.HOSTS:  # ending the room is the one command for hosts alone
            return may_end_room(person)
        case _:
            assert_never(sender)
