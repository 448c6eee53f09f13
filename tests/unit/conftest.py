"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sfu.router import Router
from sfu.worker import Worker
from tests.fakes import EventRecorder


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    """A router on its own worker, closed (and its tasks awaited) after the test."""
    worker = Worker()
    yield worker.create_router(on_event=EventRecorder())
    worker.close()
    await worker.wait_closed()
