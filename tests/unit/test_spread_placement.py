"""Where a spread room puts each new subscribe connection (signaling/spread/home.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from signaling.spread.home import Link, RoomSpread


@dataclass
class FakeCluster:
    index: int = 0
    others: tuple[int, ...] = (1, 2)
    down: set[int] = field(default_factory=set)

    @property
    def peers(self) -> tuple[int, ...]:
        return tuple(i for i in self.others if i not in self.down)

    async def link(self, index: int) -> Link:
        raise AssertionError("placement alone never links")

    async def loads(self) -> Mapping[int, int]:
        raise AssertionError("placement is given the loads")

    def placed(self, index: int) -> None:
        pass


def spread(cluster: FakeCluster, spread_after: int) -> RoomSpread:
    return RoomSpread(
        name="demo", router=None, cluster=cluster, spread_after=spread_after,  # type: ignore[arg-type]
        pipe_address="127.0.0.1", post=lambda event: None,
    )  # fmt: skip


def place(room: RoomSpread, loads: dict[int, int], count: int, local: int = 0) -> list[int]:
    """Place `count` subscribers of one room in turn (`local` of it already at home, on
    worker 0), each adding to its worker's load."""
    chosen = []
    for _ in range(count):
        index = room.placement(local, loads)
        chosen.append(index)
        loads[index] += 1
        local += index == 0
    return chosen


def test_the_first_subscribers_stay_home_until_the_threshold() -> None:
    room = spread(FakeCluster(), 3)
    assert place(room, {0: 500, 1: 0, 2: 0}, 3) == [0, 0, 0]  # however busy home is


def test_zero_spreads_from_the_first_and_ties_stay_home() -> None:
    room = spread(FakeCluster(others=(1,)), 0)
    assert place(room, {0: 0, 1: 0}, 4) == [0, 1, 0, 1]


def test_a_growing_room_fills_the_lighter_workers_until_they_even_out() -> None:
    room = spread(FakeCluster(), 50)
    loads = {0: 0, 1: 0, 2: 0}
    chosen = place(room, loads, 200)
    assert chosen[:50] == [0] * 50
    # Past the threshold, a worker is chosen only when lighter than home by more than
    # a tenth of home's load: the loads end up within that margin of each other.
    assert max(loads.values()) - min(loads.values()) <= loads[0] // 10 + 1
    assert sum(loads.values()) == 200


def test_rooms_that_already_balance_the_workers_are_not_piped_across() -> None:
    # Two busy workers, one room each, about even: a small difference keeps viewers home.
    room = spread(FakeCluster(others=(1,)), 50)
    assert place(room, {0: 103, 1: 100}, 1, local=60) == [0]
    assert place(room, {0: 103, 1: 90}, 1, local=60) == [1]  # a real difference spreads


@pytest.mark.parametrize("down", [{1}, {1, 2}])
def test_unreachable_workers_are_left_out(down: set[int]) -> None:
    room = spread(FakeCluster(down=down), 0)
    chosen = place(room, {0: 10, 1: 0, 2: 0}, 6)
    assert not set(chosen) & down
