"""Membership: who is in a room, found by id, by resume token and by grace deadline,
and what each identity may still send.

Every lookup is indexed, so joining, resuming and leaving cost the same in a room of
ten or of thousands. Rate budgets are per identity, not per connection: two tabs of
one person share one (docs/operating.md, Limits), and the budget goes with the
identity's last connection here.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal

from .budget import Budget, TokenBucket
from .members import Member
from .room_commands import RateLimited, RoomOptions
from .stage.model import ParticipantId

Spending = Literal["publish", "command", "chat"]


class Membership:
    """The room's members and their indices. Used only from the room's task."""

    def __init__(self, options: RoomOptions) -> None:
        self._options = options  # the rate limits
        self._members: dict[ParticipantId, Member] = {}
        # Read only, for the room's parts that reach members (subscriptions, audiences).
        self.members: Mapping[ParticipantId, Member] = MappingProxyType(self._members)
        self._resumable: dict[bytes, Member] = {}  # sha-256 of a resume token -> member
        self._in_grace: dict[ParticipantId, float] = {}  # disconnected -> resume deadline
        self._connections_of: Counter[str] = Counter()  # identity -> members
        self._budgets: dict[str, Budget] = {}  # identity -> its rate limits here

    def add(self, member: Member) -> None:
        self._members[member.participant_id] = member
        self._resumable[_digest(member.resume_token)] = member
        self._connections_of[member.identity] += 1

    def resume(self, resume_token: str) -> Member | None:
        """The member this token resumes, now reconnected and given a new token (each is
        single use); None for an unknown or spent one. Looked up by digest: constant
        time in the room's size, and a lookup's timing says nothing about the tokens
        held (a client may send any string)."""
        member = self._resumable.pop(_digest(resume_token), None)
        if member is None or self._members.get(member.participant_id) is not member:
            return None
        member.grace_until = None
        self._in_grace.pop(member.participant_id, None)
        member.resume_token = secrets.token_urlsafe(24)
        self._resumable[_digest(member.resume_token)] = member
        return member

    def start_grace(self, member: Member, until: float) -> None:
        """The member's connection dropped: its place waits until `until`."""
        member.grace_until = self._in_grace[member.participant_id] = until

    def grace_expired(self, now: float) -> list[Member]:
        """Members whose grace period ran out (no longer waited for)."""
        expired = []
        for pid in [p for p, until in self._in_grace.items() if until <= now]:
            del self._in_grace[pid]
            member = self._members.get(pid)
            if member is not None and member.grace_until is not None:
                expired.append(member)
        return expired

    def spend(self, member: Member, kind: Spending, now: float) -> None:
        """Charge a command to its sender's identity; RateLimited (nothing else
        happens) when the identity is over its budget (docs/operating.md, Limits)."""
        budget = self._budgets.get(member.identity)
        if budget is None:
            options = self._options
            budget = self._budgets[member.identity] = Budget(
                commands=TokenBucket(options.command_rate, options.command_burst),
                chat=TokenBucket(options.chat_rate, options.chat_burst),
            )
        wait = budget.commands.take(now)
        if wait > 0:
            raise RateLimited(f"too many commands; retry in {wait:.1f} s", wait)
        if kind == "chat":
            wait = budget.chat.take(now)
            if wait > 0:
                raise RateLimited(f"too many chat messages; retry in {wait:.1f} s", wait)

    def forget(self, member: Member) -> None:
        """Drop every index entry of a member who left."""
        pid = member.participant_id
        if self._members.pop(pid, None) is not None:
            self._connections_of[member.identity] -= 1
            if self._connections_of[member.identity] <= 0:
                del self._connections_of[member.identity]
                self._budgets.pop(member.identity, None)
        self._resumable.pop(_digest(member.resume_token), None)
        self._in_grace.pop(pid, None)

    def clear(self) -> None:
        for index in (self._members, self._resumable, self._in_grace, self._budgets):
            index.clear()
        self._connections_of.clear()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
