"""Presenting (a screen share): hosts and moderators may, a participant only with
the present permission, on stage or not; losing it stops the share at once."""

from __future__ import annotations

from signaling.publishing import SHARED_CONTENT_PRIORITY
from signaling.roles import Role
from signaling.stage.model import StageStatus
from tests.integration.stage_support import (
    becomes,
    consumer,
    person,
    producer,
    refused,
    sees,
    sources,
    stage_room,
    until_forwarding,
)
from tests.media import PatternTrack, ToneTrack


async def test_hosts_and_moderators_present_without_being_on_stage() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST)
        mod = await cast.join("mo", role=Role.MODERATOR)
        viewer = await cast.join("vera")
        for presenter in (host, mod):
            assert presenter.you["can_present"] is True
            await presenter.publish([PatternTrack()], sources=["screen"])
            screen = producer(server, presenter, "screen")
            await until_forwarding(server, viewer, screen)
            # A viewer whose downlink is short keeps the shared content before cameras.
            watching = consumer(server, viewer, screen)
            assert watching is not None
            assert watching.demand().priority == SHARED_CONTENT_PRIORITY
            assert person(server, presenter).status is StageStatus.VIEWER
            # Presenting is not being on stage: no microphone.
            await refused(presenter.publish([ToneTrack(0.0)]), "forbidden")
            assert sources(server, presenter) == {"screen"}


async def test_a_participant_presents_only_while_permitted_and_revoking_stops_it() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST)
        presenter = await cast.join("pat")
        viewer = await cast.join("vera")
        assert presenter.you["can_present"] is False

        await refused(presenter.publish([PatternTrack()], sources=["screen"]), "forbidden")
        assert sources(server, presenter) == set()

        await host.command(
            "set_permission", target=presenter.participant_id, permission="present", granted=True
        )
        await becomes(presenter, can_present=True, status="viewer")
        await presenter.publish([PatternTrack()], sources=["screen"])
        screen = producer(server, presenter, "screen")
        await until_forwarding(server, viewer, screen)
        await viewer.wait_for(
            lambda: any(t.participant_id == presenter.participant_id for t in viewer.tracks)
        )

        await host.command(
            "set_permission", target=presenter.participant_id, permission="present", granted=False
        )
        assert screen.closed  # before the command was acknowledged
        assert consumer(server, viewer, screen) is None
        assert sources(server, presenter) == set()
        await becomes(presenter, can_present=False)
        await sees(host, presenter, can_present=False, tracks=[])
        await refused(presenter.publish([PatternTrack()], sources=["screen"]), "forbidden")
        assert sources(server, presenter) == set()
