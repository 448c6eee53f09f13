"""Transport-wide congestion control with a real browser viewer: Chromium keeps the
extension in its answer, so everything the server sends it is numbered, and the
transport-wide feedback Chromium sends back reports on numbers the server sent. On
the native fan-out and on the pure-Python one."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from sfu.webrtc_transport import WebRtcTransport
from tests.e2e.conftest import Join, poll
from tests.integration.helpers import member
from tests.server import RunningServer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MEDIA_TIMEOUT = 30.0
FEEDBACKS = 20  # messages checked: a couple of seconds of Chromium's feedback


@pytest.fixture(params=["native", "python"])
def server_overrides(request: pytest.FixtureRequest) -> Mapping[str, object]:
    return {"media.native_fastpath": request.param == "native"}


@pytest.mark.timeout(90)
async def test_chromium_reports_on_the_transport_wide_numbers_the_server_sent(
    join: Join, server: RunningServer
) -> None:
    await join("alice", "stage")
    viewer = await join("bob", "viewer")
    viewer_id = await viewer.participant_id()
    await viewer.wait_for_stats(
        lambda s: s["framesDecoded"] > 0 and s["audioSamples"] > 0,
        timeout=MEDIA_TIMEOUT,
        what="viewer decoding video and receiving audio",
    )
    transport = member(server, viewer_id).recv_transport
    assert isinstance(transport, WebRtcTransport)
    assert transport.transport_cc  # Chromium's answer kept the extension

    # Look each message's numbers up as it arrives, as an estimator would: a message
    # reports from its base sequence number on, for its packet status count (draft
    # §3.1: the FCI's first 4 bytes); each of those packets was sent, received or not.
    reports: list[tuple[int, int, int]] = []  # (base, count, how many were sent)
    short: list[bytes] = []

    def on_feedback(fci: bytes, arrival: float) -> None:
        if len(fci) < 4:
            short.append(fci)
            return
        base, count = int.from_bytes(fci[0:2], "big"), int.from_bytes(fci[2:4], "big")
        sent = transport.sent_packets(base, count)
        reports.append((base, count, sum(1 for packet in sent if packet is not None)))

    async def reported() -> int:
        return len(reports)

    before = transport.transport_feedbacks_received
    transport.on_transport_feedback = on_feedback
    try:
        await poll(
            reported,
            lambda n: n >= FEEDBACKS,
            timeout=MEDIA_TIMEOUT,
            what=f"{FEEDBACKS} transport-wide feedback messages from Chromium",
        )
    finally:
        transport.on_transport_feedback = None

    assert not short, short
    assert transport.transport_feedbacks_received >= before + FEEDBACKS
    for base, count, sent in reports:
        assert count > 0, reports
        assert transport.sent_packet(base) is not None, (base, reports)
        assert sent == count, f"numbers reported but never sent: {reports}"
    # The reports move on with what is sent.
    assert len({base for base, _, _ in reports}) > 1, reports
