"""Media through a real coturn: a relay-only aiortc viewer (iceTransportPolicy "relay")
receives the stage with the credentials the server handed out, and one whose
credentials coturn refuses fails with a clear error instead of a silent hang."""

from __future__ import annotations

import asyncio

import pytest
from av import AudioFrame, VideoFrame

from signaling.client import MediaConnectionError
from signaling.roles import Role
from tests.coturn import Coturn
from tests.integration.helpers import receive, remote_track, wait_for_tracks
from tests.integration.stage_support import stage_room
from tests.media import PatternTrack, ToneTrack

WAIT = 20.0


def relay_settings(
    coturn: Coturn, *, transport: str = "udp", secret: str | None = None
) -> dict[str, object]:
    return {"turn.urls": [coturn.url(transport)], "turn.secret": secret or coturn.secret}


async def until_logged(coturn: Coturn, what: str, found: list[str], username: str) -> None:
    """coturn writes its log as it goes: wait (bounded) for `username` to appear."""
    async with asyncio.timeout(WAIT):
        while username not in found:
            await asyncio.sleep(0.1)
            found[:] = getattr(coturn, what)()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_a_relay_only_viewer_receives_video_and_audio_through_coturn(
    coturn: Coturn, transport: str
) -> None:
    async with stage_room(relay_settings(coturn, transport=transport)) as (_, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        viewer = await cast.join("vera", relay=True)
        await host.publish([ToneTrack(amplitude=0.3), PatternTrack()])
        await wait_for_tracks(viewer, host.participant_id)

        video = await receive(remote_track(viewer, host.participant_id, "video").track, 10)
        audio = await receive(remote_track(viewer, host.participant_id, "audio").track, 10)

        assert isinstance(video[-1], VideoFrame) and video[-1].width == 320
        assert isinstance(audio[-1], AudioFrame)
        # Relay-only: the viewer had no other way to send or receive than coturn.
        ice = viewer.subscriber.getTransceivers()[0].receiver.transport.transport
        kinds = {candidate.type for candidate in ice.iceGatherer.getLocalCandidates()}
        assert kinds == {"relay"}
        username = viewer.ice_servers[0].username
        assert username is not None and username.endswith(":vera")
        await until_logged(coturn, "allocations", [], username)
        assert (coturn.tcp_clients() > 0) == (transport == "tcp")
        assert viewer.media_error is None


async def test_refused_credentials_end_in_a_clear_error_not_a_silent_hang(
    coturn: Coturn,
) -> None:
    wrong = {**relay_settings(coturn, secret="not-the-secret-coturn-knows")}
    async with stage_room(wrong) as (_, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        await host.publish([ToneTrack(amplitude=0.3)])
        viewer = await cast.join("vera", relay=True)

        await viewer.wait_for(lambda: viewer.media_error is not None, timeout=WAIT)

        message = str(viewer.media_error)
        assert message.startswith("the subscribe connection has no ICE candidate")
        assert f"the TURN server ({coturn.url('udp')}) gave no relay candidate" in message
        assert "refused the credentials" in message
        username = viewer.ice_servers[0].username
        assert username is not None
        await until_logged(coturn, "refusals", [], username)
        assert username not in coturn.allocations()

        # Publishing relay-only fails the same way, before anything reaches the server.
        speaker = await cast.join("sam", entry="stage", relay=True)
        with pytest.raises(MediaConnectionError, match=r"^the publish connection has no ICE"):
            await speaker.publish([ToneTrack(amplitude=0.3)])
