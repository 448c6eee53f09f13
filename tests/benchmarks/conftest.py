"""Fixtures shared by the benchmark bots' tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sfu.aiortc_bridge import Certificate, PeerConnection


@pytest.fixture
async def bot_peer() -> AsyncIterator[PeerConnection]:
    """A gathered peer connection on loopback, as a bot's publish or subscribe side."""
    peer = PeerConnection(Certificate())
    await peer.gather(
        ["127.0.0.1"], port_min=52000, port_max=52999, announced_address=None,
        egress_buffer_limit=65536,
    )  # fmt: skip
    yield peer
    await peer.close()
