"""The per-client outbox: bounded, and state updates coalesce (latest state wins)."""

from __future__ import annotations

import asyncio

from signaling.outbox import Outbox
from tests.fakes import FakeClock

WINDOW = 0.05


def outbox(limit: int = 8, clock: FakeClock | None = None) -> Outbox:
    clock = clock or FakeClock()
    return Outbox(limit=limit, window=WINDOW, now=clock.now)


async def drain(box: Outbox) -> list[str]:
    frames = []
    while len(box):
        frame = await asyncio.wait_for(box.get(), 5)
        assert frame is not None
        frames.append(frame)
    return frames


async def test_an_update_replaces_the_unsent_one_for_its_subject_in_place() -> None:
    box = outbox()
    box.put("a1", key="a")
    box.put("x")
    box.put("a2", key="a")
    box.put("b1", key="b")

    assert await drain(box) == ["a2", "x", "b1"]
    assert box.coalesced == 1


async def test_updates_within_the_window_after_a_send_are_held_and_the_latest_follows() -> None:
    clock = FakeClock()
    box = outbox(clock=clock)
    box.put("a1", key="a")
    assert await box.get() == "a1"
    for n in range(2, 50):
        box.put(f"a{n}", key="a")

    assert len(box) == 1
    clock.advance(2 * WINDOW)  # the timer fires in real time; the window is read off the clock
    assert await asyncio.wait_for(box.get(), 5) == "a49"
    assert box.coalesced == 47


async def test_a_message_without_a_key_releases_held_updates_before_itself() -> None:
    box = outbox()
    box.put("a1", key="a")
    assert await box.get() == "a1"
    box.put("a2", key="a")  # held: a1 was just sent
    box.put("left")

    assert await drain(box) == ["a2", "left"]


async def test_a_full_outbox_refuses_and_finishing_with_discard_drops_the_backlog() -> None:
    box = outbox(limit=3)
    assert all(box.put(f"m{n}") for n in range(3))
    assert not box.put("one too many")
    assert box.put("k1", key="k") is False  # a new subject needs room too

    box.finish(discard=True)

    assert await box.get() is None


async def test_finishing_sends_what_is_queued_then_ends() -> None:
    box = outbox()
    box.put("ack")
    box.put("bye")
    box.finish()
    box.put("too late")

    assert [await box.get(), await box.get(), await box.get()] == ["ack", "bye", None]


async def test_many_subjects_flooding_fill_at_most_one_slot_each() -> None:
    box = outbox(limit=16)
    for n in range(10_000):
        assert box.put(f"update {n}", key=n % 10)

    assert len(box) == 10


async def test_while_an_update_is_held_later_ones_wait_behind_it_in_order() -> None:
    clock = FakeClock()
    box = outbox(clock=clock)
    box.put("hand raised", key="alice")
    assert await box.get() == "hand raised"
    box.put("hand lowered", key="alice")  # held: its window is open
    box.put("queues without alice", key="queues")  # must not overtake alice's record

    assert len(box) == 2
    clock.advance(2 * WINDOW)
    assert [await asyncio.wait_for(box.get(), 5) for _ in range(2)] == [
        "hand lowered",
        "queues without alice",
    ]
