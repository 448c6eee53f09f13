"""Microphones and cameras on stage: the owner's toggles, a moderator's mute
(soft) and lock (hard), mute-all, and what the SFU forwards in each state."""

from __future__ import annotations

from signaling.roles import Role
from signaling.stage.model import DeviceState
from tests.integration.stage_support import (
    becomes,
    forwarding,
    person,
    producer,
    refused,
    refused_unchanged,
    sees,
    stage_room,
    until_forwarding,
)
from tests.media import ToneTrack
from tests.raw_socket import RawSocket


async def test_the_owner_toggles_the_mic_and_the_sfu_pauses_and_resumes_it() -> None:
    async with stage_room() as (server, cast):
        speaker = await cast.join("sam", entry="stage", camera=False)
        viewer = await cast.join("vera")
        await speaker.publish([ToneTrack(0.2)])
        mic = producer(server, speaker, "microphone")
        await until_forwarding(server, viewer, mic)

        await speaker.command("set_device", device="mic", on=False)
        assert (mic.paused, forwarding(server, viewer, mic)) == (True, False)
        await sees(viewer, speaker, mic="off")
        await becomes(speaker, mic="off")

        await speaker.command("set_device", device="mic", on=True)
        assert not mic.paused and forwarding(server, viewer, mic)
        await sees(viewer, speaker, mic="on")

        await speaker.command("set_device", device="camera", on=True)
        await sees(viewer, speaker, camera="on", mic="on")


async def test_a_moderator_mute_is_visible_to_viewers_and_the_owner_may_unmute() -> None:
    async with stage_room() as (server, cast):
        mod = await cast.join("mo", role=Role.MODERATOR)
        speaker = await cast.join("sam", entry="stage", camera=False)
        viewer = await cast.join("vera")
        await speaker.publish([ToneTrack(0.2)])
        mic = producer(server, speaker, "microphone")
        await until_forwarding(server, viewer, mic)

        await mod.command("mute", target=speaker.participant_id, device="mic")
        assert (mic.paused, forwarding(server, viewer, mic)) == (True, False)
        forced = await speaker.wait_event(lambda e: e["type"] == "device_forced")
        assert forced["device"] == "mic" and forced["state"] == "muted"
        assert forced["by"] == mod.participant_id and forced["by_name"] == "Mo"
        await becomes(speaker, mic="muted")
        await sees(viewer, speaker, mic="muted")  # a plain viewer sees the third state too
        assert viewer.participants[speaker.participant_id]["role"] == "participant"

        await speaker.command("set_device", device="mic", on=True)
        assert not mic.paused and forwarding(server, viewer, mic)
        await sees(viewer, speaker, mic="on")


async def test_a_locked_mic_cannot_be_turned_on_until_unlocked_which_leaves_it_muted() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST)
        speaker = await cast.join("sam", entry="stage", camera=False)
        viewer = await cast.join("vera")
        await speaker.publish([ToneTrack(0.2)])
        mic = producer(server, speaker, "microphone")
        await until_forwarding(server, viewer, mic)

        await host.command("mute", target=speaker.participant_id, device="mic", lock=True)
        await sees(viewer, speaker, mic="locked")
        forced = await speaker.wait_event(lambda e: e["type"] == "device_forced")
        assert forced["state"] == "locked"
        assert mic.paused
        await refused_unchanged(server, speaker.command("set_device", device="mic", on=True))
        assert mic.paused and not forwarding(server, viewer, mic)
        # Turning it "off" does not lift a lock either.
        await speaker.command("set_device", device="mic", on=False)
        assert person(server, speaker).mic is DeviceState.LOCKED

        await host.command("unlock", target=speaker.participant_id, device="mic")
        await speaker.wait_event(lambda e: e["type"] == "device_forced" and e["state"] == "muted")
        await sees(viewer, speaker, mic="muted")  # unlocking never turns it on
        assert person(server, speaker).mic is DeviceState.MUTED and mic.paused
        await refused(host.command("unlock", target=speaker.participant_id, device="mic"),
                      "conflict")  # fmt: skip

        await speaker.command("set_device", device="mic", on=True)
        await sees(viewer, speaker, mic="on")
        assert not mic.paused


async def test_mute_all_and_cameras_off_spare_only_the_actor() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        mod = await cast.join("mo", role=Role.MODERATOR, entry="stage")
        first = await cast.join("fay", entry="stage")
        second = await cast.join("sid", entry="stage")
        viewer = await cast.join("vera")
        await first.publish([ToneTrack(0.2)])
        mic = producer(server, first, "microphone")
        await until_forwarding(server, viewer, mic)

        await mod.command("mute_all", device="mic")
        assert mic.paused and not forwarding(server, viewer, mic)
        for muted in (host, first, second):
            await sees(viewer, muted, mic="muted")
        assert person(server, mod).mic is DeviceState.ON
        await sees(viewer, mod, mic="on")

        await mod.command("mute_all", device="camera")
        for muted in (host, first, second):
            await sees(viewer, muted, camera="muted", mic="muted")
        assert person(server, mod).camera is DeviceState.ON

        # Soft: each may turn their own back on.
        await first.command("set_device", device="mic", on=True)
        await sees(viewer, first, mic="on")
        assert not mic.paused


async def test_nobody_can_turn_on_someone_elses_mic_and_participants_cannot_mute() -> None:
    async with stage_room() as (server, cast):
        host = await cast.join("hana", role=Role.HOST, entry="stage")
        speaker = await cast.join("sam", entry="stage", mic=False, camera=False)
        other = await cast.join("otto", entry="stage")
        await refused_unchanged(
            server, other.command("mute", target=speaker.participant_id, device="mic")
        )
        await refused_unchanged(
            server, other.command("mute", target=host.participant_id, device="mic", lock=True)
        )
        await refused_unchanged(server, other.command("mute_all", device="mic"))
        await host.command("mute", target=speaker.participant_id, device="camera", lock=True)
        await refused_unchanged(
            server, other.command("unlock", target=speaker.participant_id, device="camera")
        )

        # There is no command that turns another person's device on.
        raw = await RawSocket.open(server)
        try:
            joined = await raw.request(
                {"type": "join", "id": "j", "token": server.token("hana2", role=Role.HOST)}
            )
            assert joined["type"] == "joined"
            before = person(server, speaker)
            reply = await raw.request({
                "type": "set_device", "id": "x", "device": "mic", "on": True,
                "target": speaker.participant_id,
            })  # fmt: skip
            assert reply["type"] == "error" and reply["code"] == "bad_message"
            assert person(server, speaker) == before
            assert before.mic is DeviceState.OFF
        finally:
            await raw.close()
        await sees(host, speaker, mic="off", camera="locked")
