"""Binding inside the configured UDP port range."""

from __future__ import annotations

import gc
import socket

import pytest

from sfu.aiortc_bridge import Certificate, PeerConnection


async def test_gathering_binds_inside_the_range() -> None:
    peer = PeerConnection(Certificate())
    await peer.gather(["127.0.0.1"], port_min=45000, port_max=45010, announced_address=None,
                      egress_buffer_limit=1 << 16)  # fmt: skip
    try:
        assert [c.address for c in peer.local_candidates] == ["127.0.0.1"]
        assert 45000 <= peer.local_candidates[0].port <= 45010
    finally:
        await peer.close()


async def test_announced_address_replaces_the_bound_one_in_candidates() -> None:
    peer = PeerConnection(Certificate())
    await peer.gather(["127.0.0.1"], port_min=45020, port_max=45030,
                      announced_address="203.0.113.7", egress_buffer_limit=1 << 16)  # fmt: skip
    try:
        assert peer.local_candidates[0].address == "203.0.113.7"
    finally:
        await peer.close()


async def test_a_full_range_is_an_error_and_leaks_no_socket() -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    peer = PeerConnection(Certificate())
    try:
        with pytest.raises(OSError, match="no free UDP port"):
            await peer.gather(["127.0.0.1"], port_min=port, port_max=port,
                              announced_address=None, egress_buffer_limit=1 << 16)  # fmt: skip
        gc.collect()  # a leaked transport would warn here (warnings are errors)
    finally:
        taken.close()
        await peer.close()
