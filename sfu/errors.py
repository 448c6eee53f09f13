"""Exceptions raised by the media core's public API.

Packet-level problems never raise: bad packets are dropped and counted.
"""


class SfuError(Exception):
    """Base of every error the media core raises on purpose."""


class InvalidStateError(SfuError):
    """An object was used after close() or in the wrong phase."""


class NotFoundError(SfuError, LookupError):
    """A referenced producer, consumer or transport does not exist."""


class UnsupportedError(SfuError):
    """A codec or capability the SFU cannot forward."""


class NegotiationError(SfuError, ValueError):
    """An SDP offer or answer that cannot be accepted; the message says why."""
