"""The private aiohttp attribute signaling/web/ws.py clears when a WebSocket ends.

aiohttp's connection keeps the WebSocket's heartbeat callback after the socket closed
(`RequestHandler._data_received_cb`), and the WebSocket keeps the request, which keeps
the connection: a cycle that a worker freezing long-lived objects would never free.
"""

from __future__ import annotations

import inspect

from aiohttp import web_protocol, web_ws


def test_the_heartbeat_callback_is_where_we_clear_it() -> None:
    assert "_data_received_cb" in web_protocol.RequestHandler.__slots__
    assert "data_received_cb=" in inspect.getsource(web_ws.WebSocketResponse._post_start)
