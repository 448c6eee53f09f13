"""The worker's collector policy: survivors of a full collection are frozen, and a
thaw hands them back to the collector."""

from __future__ import annotations

import gc

from signaling.web import memory


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_survivors_of_a_full_collection_are_frozen_until_thawed() -> None:
    gc.unfreeze()
    memory.freeze_survivors()
    try:
        kept = _Cycle()
        gc.collect()
        assert gc.get_freeze_count() > 0
        assert not any(thing is kept for thing in gc.get_objects())  # out of every scan
    finally:
        memory.thaw()

    assert gc.get_freeze_count() == 0
    assert any(thing is kept for thing in gc.get_objects())


def test_garbage_made_after_the_freeze_is_still_collected() -> None:
    gc.unfreeze()
    memory.freeze_survivors()
    try:
        gc.collect()
        _Cycle()  # unreachable at once: a young cycle, no frozen object involved
        assert gc.collect() >= 1
    finally:
        memory.thaw()
