"""Host tools in an open room: bulk mute, locks, roles and rights, stage access, shared
content as the main tile, chat, a quick poll, and removing someone from the room."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from signaling.roles import Role
from tests.e2e.conftest import Join
from tests.e2e.room_page import (
    UI_TIMEOUT,
    choose,
    open_people,
    row,
    tile,
    tile_video,
    toast,
    tool,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MEDIA_TIMEOUT = 20_000


@pytest.mark.timeout(120)
async def test_host_tools_chat_poll_content_and_kick(join: Join) -> None:
    host = await join("hana", "stage", role=Role.HOST)
    bob = await join("bob", "viewer")
    bob_id = await bob.participant_id()
    host_id = await host.participant_id()

    # Everyone may take the stage here: "Join stage" asks for the device check first.
    await tool(bob, "join-stage").click()
    ready = bob.page.locator("dialog#devices-dialog")
    await expect(ready).to_be_visible()
    await ready.locator('[data-action="confirm-join-stage"]').click()
    await expect(tile(host, bob_id)).to_have_attribute("data-video", "on", timeout=MEDIA_TIMEOUT)

    # Bulk: mute all microphones, then all cameras.
    manage = tool(host, "manage")
    await choose(host, manage, "mute-all")
    await expect(tool(bob, "toggle-mic")).to_have_attribute(
        "data-state", "muted", timeout=UI_TIMEOUT
    )
    await expect(toast(bob, "device-forced")).to_be_visible()
    await choose(host, manage, "cameras-off")
    await expect(tile(host, bob_id)).to_have_attribute("data-camera", "muted", timeout=UI_TIMEOUT)
    await expect(tile(host, bob_id).locator(".initials")).to_be_visible()
    await expect(tile(host, host_id)).to_have_attribute("data-camera", "on")  # except yours

    # A muted microphone can be turned back on; a locked one cannot until unlocked.
    await tool(bob, "toggle-mic").click()
    await expect(tool(bob, "toggle-mic")).to_have_attribute("data-state", "on", timeout=UI_TIMEOUT)
    await open_people(host)
    person_menu = row(host, "stage", bob_id).locator('[data-action="person-menu"]')
    await choose(host, person_menu, "lock-mic")
    await expect(tool(bob, "toggle-mic")).to_have_attribute(
        "data-state", "locked", timeout=UI_TIMEOUT
    )
    await expect(tool(bob, "toggle-mic")).to_have_attribute("aria-disabled", "true")
    await tool(bob, "toggle-mic").focus()  # still focusable, and says why it does nothing
    await bob.page.keyboard.press("Enter")
    await expect(toast(bob, "locked")).to_be_visible()
    await expect(tool(bob, "toggle-mic")).to_have_attribute("data-state", "locked")
    await choose(host, person_menu, "unlock-mic")
    await expect(tool(bob, "toggle-mic")).to_have_attribute(
        "data-state", "muted", timeout=UI_TIMEOUT
    )

    # Rights: a speaker label, a moderator role, presenting allowed.
    await choose(host, person_menu, "set-speaker")
    await expect(row(host, "stage", bob_id).locator('[data-badge="speaker"]')).to_be_visible(
        timeout=UI_TIMEOUT
    )
    await expect(toast(bob, "speaker")).to_be_visible(timeout=UI_TIMEOUT)
    await choose(host, person_menu, "allow-present")
    await expect(tool(bob, "toggle-present")).to_be_visible(timeout=UI_TIMEOUT)
    await choose(host, person_menu, "set-role-moderator")
    await expect(row(host, "stage", bob_id)).to_have_attribute(
        "data-role", "moderator", timeout=UI_TIMEOUT
    )
    await expect(tool(bob, "manage")).to_be_visible(timeout=UI_TIMEOUT)
    await choose(host, person_menu, "set-role-participant")
    await expect(tool(bob, "manage")).to_be_hidden(timeout=UI_TIMEOUT)

    # Stage access, seen by everyone.
    await choose(host, manage, "stage-access-invite_only")
    await expect(bob.page.locator("#access-label")).to_have_attribute(
        "data-access", "invite_only", timeout=UI_TIMEOUT
    )

    # Shared content becomes the main tile for the others.
    await tool(host, "toggle-present").click()
    content = tile(bob, host_id, "screen")
    await expect(content).to_have_attribute("data-video", "on", timeout=MEDIA_TIMEOUT)
    assert (await tile_video(content))["width"] > 0
    # One encoding with temporal layers: a viewer on a short link gets fewer frames of it.
    encodings = await host.page.evaluate("window.stagePublishStats()")
    assert [e["scalabilityMode"] for e in encodings if not e["rid"]] == ["L1T3"], encodings
    await expect(bob.page.locator("#stage")).to_have_class("stage has-content")
    await bob.screenshot("content.png", toasts=False)
    await tool(host, "toggle-present").click()
    await expect(content).to_have_count(0, timeout=UI_TIMEOUT)

    # Chat both ways, with an unread badge while the panel is closed.
    await tool(bob, "toggle-chat").click()
    await bob.page.locator("#chat-input").fill("Hello from Bob")
    await bob.page.locator("#chat-input").press("Enter")
    await expect(host.page.locator('[data-badge="chat"]')).to_have_text("1", timeout=UI_TIMEOUT)
    await tool(host, "toggle-chat").click()
    await expect(host.page.locator("#panel-chat .message")).to_contain_text("Hello from Bob")
    await host.page.locator("#chat-input").fill("Welcome, Bob")
    await host.page.locator('[data-action="send-chat"]').click()
    last = bob.page.locator("#panel-chat .message").last
    await expect(last).to_contain_text("Welcome, Bob", timeout=UI_TIMEOUT)

    # A quick poll: created by the host, voted by Bob, results live for the host, then closed.
    await choose(host, manage, "new-poll")
    await host.page.locator("#poll-question").fill("Coffee or tea?")
    await host.page.locator("#poll-options").fill("Coffee\nTea")
    await host.page.locator('[data-action="create-poll"]').click()
    await toast(bob, "poll").locator(".toast-action").click()
    poll = bob.page.locator("#panel-polls .poll").first
    await expect(poll).to_contain_text("Coffee or tea?")
    await poll.locator('[data-option="1"] [data-action="vote"]').click()
    await expect(poll).to_contain_text("your vote is in", timeout=UI_TIMEOUT)
    host_poll = host.page.locator("#panel-polls .poll").first
    tea = host_poll.locator('[data-option="1"] .poll-count')
    await expect(tea).to_have_text("1 · 100%", timeout=UI_TIMEOUT)
    await host.screenshot("poll.png")
    await host_poll.locator('[data-action="close-poll"]').click()
    await expect(poll).to_have_attribute("data-closed", "true", timeout=UI_TIMEOUT)
    await expect(poll.locator('[data-option="1"] .poll-count')).to_have_text("1 · 100%")

    # Removing Bob from the room ends his session for good.
    await open_people(host)
    await choose(host, person_menu, "kick")
    await host.page.locator('dialog.confirm [data-action="confirm"]').click()
    await expect(bob.page.locator("#ended-title")).to_have_text(
        "You were removed from the room", timeout=UI_TIMEOUT
    )
    # said once, by the end screen: no toast repeating it, none that stays forever
    await expect(bob.page.locator("#toasts .toast")).to_have_count(0)
    await expect(row(host, "stage", bob_id)).to_have_count(0, timeout=UI_TIMEOUT)
    assert (await bob.state())["ended"] == "kicked"
