"""Small things that said the wrong thing, twice, or nothing: the room menu in one place,
a locked microphone named, no "Camera is off" while the camera starts, toolbar labels a
phone can see, and a tile's name and microphone at the top right, as the product
description places them."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from signaling.roles import Role
from tests.e2e.conftest import Join, OpenPage
from tests.e2e.room_page import (
    UI_TIMEOUT,
    choose,
    mic_indicator,
    open_people,
    row,
    tile,
    wait_for_preview,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

PHONE = {"width": 390, "height": 844}
LOCKED = "Microphone locked by a moderator"

WATCH_PREVIEW = """() => {
    // Record every moment a preview says "Camera is off" while its camera is wanted (the
    // on/off switch on, or no switch: the Settings dialog previews the camera).
    window.cameraOffShown = 0;
    const check = () => {
        for (const off of document.querySelectorAll(".preview-off")) {
            const panel = off.closest(".device-panel");
            const toggle = panel && panel.querySelector('[data-toggle="camera"]');
            const wanted = !toggle || toggle.checked;
            if (!off.hidden && wanted && off.textContent.includes("Camera is off")) {
                window.cameraOffShown += 1;
            }
        }
    };
    new MutationObserver(check).observe(document.body, {
        subtree: true, childList: true, attributes: true, characterData: true,
    });
}"""


@pytest.mark.timeout(90)
async def test_the_room_menu_is_offered_once(join: Join) -> None:
    host = await join("hana", "stage", role=Role.HOST)
    await open_people(host)
    manage = host.page.locator('button[aria-haspopup="menu"][title="Manage the room"]')
    await expect(manage).to_have_count(1)
    await expect(manage).to_have_attribute("data-action", "manage")


@pytest.mark.timeout(90)
async def test_a_locked_microphone_is_named_with_a_tooltip(join: Join) -> None:
    host = await join("hana", "stage", role=Role.HOST)
    await open_people(host)
    bob = await join("bob", "stage")
    bob_id = await bob.participant_id()
    await choose(
        host, row(host, "stage", bob_id).locator('[data-action="person-menu"]'), "lock-mic"
    )
    listed = row(host, "stage", bob_id).locator(".mic-indicator")
    await expect(listed).to_have_attribute("data-state", "locked", timeout=UI_TIMEOUT)
    await expect(listed).to_have_attribute("aria-label", LOCKED)
    await expect(listed).to_have_attribute("title", LOCKED)
    await expect(mic_indicator(host, bob_id)).to_have_attribute("aria-label", LOCKED)
    await expect(mic_indicator(host, bob_id)).to_have_attribute("title", LOCKED)


@pytest.mark.timeout(90)
async def test_a_tiles_name_and_microphone_sit_top_right(join: Join) -> None:
    host = await join("hana", "stage", role=Role.HOST)
    me = await host.participant_id()
    await expect(tile(host, me)).to_be_visible(timeout=UI_TIMEOUT)
    place = await tile(host, me).evaluate(
        """(t) => {
            const box = t.getBoundingClientRect();
            const label = t.querySelector(".tile-label").getBoundingClientRect();
            return { right: box.right - label.right, top: label.top - box.top,
                     rightHalf: label.left > box.left + box.width / 2 };
        }"""
    )
    assert 0 <= place["right"] <= 12 and 0 <= place["top"] <= 12, place
    assert place["rightHalf"], place


@pytest.mark.timeout(60)
async def test_the_device_preview_never_says_camera_is_off_while_it_starts(
    open_page: OpenPage,
) -> None:
    fay = await open_page("/", identity="fay")
    await fay.page.evaluate(WATCH_PREVIEW)
    await fay.page.locator('[data-action="open-devices"]').click()
    dialog = fay.page.locator("dialog#devices-dialog")
    await wait_for_preview(fay, dialog)
    assert await fay.page.evaluate("window.cameraOffShown") == 0


@pytest.mark.timeout(90)
async def test_the_phone_toolbar_shows_short_labels_and_names_every_button(
    join: Join,
) -> None:
    pia = await join("pia", "viewer", viewport=PHONE, query={"viewer_only": "1"})
    labels = await pia.page.evaluate(
        """() => [...document.querySelectorAll("#toolbar button")]
            .filter((b) => b.offsetParent)
            .map((b) => {
                const short = b.querySelector(".short");
                const box = short ? short.getBoundingClientRect() : { width: 0, height: 0 };
                return {
                    action: b.dataset.action,
                    short: short && box.width > 0 && box.height > 0 ? short.textContent : "",
                    name: b.getAttribute("aria-label") || b.querySelector(".label").textContent,
                    title: b.title,
                };
            })"""
    )
    assert {entry["action"] for entry in labels} >= {"toggle-hand", "toggle-people", "leave-room"}
    for entry in labels:
        assert entry["short"] and entry["name"] and entry["title"], entry
    hand = next(entry for entry in labels if entry["action"] == "toggle-hand")
    assert hand == {
        "action": "toggle-hand",
        "short": "Hand",
        "name": "Raise hand",
        "title": "Raise hand",
    }
