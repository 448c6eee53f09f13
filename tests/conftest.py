"""Shared test set-up: every async test runs on uvloop, as the server does."""

from __future__ import annotations

import secrets
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import uvloop

from signaling.settings import env_var_name, load_settings
from tests.coturn import Coturn, running_coturn
from tests.integration.front import front
from tests.server import Endpoint, FrontServer, RunningServer, running_server


class _TestLoop(uvloop.Loop):
    def close(self) -> None:
        # uvloop warns about a handle left open from inside the C walk that closes
        # it; were the warning an error (filterwarnings = error), the walk would
        # stop before closing the handle and close() would wait for it forever.
        # Leaks are reported, not turned into a hang.
        with warnings.catch_warnings():
            warnings.simplefilter("always", ResourceWarning)
            super().close()


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], Any]]:
    return {"uvloop": _TestLoop}


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    """A real server on loopback, in the test's (function-scoped) event loop."""
    async with running_server() as running:
        yield running


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
async def any_server(request: pytest.FixtureRequest) -> AsyncIterator[Endpoint]:
    """The same protocol test against one worker (in-process) and against the default
    deployment, a front relaying to two worker processes: the answers must not differ.

    Settings other than the defaults come from the test's ``server_settings`` marker
    (``@pytest.mark.server_settings({"turn.secret": ...})``, dotted keys); the front's
    processes get them as STAGE_SFU_* variables, as an operator would set them."""
    marker = request.node.get_closest_marker("server_settings")
    overrides: dict[str, object] = dict(marker.args[0]) if marker is not None else {}
    if request.param == 1:
        async with running_server(overrides) as running:
            yield running
        return
    async with front(request.param, env=settings_env(overrides)) as (port, _):
        settings = load_settings(overrides={**overrides, "server.port": port}, env={})
        yield FrontServer(settings=settings, port=port, workers=request.param)


def settings_env(overrides: Mapping[str, object]) -> dict[str, str]:
    """Dotted-key settings as the environment variables that set them."""
    env: dict[str, str] = {}
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if isinstance(value, (list, tuple)):
            text = ",".join(str(item) for item in value)
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        env[env_var_name(section, key)] = text
    return env


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    """A real coturn on 127.0.0.1 (tests/coturn.py) checking TURN REST API credentials
    made with its own random shared secret; stopped by its pid at teardown."""
    with running_coturn(tmp_path, secret=secrets.token_urlsafe(24)) as running:
        yield running
