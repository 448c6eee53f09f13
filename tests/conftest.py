"""Shared test set-up: every async test runs on uvloop, as the server does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest
import uvloop

from tests.server import RunningServer, running_server


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], Any]]:
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    """A real server on loopback, in the test's (function-scoped) event loop."""
    async with running_server() as running:
        yield running
