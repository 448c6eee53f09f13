"""The stage: who is on it, how people get there, and what moderators can do.

A pure state machine: `transition(state, actor, command, now)` returns the new
state and the domain events it caused, or raises `StageError` and changes
nothing. No I/O and no clock reads; the room actor applies the results.
"""

from .commands import Command
from .machine import StageError, transition
from .model import (
    DeviceState,
    FullStagePolicy,
    Person,
    RoomMode,
    RoomPolicy,
    RoomState,
    StageAccess,
    StageStatus,
)

__all__ = [
    "Command",
    "DeviceState",
    "FullStagePolicy",
    "Person",
    "RoomMode",
    "RoomPolicy",
    "RoomState",
    "StageAccess",
    "StageError",
    "StageStatus",
    "transition",
]
