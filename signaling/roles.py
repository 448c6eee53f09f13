"""Roles a join token can grant. What each role may do is decided by the permissions module."""

from enum import StrEnum

__all__ = ["Role"]


class Role(StrEnum):
    HOST = "host"
    """Owns the room."""
    MODERATOR = "moderator"
    """Manages the stage and the participants on the host's behalf."""
    PARTICIPANT = "participant"
    """Attends the room; what they may publish is decided by the stage."""
