"""Where a spread room puts each new subscribe connection (signaling/spread/home.py)."""

from __future__ import annotations

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


def spread(cluster: FakeCluster, spread_after: int) -> RoomSpread:
    return RoomSpread(
        name="demo", router=None, cluster=cluster, spread_after=spread_after,  # type: ignore[arg-type]
        pipe_address="127.0.0.1", post=lambda event: None,
    )  # fmt: skip


def place(room: RoomSpread, cluster: FakeCluster, count: int) -> list[int]:
    """Place `count` subscribers in turn, counting each where it went."""
    local, remote = 0, {i: 0 for i in cluster.others}
    chosen = []
    for _ in range(count):
        index = room.placement(local)
        chosen.append(index)
        if index == cluster.index:
            local += 1
        else:
            remote[index] += 1
            room._edges[index] = type("Edge", (), {"subscribers": remote[index]})()  # type: ignore[assignment]
    return chosen


def test_the_first_subscribers_stay_home_until_the_threshold() -> None:
    cluster = FakeCluster()
    assert place(spread(cluster, 3), cluster, 3) == [0, 0, 0]


def test_after_the_threshold_each_goes_where_the_room_has_fewest() -> None:
    cluster = FakeCluster()
    chosen = place(spread(cluster, 2), cluster, 8)
    assert chosen[:2] == [0, 0]
    assert chosen[2:6] == [1, 2, 1, 2]  # the others catch up with home's two
    assert sorted(chosen[6:]) == [0, 1]  # then all take turns, home first on ties
    assert {i: chosen.count(i) for i in (0, 1, 2)} == {0: 3, 1: 3, 2: 2}


def test_zero_spreads_from_the_first_and_ties_stay_home() -> None:
    cluster = FakeCluster(others=(1,))
    assert place(spread(cluster, 0), cluster, 4) == [0, 1, 0, 1]


@pytest.mark.parametrize("down", [{1}, {1, 2}])
def test_unreachable_workers_are_left_out(down: set[int]) -> None:
    cluster = FakeCluster(down=down)
    chosen = place(spread(cluster, 0), cluster, 6)
    assert not set(chosen) & down
