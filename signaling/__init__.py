"""stage-sfu control plane: rooms, participants, roles, the stage and the wire protocol.

It decides who may publish and consume what; the media plane (``sfu``) executes it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("stage-sfu")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0"

__all__ = ["__version__"]
