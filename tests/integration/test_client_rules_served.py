"""The web client's permission rules are served by the server, the same with one
worker or a front before several."""

from __future__ import annotations

import aiohttp

from signaling.client_rules import client_rules
from tests.server import Endpoint


async def test_the_permission_rules_are_served_beside_the_pages_modules(
    any_server: Endpoint,
) -> None:
    url = f"{any_server.http_url}/static/rules.json"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.json() == client_rules()
