"""A publisher whose offer also carries a data channel (as a browser's does once the page
opens one) gets its media accepted and the data channel refused, not an error."""

from __future__ import annotations

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from signaling.client import StageClient
from signaling.roles import Role
from tests.media import ToneTrack
from tests.server import Endpoint

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


async def test_an_offer_with_a_data_channel_publishes_its_media(any_server: Endpoint) -> None:
    client = await StageClient.connect(
        any_server.ws_url, any_server.token("hana", role=Role.HOST), entry="stage"
    )
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.createDataChannel("chat")
        pc.addTransceiver(ToneTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        assert "m=application" in pc.localDescription.sdp

        reply = await client.request({"type": "publish", "sdp": pc.localDescription.sdp})

        assert reply["type"] == "publish_answer", reply
        answer = reply["sdp"]
        assert "m=application 0 " in answer  # refused: no data channels here
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        # The room announces the microphone track it now forwards.
        await client.wait_for(lambda: len(client.you.get("tracks", [])) == 1)
    finally:
        await pc.close()
        await client.close()
