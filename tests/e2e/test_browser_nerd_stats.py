"""Stats for nerds: a switch in Settings, off by default and remembered in the browser,
that puts on every received video tile what the browser decodes and what the server
forwards and why; while it is off the page asks the server nothing."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import Join, Participant
from tests.e2e.room_page import UI_TIMEOUT, tile, tool
from tests.server import RunningServer

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MEDIA_TIMEOUT = 30.0
SMALL_CAMERA = {"camera_height": "360"}  # two encodings (h, f): light on a small machine
# The overlay on a participant's tile, once it shows a decoded picture, frame rate and
# received bitrate: its text and data-* values.
_MEASURED_OVERLAY = """(id) => {
  const box = document.querySelector(`#stage .tile[data-participant="${id}"] .nerd-stats`);
  if (!box || !(Number(box.dataset.width) > 0 && Number(box.dataset.fps) > 0
                && Number(box.dataset.bitrate) > 0)) return null;
  return { text: box.textContent, ...box.dataset };
}"""


def _stats_requests(server: RunningServer) -> int:
    return server.registry.stats.messages_received["get_media_stats"]


async def _switch(viewer: Participant, on: bool) -> None:
    """Open Settings, set the switch, close."""
    page = viewer.page
    await tool(viewer, "open-settings").click()
    dialog = page.locator("dialog#devices-dialog")
    switch = dialog.locator('[data-toggle="nerd-stats"]')
    await expect(switch).to_be_checked(checked=not on, timeout=UI_TIMEOUT)
    await dialog.locator('label[for="settings-nerd-stats"]').click()
    await expect(switch).to_be_checked(checked=on)
    await dialog.locator('[data-action="devices-done"]').click()
    await expect(dialog).to_be_hidden()


async def _more_frames(viewer: Participant, count: int = 30) -> None:
    """A second or so of video: a window in which a page that polls would have polled."""
    frames = (await viewer.stats())["framesDecoded"]
    await viewer.wait_for_stats(
        lambda s: s["framesDecoded"] > frames + count,
        timeout=MEDIA_TIMEOUT,
        what=f"{count} more frames decoded",
    )


@pytest.mark.timeout(120)
async def test_the_overlay_shows_real_numbers_while_on_and_nothing_is_polled_while_off(
    join: Join, server: RunningServer
) -> None:
    publisher = await join("alice", "stage", query=SMALL_CAMERA)
    viewer = await join("bob", "viewer")
    publisher_id = await publisher.participant_id()
    await viewer.wait_for_stats(
        lambda s: s["framesDecoded"] > 0, timeout=MEDIA_TIMEOUT, what="bob decoding video"
    )
    camera = tile(viewer, publisher_id)

    # Off by default: no overlay, and no request for it.
    await _more_frames(viewer)
    await expect(camera.locator(".nerd-stats")).to_have_count(0)
    assert _stats_requests(server) == 0

    await _switch(viewer, on=True)

    box: dict[str, Any] = await viewer.wait_for(
        _MEASURED_OVERLAY,
        publisher_id,
        timeout=MEDIA_TIMEOUT,
        what="the overlay on alice's tile with a decoded size, frame rate and bitrate",
    )
    assert box["layer"] in ("h", "f") and box["target"] in ("h", "f")
    assert f"layer {box['layer']} of h/f" in box["text"]
    assert f"{box['width']}\N{MULTIPLICATION SIGN}{box['height']}" in box["text"]
    assert "limited by" in box["text"] and "downlink" in box["text"]
    await viewer.screenshot("nerd-stats.png", toasts=False)
    assert await viewer.page.evaluate("localStorage.getItem('stage-sfu.nerd-stats')") == "on"
    asked = _stats_requests(server)
    assert asked > 0

    await _switch(viewer, on=False)
    await expect(camera.locator(".nerd-stats")).to_have_count(0)
    stopped_at = _stats_requests(server)
    await _more_frames(viewer)
    assert _stats_requests(server) == stopped_at
    assert await viewer.page.evaluate("localStorage.getItem('stage-sfu.nerd-stats')") == "off"
