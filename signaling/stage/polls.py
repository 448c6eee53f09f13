"""Polls: a moderator creates and closes them, anyone in the room votes once per identity.

Kept apart from machine.py: polls share only the draft and the refusals with the stage.
"""

from __future__ import annotations

from dataclasses import replace

from . import commands as c
from . import events as ev
from .draft import Draft, Refusal, require
from .model import Person, Poll

MAX_POLL_OPTIONS = 10
MAX_POLL_TEXT = 300


def create_poll(d: Draft, actor: Person, command: c.CreatePoll) -> None:
    require(command.poll_id not in d.polls, Refusal.CONFLICT, "a poll with this id exists")
    require(0 < len(command.question) <= MAX_POLL_TEXT, Refusal.INVALID,
            f"the question must be 1..{MAX_POLL_TEXT} characters")  # fmt: skip
    require(2 <= len(command.options) <= MAX_POLL_OPTIONS, Refusal.INVALID,
            f"a poll needs 2..{MAX_POLL_OPTIONS} options")  # fmt: skip
    require(all(0 < len(o) <= MAX_POLL_TEXT for o in command.options), Refusal.INVALID,
            "options must be non-empty")  # fmt: skip
    d.polls[command.poll_id] = Poll(
        poll_id=command.poll_id,
        question=command.question,
        options=command.options,
        created_by=actor.participant_id,
    )
    d.emit(ev.PollChanged(command.poll_id))


def vote(d: Draft, person: Person, command: c.Vote) -> None:
    poll = d.polls.get(command.poll_id)
    require(poll is not None, Refusal.NOT_FOUND, f"no poll {command.poll_id}")
    assert poll is not None
    require(not poll.closed, Refusal.CONFLICT, "the poll is closed")
    require(0 <= command.option < len(poll.options), Refusal.INVALID, "no such option")
    require(person.identity not in poll.votes, Refusal.CONFLICT, "you already voted")
    d.polls[poll.poll_id] = poll.with_vote(person.identity, command.option)
    d.emit(ev.PollChanged(poll.poll_id))


def close_poll(d: Draft, poll_id: str) -> None:
    poll = d.polls.get(poll_id)
    require(poll is not None, Refusal.NOT_FOUND, f"no poll {poll_id}")
    assert poll is not None
    require(not poll.closed, Refusal.CONFLICT, "the poll is already closed")
    d.polls[poll_id] = replace(poll, closed=True)
    d.emit(ev.PollChanged(poll_id))
