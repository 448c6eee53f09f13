"""Layout and accessibility: 1 to 25 tiles fit the stage, a phone-width viewer, and
every control reachable and named for keyboard and screen-reader users."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import expect

from signaling.roles import Role
from tests.e2e.conftest import Join, OpenPage, Participant, poll
from tests.e2e.room_page import UI_TIMEOUT, open_people, row, tool

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1280, "height": 720}

# Stage members the page is told about without a browser each: the layout only needs names
# and states (their tiles show initials, as for a camera that is off).
ADD_PEOPLE = """(count) => {
    const client = window.stageClient;
    for (const id of [...client.participants.keys()]) {
        if (id.startsWith("fake-")) client.participants.delete(id);
    }
    const names = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra",
                   "Barbara Liskov", "Donald Knuth", "Frances Allen", "Ken Thompson",
                   "Radia Perlman", "Tim Berners-Lee"];
    for (let i = 0; i < count; i++) {
        client.participants.set(`fake-${i}`, {
            participant_id: `fake-${i}`, identity: `fake-${i}`,
            name: `${names[i % names.length]} ${i + 1}`,
            role: "participant", status: "on_stage", on_stage: true, revision: 1, speaker: false,
            mic: ["on", "off", "muted", "locked"][i % 4], camera: "off", hand: null,
            can_present: false, viewer_only: false, connected: true, speaking: i === 0, tracks: [],
        });
    }
    client.emit("participants");
}"""

GEOMETRY = """() => {
    const stage = document.querySelector("#stage").getBoundingClientRect();
    const tiles = [...document.querySelectorAll("#stage .grid .tile")]
        .map((t) => t.getBoundingClientRect());
    const inside = tiles.every((r) => r.left >= stage.left - 1 && r.right <= stage.right + 1
        && r.top >= stage.top - 1 && r.bottom <= stage.bottom + 1);
    const overlap = tiles.some((a, i) => tiles.some((b, j) => j > i
        && a.left < b.right - 1 && b.left < a.right - 1
        && a.top < b.bottom - 1 && b.top < a.bottom - 1));
    const widths = new Set(tiles.map((r) => Math.round(r.width)));
    const area = tiles.reduce((sum, r) => sum + r.width * r.height, 0);
    return {
        count: tiles.length, inside, overlap, sizes: widths.size,
        ratio: tiles.length ? tiles[0].width / tiles[0].height : 0,
        coverage: area / (stage.width * stage.height),
    };
}"""


async def geometry(who: Participant) -> dict[str, Any]:
    result: dict[str, Any] = await who.page.evaluate(GEOMETRY)
    return result


def laid_out(count: int) -> Callable[[dict[str, Any]], bool]:
    """Whether a geometry has `count` tiles, all inside the stage and none overlapping."""
    return lambda g: g["count"] == count and g["inside"] and not g["overlap"]


@pytest.mark.timeout(90)
async def test_one_to_twenty_five_tiles_fill_the_stage_without_overlapping(join: Join) -> None:
    host = await join("hana", "stage", role=Role.HOST, viewport=WIDE)
    for total in (1, 2, 3, 4, 5, 6, 9, 12, 16, 20, 25):
        await host.page.evaluate(ADD_PEOPLE, total - 1)
        shape = await poll(
            lambda: geometry(host),
            laid_out(total),
            timeout=5,
            what=f"{total} tiles laid out inside the stage",
            describe=host.describe,
        )
        assert shape["sizes"] == 1, shape  # one size for all
        assert abs(shape["ratio"] - 16 / 9) < 0.05, shape
        assert shape["coverage"] > 0.3, shape  # the stage is used, not a corner of it
        if total == 6:
            await host.screenshot("stage-6.png", toasts=False)
    await host.screenshot("stage-25.png", toasts=False)
    speaking = host.page.locator('#stage .tile[data-participant="fake-0"]')
    await expect(speaking).to_have_attribute("data-speaking", "true")
    await expect(speaking.locator(".mic-indicator")).to_have_attribute("data-state", "speaking")
    locked = host.page.locator('#stage .tile[data-participant="fake-3"] .mic-indicator')
    await expect(locked).to_have_attribute("data-state", "locked")
    await expect(locked).to_have_attribute("aria-label", "Microphone locked by a moderator")


@pytest.mark.timeout(90)
async def test_a_phone_enters_as_a_viewer_and_the_room_fits_its_width(
    join: Join, open_page: OpenPage
) -> None:
    host = await join("hana", "stage", role=Role.HOST)
    phone = await open_page("/", viewport=PHONE, identity="pia")
    page = phone.page
    await expect(page.locator("#viewer-only")).to_be_checked()  # suggested on narrow screens
    await page.locator("#name").fill("Pia")
    await phone.screenshot("mobile-join.png")
    await page.locator('[data-action="join-viewer"]').click()
    state = await poll(
        phone.state,
        lambda s: s["status"] == "joined",
        timeout=20,
        what="the phone joining",
        describe=phone.describe,
    )
    assert state["stage"] == "viewer"
    host_id = await host.participant_id()
    await expect(page.locator(f'#stage .tile[data-participant="{host_id}"]')).to_have_attribute(
        "data-video", "on", timeout=20_000
    )
    # watch-only: no way onto the stage is offered, but hands and chat are
    await expect(tool(phone, "join-stage")).to_be_hidden()
    await expect(tool(phone, "request-stage")).to_be_hidden()
    await expect(tool(phone, "toggle-hand")).to_be_visible()
    fits = await page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            const tools = [...document.querySelectorAll("#toolbar button")]
                .filter((b) => b.offsetParent);
            return {
                scroll: document.documentElement.scrollWidth <= width,
                tools: tools.every((b) => b.getBoundingClientRect().right <= width + 1),
                big: tools.every((b) => b.getBoundingClientRect().width >= 44),
            };
        }"""
    )
    assert fits == {"scroll": True, "tools": True, "big": True}, fits
    await phone.screenshot("mobile-viewer.png", toasts=False)
    await open_people(phone)
    await expect(row(phone, "viewers", await phone.participant_id())).to_be_visible()
    await expect(
        page.locator('[data-section="viewers"] [data-badge="viewer-only"]')
    ).to_be_visible()
    await phone.screenshot("mobile-participants.png", toasts=False)
    await page.locator('[data-action="close-panel"]').click()
    await expect(page.locator("#panel")).to_be_hidden()


UNNAMED = """() => [...document.querySelectorAll("button, input, select, textarea")]
    .filter((el) => el.offsetParent !== null && el.type !== "hidden")
    .filter((el) => {
        const named = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")
            || (el.id && document.querySelector(`label[for="${el.id}"]`)) || el.closest("label")
            || el.textContent.trim();
        return !named;
    })
    .map((el) => el.outerHTML.slice(0, 120))"""


@pytest.mark.timeout(90)
async def test_controls_are_named_and_reachable_with_the_keyboard(
    join: Join, open_page: OpenPage
) -> None:
    join_screen = await open_page("/")
    assert await join_screen.page.evaluate(UNNAMED) == []
    host = await join("hana", "stage", role=Role.HOST)
    await join("vic", "viewer")
    await open_people(host)
    assert await host.page.evaluate(UNNAMED) == []

    # Tab through the page: the toolbar's controls are all reachable.
    page = host.page
    await page.locator("#room-name").click()
    reached: list[str] = []
    for _ in range(60):
        await page.keyboard.press("Tab")
        action = await page.evaluate("document.activeElement?.dataset?.action ?? ''")
        if action:
            reached.append(action)
        if action == "toggle-hand":
            break
    assert "toggle-hand" in reached, reached
    assert {"toggle-mic", "toggle-camera", "leave-stage"} <= set(reached), reached
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none"), outline  # the focus is visible
    await page.keyboard.press("Space")
    await expect(tool(host, "toggle-hand")).to_have_attribute(
        "aria-pressed", "true", timeout=UI_TIMEOUT
    )

    # Menus open and move with the keyboard, and Escape gives the focus back.
    menu_button = page.locator('[data-section="viewers"] [data-action="person-menu"]').first
    await menu_button.focus()
    await page.keyboard.press("Enter")
    await expect(page.locator(".menu")).to_be_visible()
    first = await page.evaluate("document.activeElement.dataset.action")
    await page.keyboard.press("ArrowDown")
    second = await page.evaluate("document.activeElement.dataset.action")
    assert first == "invite" and second and second != first, (first, second)
    await page.keyboard.press("Escape")
    await expect(page.locator(".menu")).to_have_count(0)
    assert await page.evaluate("document.activeElement.dataset.action") == "person-menu"
