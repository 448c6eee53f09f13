"""How soon the front starts a dead media worker again, how it reports the exit, and
where it places rooms while a worker is down (signaling/web/workers.py, front.py)."""

from __future__ import annotations

import signal

from signaling.web.front import Placement
from signaling.web.workers import (
    FIRST_RESTART_DELAY,
    MAX_RESTART_DELAY,
    STABLE_AFTER,
    describe_exit,
    restart_delay,
)


def delays_for_quick_exits(count: int) -> list[float]:
    delays: list[float] = []
    previous = None
    for _ in range(count):
        previous = restart_delay(previous, uptime=1.0)
        delays.append(previous)
    return delays


def test_the_first_restart_comes_soon() -> None:
    assert restart_delay(None, uptime=0.1) == FIRST_RESTART_DELAY == 0.5


def test_each_quick_exit_in_a_row_doubles_the_delay_up_to_the_cap() -> None:
    assert delays_for_quick_exits(9) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert MAX_RESTART_DELAY == 30.0


def test_a_worker_that_stayed_up_starts_over_at_the_first_delay() -> None:
    assert restart_delay(MAX_RESTART_DELAY, uptime=STABLE_AFTER) == FIRST_RESTART_DELAY
    assert restart_delay(MAX_RESTART_DELAY, uptime=STABLE_AFTER - 1) == MAX_RESTART_DELAY


def test_an_exit_names_its_code_or_its_signal() -> None:
    assert describe_exit(0) == "exited with code 0"
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert describe_exit(-99) == "killed by signal 99"


def placement(down: set[int]) -> Placement:
    return Placement(count=2, keep=60.0, alive=lambda index: index not in down)


def test_new_rooms_skip_a_worker_that_is_down() -> None:
    down = {0}
    rooms = placement(down)
    assert [rooms.enter(f"room{i}") for i in range(3)] == [1, 1, 1]


def test_a_room_whose_worker_is_down_moves_and_stays_moved() -> None:
    down: set[int] = set()
    rooms = placement(down)
    assert rooms.enter("a") == 0
    down.add(0)
    assert rooms.enter("a") == 1
    down.clear()  # back: the room stays where its people are now
    assert rooms.enter("a") == 1


def test_nobody_is_placed_while_no_worker_is_up() -> None:
    down = {0, 1}
    rooms = placement(down)
    assert rooms.enter("a") is None
    assert rooms.sessions == {} and rooms.rooms == {}  # nothing to `exit` later
    down.discard(1)
    assert rooms.enter("a") == 1
    assert rooms.sessions == {"a": 1}


def test_a_worker_that_missed_its_probe_keeps_its_rooms_but_gets_no_new_one() -> None:
    silent = {0}
    rooms = Placement(count=2, keep=60.0, answering=lambda index: index not in silent)
    rooms.rooms["held"] = 0

    assert rooms.enter("held") == 0  # its sessions may still be running there
    assert [rooms.enter(f"new{i}") for i in range(3)] == [1, 1, 1]


def test_when_no_worker_answers_new_rooms_still_go_to_one_that_is_up() -> None:
    rooms = Placement(count=2, keep=60.0, answering=lambda index: False)

    assert rooms.enter("a") == 0
