"""How the tests find things in the web client: tiles, rows, toolbar buttons, menus.

Everything goes through the client's stable hooks (``data-*`` attributes and roles), so a
change of look does not break the tests.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Locator, expect

from tests.e2e.conftest import Participant, poll

UI_TIMEOUT = 10_000
"""Milliseconds for the UI to show what the server said (Playwright's unit)."""


def tile(who: Participant, participant_id: str, source: str = "camera") -> Locator:
    return who.page.locator(
        f'#stage .tile[data-participant="{participant_id}"][data-source="{source}"]'
    )


def mic_indicator(who: Participant, participant_id: str) -> Locator:
    return tile(who, participant_id).locator(".mic-indicator")


def tool(who: Participant, action: str) -> Locator:
    return who.page.locator(f'#toolbar [data-action="{action}"]')


def row(who: Participant, section: str, participant_id: str) -> Locator:
    return who.page.locator(
        f'#panel-people [data-section="{section}"] li[data-participant="{participant_id}"]'
    )


def section_rows(who: Participant, section: str) -> Locator:
    return who.page.locator(f'#panel-people [data-section="{section}"] li[data-participant]')


def toast(who: Participant, kind: str) -> Locator:
    return who.page.locator(f'#toasts .toast[data-kind="{kind}"]')


async def open_people(who: Participant) -> None:
    """Open the participants panel (if it is not open already)."""
    panel = who.page.locator("#panel-people")
    if not await panel.is_visible():
        await tool(who, "toggle-people").click()
    await expect(panel).to_be_visible(timeout=UI_TIMEOUT)


async def choose(who: Participant, opener: Locator, action: str) -> None:
    """Open a menu with ``opener`` and pick the item ``data-action=action``."""
    await opener.click()
    item = who.page.locator(f'.menu [role^="menuitem"][data-action="{action}"]')
    await expect(item).to_be_visible(timeout=UI_TIMEOUT)
    await item.click()


async def tile_video(tile_locator: Locator) -> dict[str, Any]:
    """The tile's <video>: its size and how many frames it has shown."""
    video: dict[str, Any] = await tile_locator.locator("video").evaluate(
        """(v) => ({
            width: v.videoWidth,
            height: v.videoHeight,
            frames: v.getVideoPlaybackQuality().totalVideoFrames,
            paused: v.paused,
        })"""
    )
    return video


async def wait_for_preview(who: Participant, dialog: Locator) -> None:
    """The dialog's camera preview shows frames and its mic meter has moved."""
    await expect(dialog.locator("video.preview-video")).to_be_visible(timeout=UI_TIMEOUT)
    await who.wait_for(
        """(id) => {
            const dialog = document.getElementById(id);
            const video = dialog.querySelector("video.preview-video");
            const meter = dialog.querySelector(".meter");
            return video.videoWidth > 0 && Number(meter.dataset.peak || 0) > 0;
        }""",
        await dialog.get_attribute("id"),
        timeout=UI_TIMEOUT / 1000,
        what="the camera preview and the microphone meter",
    )


LIVE_VIDEO_TIMEOUT = 20.0
MORE_FRAMES = 10


async def wait_for_live_video(who: Participant, participant_id: str) -> None:
    """The tile shows video that is decoding: a size, and frames that keep coming."""
    target = tile(who, participant_id)
    await expect(target).to_have_attribute("data-video", "on", timeout=LIVE_VIDEO_TIMEOUT * 1000)
    first = await poll(
        lambda: tile_video(target),
        lambda v: v["width"] > 0 and v["frames"] > 0,
        timeout=LIVE_VIDEO_TIMEOUT,
        what=f"{who.identity} decoding {participant_id}'s video",
        describe=who.describe,
    )
    await poll(
        lambda: tile_video(target),
        lambda v: v["frames"] >= first["frames"] + MORE_FRAMES,
        timeout=LIVE_VIDEO_TIMEOUT,
        what=f"{who.identity}: {MORE_FRAMES} more frames of {participant_id} after {first}",
        describe=who.describe,
    )


WATCH_DEVICE_PROMPTS = """() => {
    // Every camera/microphone request and every dialog opened, from now on.
    window.devicePrompts = { media: 0, dialogs: [] };
    const devices = navigator.mediaDevices;
    const getUserMedia = devices.getUserMedia.bind(devices);
    devices.getUserMedia = (constraints) => {
        window.devicePrompts.media += 1;
        return getUserMedia(constraints);
    };
    const showModal = HTMLDialogElement.prototype.showModal;
    HTMLDialogElement.prototype.showModal = function () {
        window.devicePrompts.dialogs.push(this.id);
        return showModal.call(this);
    };
}"""


async def watch_device_prompts(who: Participant) -> None:
    """Count from now on the page's camera/microphone requests and the dialogs it opens."""
    await who.page.evaluate(WATCH_DEVICE_PROMPTS)


async def device_prompts(who: Participant) -> dict[str, Any]:
    """``{"media": getUserMedia calls, "dialogs": [ids of dialogs opened]}``."""
    prompts: dict[str, Any] = await who.page.evaluate("window.devicePrompts")
    return prompts
