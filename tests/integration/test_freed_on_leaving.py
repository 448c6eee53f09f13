"""Someone who leaves is freed at once: no reference cycle keeps their connection's
objects (ICE, DTLS, OpenSSL state) waiting for the cycle collector, which in a room of
thousands runs rarely and then pauses the worker for as long as it scans."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from sfu.webrtc_transport import WebRtcTransport
from signaling.client import StageClient
from signaling.roles import Role
from tests.integration.helpers import member, poll_until
from tests.media import ToneTrack
from tests.server import RunningServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _watch(server: RunningServer, client: StageClient) -> list[weakref.ref[object]]:
    """Weak references to a member's transports and their peers (none kept here)."""
    found = member(server, client.participant_id)
    refs: list[weakref.ref[object]] = []
    for transport in (found.send_transport, found.recv_transport):
        if transport is not None:
            assert isinstance(transport, WebRtcTransport)
            refs += [weakref.ref(transport), weakref.ref(transport._peer)]
    return refs


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def test_a_departed_members_transports_are_freed_without_the_cycle_collector(
    server: RunningServer, no_cycle_collector: None
) -> None:
    speaker = await StageClient.connect(
        server.ws_url, server.token("speaker", role=Role.HOST), entry="stage"
    )
    viewer = await StageClient.connect(server.ws_url, server.token("viewer"))
    try:
        await speaker.publish([ToneTrack()])
        await viewer.wait_for(lambda: len(viewer.tracks) == 1)
        gone = [ref for client in (speaker, viewer) for ref in _watch(server, client)]
        assert len(gone) == 6  # the speaker's two connections and the viewer's one, and peers
    finally:
        await viewer.leave()
        await viewer.close()
        await speaker.leave()
        await speaker.close()
    await poll_until(lambda: all(ref() is None for ref in gone), timeout=20)
