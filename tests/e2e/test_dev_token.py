"""``POST /api/dev-token``: the development-mode token the join screen asks for."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest
from playwright.async_api import expect

from signaling.auth import verify_token
from signaling.roles import Role
from tests.e2e.conftest import OpenPage
from tests.server import RunningServer, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


async def post(
    server: RunningServer,
    body: Any,
    *,
    content_type: str = "application/json",
    raw: bytes | None = None,
) -> tuple[int, dict[str, Any]]:
    import json

    data = raw if raw is not None else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{server.http_url}/api/dev-token", data=data, headers={"Content-Type": content_type}
        ) as response,
    ):
        payload = await response.json(content_type=None) if response.status != 404 else {}
        return response.status, payload


@pytest.mark.timeout(30)
async def test_a_dev_token_admits_an_identity_of_the_name_in_the_room_with_the_role() -> None:
    async with running_server() as server:
        status, first = await post(
            server, {"room": " town hall ", "name": "Ada  Lovelace", "role": "moderator"}
        )
        assert status == 200, first
        grants = verify_token(
            server.settings.auth.secret, first["token"], room="town hall", now=time.time()
        )
        assert grants.name == "Ada Lovelace"
        assert grants.role is Role.MODERATOR
        assert grants.identity == first["identity"]
        assert grants.identity.startswith("dev-")
        assert first["expires_in"] == server.settings.auth.token_ttl

        status, second = await post(server, {"room": "town hall", "name": "Ada Lovelace"})
        assert status == 200
        assert second["role"] == "participant"  # the default
        # The same name in the same room is the same person: a kick (a ban of the
        # identity) sticks when they come back from the join screen.
        assert second["identity"] == first["identity"]
        _, other_name = await post(server, {"room": "town hall", "name": "Grace Hopper"})
        _, other_room = await post(server, {"room": "lobby", "name": "Ada Lovelace"})
        assert len({first["identity"], other_name["identity"], other_room["identity"]}) == 3


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("overrides", "minted"),
    [
        pytest.param({"server.host": "0.0.0.0"}, False, id="public-host"),
        pytest.param(
            {"server.host": "0.0.0.0", "auth.insecure_dev_tokens_beyond_loopback": True},
            True,
            id="public-host-explicitly-allowed",
        ),
        pytest.param({}, True, id="loopback"),
    ],
)
async def test_dev_tokens_are_minted_only_on_loopback_unless_explicitly_allowed(
    overrides: dict[str, object], minted: bool
) -> None:
    # The test server binds 127.0.0.1 whatever server.host says: only the policy differs.
    async with running_server(overrides) as server:
        status, _ = await post(server, {"room": "demo", "name": "Ada"})

    assert status == (200 if minted else 404)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"room": "demo", "name": "Ada", "role": "owner"}, 400, "role"),
        ({"room": "demo", "name": "   "}, 400, "name"),
        ({"room": "", "name": "Ada"}, 400, "room"),
        ({"room": "demo", "name": "A" * 65}, 400, "name"),
        ({"room": "demo", "name": "Ada\u0007"}, 400, "name"),
        ({"room": "demo"}, 400, "name"),
        ({"room": "demo", "name": "Ada", "identity": "root"}, 400, "identity"),
        ([1, 2], 400, ""),
    ],
)
async def test_bad_requests_are_refused_naming_the_field(
    body: Any, status: int, field: str
) -> None:
    async with running_server() as server:
        got, payload = await post(server, body)
        assert got == status, payload
        assert field in payload["error"]


@pytest.mark.timeout(30)
async def test_only_json_of_a_sensible_size_is_read() -> None:
    async with running_server() as server:
        status, payload = await post(
            server, None, content_type="text/plain", raw=b'{"room": "demo", "name": "Ada"}'
        )
        assert status == 415, payload
        status, payload = await post(server, None, raw=b"{" + b" " * 5000 + b"}")
        assert status == 413, payload
        status, payload = await post(server, None, raw=b"not json")
        assert status == 400, payload


@pytest.mark.timeout(30)
async def test_without_dev_tokens_the_endpoint_does_not_exist() -> None:
    async with running_server({"auth.dev_tokens": False}) as server:
        status, _ = await post(server, {"room": "demo", "name": "Ada"})
        assert status == 404


@pytest.fixture
def server_overrides() -> Mapping[str, object]:
    return {"auth.dev_tokens": False}


@pytest.mark.timeout(60)
async def test_the_join_screen_asks_for_a_token_when_the_server_mints_none(
    open_page: OpenPage,
) -> None:
    page = (await open_page("/")).page
    await page.locator("#name").fill("Ada")
    await page.locator('[data-action="join-viewer"]').click()
    await expect(page.locator("#join-error")).to_contain_text("Paste a join token")
    await expect(page.locator("#token")).to_be_visible()
    await expect(page.locator("#mode-token")).to_be_checked()
