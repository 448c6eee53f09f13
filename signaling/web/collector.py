"""The cycle collector in a media worker: what outlives a full collection is frozen.

A full (generation 2) collection walks every tracked object in the process, and the
event loop, with every packet it forwards, waits meanwhile. A member costs about 200
tracked objects (its WebSocket's reader and writer, tasks and futures, its roster
entry), so at 5 000 members one full collection holds the loop for 0.4-0.6 s.

Everything a session, a room or a media connection holds is freed by reference
counting when it ends (tests/integration/test_no_cyclic_garbage.py checks the ways a
member leaves), so among objects that survived a full collection the collector has
nothing left to find. Right after each full collection the survivors are therefore
moved to the permanent generation (`gc.freeze`), and the next full collection scans
only what was created since. Frozen objects are still freed by reference counting the
moment they are no longer used; the price of an exception to the rule, a structure
that survives a full collection and later dies in a reference cycle, is that its
memory is never reclaimed. The soak benchmark's RSS trend guards against that, and
`server.gc_freeze = false` turns the policy off.
"""

from __future__ import annotations

import gc
from typing import Any

__all__ = ["freeze_survivors", "thaw"]

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
        gc.collect()  # start-up's garbage goes before the first freeze
        gc.freeze()
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
