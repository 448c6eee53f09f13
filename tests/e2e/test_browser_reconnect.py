"""A dropped connection resumes in place: same participant, same seat, media again."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from signaling.roles import Role
from tests.e2e.conftest import Join, Participant, poll
from tests.e2e.room_page import tile, tile_video

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MEDIA_TIMEOUT = 20.0


async def wait_for_frames(who: Participant, participant_id: str) -> None:
    target = tile(who, participant_id)
    await expect(target).to_have_attribute("data-video", "on", timeout=MEDIA_TIMEOUT * 1000)
    first = await tile_video(target)
    await poll(
        lambda: tile_video(target),
        lambda v: v["width"] > 0 and v["frames"] >= first["frames"] + 5,
        timeout=MEDIA_TIMEOUT,
        what=f"{who.identity} decoding {participant_id}",
        describe=who.describe,
    )


# Records every toast's kind as it appears: a toast is gone after a few seconds, or
# pushed out by newer ones, so a slow resume could otherwise be missed.
RECORD_TOASTS = """() => {
  window.toastKinds = [];
  new MutationObserver((changes) => changes.forEach((change) => change.addedNodes
    .forEach((node) => window.toastKinds.push(node.dataset.kind)))
  ).observe(document.getElementById("toasts"), { childList: true });
}"""


async def drop_and_resume(who: Participant) -> None:
    before = await who.participant_id()
    await who.page.evaluate(RECORD_TOASTS)
    await who.page.evaluate("window.stageClient.ws.close()")
    # A resume may need a retry or two (backing off from 250 ms) on a busy machine.
    await who.wait_for(
        "window.toastKinds.includes('reconnected')", timeout=MEDIA_TIMEOUT, what="reconnected"
    )
    state = await who.state()
    assert state["status"] == "joined", state
    assert state["participantId"] == before


@pytest.mark.timeout(90)
async def test_a_dropped_connection_resumes_with_the_same_seat_and_media(join: Join) -> None:
    host = await join("hana", "stage", role=Role.HOST)
    viewer = await join("vic", "viewer")
    host_id = await host.participant_id()
    await wait_for_frames(viewer, host_id)

    await drop_and_resume(viewer)  # a viewer: receives the stage again
    await wait_for_frames(viewer, host_id)

    await drop_and_resume(host)  # on stage: still on stage, and publishing again
    assert (await host.state())["stage"] == "on_stage"
    await host.wait_for(
        "(window.stageState.publishing || []).join() === 'camera,microphone'",
        timeout=MEDIA_TIMEOUT,
        what="publishing again",
    )
    await wait_for_frames(viewer, host_id)
    await expect(viewer.page.locator("#stage .tile")).to_have_count(1)
