"""The postman: order kept, at most a batch per loop turn, replies after what they caused."""

from __future__ import annotations

import asyncio

import pytest

from signaling.postman import Postman

pytestmark = pytest.mark.timeout(10)


async def _drained(postman: Postman) -> None:
    for _ in range(10_000):
        if not len(postman):
            return
        await asyncio.sleep(0)
    raise AssertionError("the postman never drained")


async def test_a_few_messages_are_delivered_at_once() -> None:
    postman = Postman(batch=10)
    got: list[int] = []
    for n in range(5):
        postman.post(got.append, n)
    assert got == [0, 1, 2, 3, 4] and len(postman) == 0 and postman.deferred == 0


async def test_a_large_fan_out_is_spread_over_loop_turns_in_order() -> None:
    postman = Postman(batch=10)
    turns: list[list[int]] = [[]]
    ticking = True

    async def count_turns() -> None:  # marks each loop turn in the record
        while ticking:
            await asyncio.sleep(0)
            turns.append([])

    ticker = asyncio.get_running_loop().create_task(count_turns())
    for n in range(95):
        postman.post(lambda n: turns[-1].append(n), n)
    await _drained(postman)
    ticking = False
    await ticker
    delivered = [n for turn in turns for n in turn]
    assert delivered == list(range(95))
    assert max(len(turn) for turn in turns) <= 10
    assert postman.deferred == 85


async def test_after_runs_once_everything_posted_before_it_was_delivered() -> None:
    postman = Postman(batch=3)
    seen: list[str] = []
    for n in range(7):
        postman.post(seen.append, f"m{n}")
    postman.after(lambda: seen.append("reply"))
    postman.post(seen.append, "later")
    await _drained(postman)
    assert seen == [*(f"m{n}" for n in range(7)), "reply", "later"]


async def test_after_with_nothing_queued_runs_at_once() -> None:
    postman = Postman(batch=3)
    seen: list[str] = []
    postman.after(lambda: seen.append("reply"))
    assert seen == ["reply"]


async def test_close_delivers_what_is_queued() -> None:
    postman = Postman(batch=2)
    seen: list[int] = []
    for n in range(6):
        postman.post(seen.append, n)
    await postman.close()
    assert seen == list(range(6))


def test_a_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="batch"):
        Postman(batch=0)
