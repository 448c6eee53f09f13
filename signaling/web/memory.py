"""Keeping CPython's cycle collector off the media path's back.

A full (generation 2) collection scans every tracked object and blocks the event
loop meanwhile, so every packet in flight waits as long: on the development VM about
16 ms for the ~74 000 objects the server's imports leave behind, and far more for
what sessions hold: a member costs about 200 tracked objects (its WebSocket's reader
and writer, tasks and futures, its roster entry), so at 5 000 members one full
collection held the loop for 0.4-0.6 s.

Start-up's objects live as long as the process, so once the server is up they are
frozen out of the collector's sight (`gc.freeze()`, as CPython's documentation
suggests for long-lived servers). With `server.gc_freeze` (on by default) a media
worker goes further and freezes what survives each full collection, so the next one
scans only what was created since. That is safe because everything a session, a room
or a media connection holds is freed by reference counting when it ends
(tests/integration/test_no_cyclic_garbage.py checks the ways a member leaves): among
objects that survived a full collection the collector has nothing left to find.
Frozen objects are still freed the moment they are no longer used; the price of an
exception to the rule, a structure that survives a full collection and later dies in
a reference cycle, is that its memory is never reclaimed. The soak benchmark's RSS
trend guards against that.
"""

from __future__ import annotations

import gc
from typing import Any

__all__ = ["freeze_startup_objects", "freeze_survivors", "thaw"]


def freeze_startup_objects() -> None:
    """Collect what start-up left behind, then exempt the survivors from every later scan."""
    gc.collect()
    gc.freeze()


_installed = 0  # several servers may share a process (tests): freeze while any runs


def _after_collection(phase: str, info: dict[str, Any]) -> None:
    # A full collection has just reclaimed every unreachable cycle: what is left in the
    # generations now is live, and nothing younger has been allocated yet.
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


def freeze_survivors() -> None:
    """From now on, freeze what survives each full collection."""
    global _installed
    if _installed == 0:
        gc.callbacks.append(_after_collection)
    _installed += 1


def thaw() -> None:
    """Undo `freeze_survivors` (the last server of the process stopping): frozen objects
    return to the oldest generation, where the collector sees them again."""
    global _installed
    _installed -= 1
    if _installed == 0:
        gc.callbacks.remove(_after_collection)
        gc.unfreeze()
