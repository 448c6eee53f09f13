"""Integration tests use the shared ``server`` fixture (tests/conftest.py)."""

from __future__ import annotations

from tests.server import RunningServer

__all__ = ["RunningServer"]
