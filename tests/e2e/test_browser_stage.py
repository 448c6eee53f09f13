"""A stage publisher and a viewer in real headless Chromium, media through the SFU."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import Join

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MEDIA_TIMEOUT = 30.0
MORE_FRAMES = 15
"""Frames the viewer must decode after the first check: media keeps flowing, not a burst."""


@pytest.mark.timeout(90)
async def test_a_browser_viewer_decodes_video_and_audio_from_a_browser_on_stage(
    join: Join,
) -> None:
    publisher = await join("alice", "stage")
    viewer = await join("bob", "viewer")

    later = await viewer.wait_for_media_flowing(frames=MORE_FRAMES, timeout=MEDIA_TIMEOUT)
    assert later["width"] > 0, later
    assert later["videoPackets"] > 0 and later["audioPackets"] > 0, later

    await expect(viewer.page.locator("#stage .tile")).to_have_count(1)
    await expect(viewer.page.locator("#stage .tile figcaption")).to_contain_text("Alice")

    await publisher.screenshot("stage-publisher.png")
    await viewer.screenshot("viewer.png")
