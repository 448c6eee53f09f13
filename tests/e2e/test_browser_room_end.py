"""A host's way out: leave the room to the others, or end it for everyone; and what the
others see in each case."""

from __future__ import annotations

import pytest
from playwright.async_api import Locator, expect

from signaling.roles import Role
from tests.e2e.conftest import Join, Participant
from tests.e2e.room_page import UI_TIMEOUT, toast, tool

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


def choice(who: Participant, action: str) -> Locator:
    return who.page.locator(f'dialog.choice [data-action="{action}"]')


async def ended_screen(who: Participant, title: str, text: str) -> None:
    await expect(who.page.locator("#ended-title")).to_have_text(title, timeout=UI_TIMEOUT)
    await expect(who.page.locator("#ended-text")).to_have_text(text)
    await expect(who.page.locator("#room")).to_be_hidden()
    await expect(who.page.locator("#toasts .toast")).to_have_count(0)  # no stale news


@pytest.mark.timeout(120)
async def test_a_host_ends_the_room_for_everyone_after_choosing_it(join: Join) -> None:
    host = await join("hana", "viewer", role=Role.HOST)
    mod = await join("mo", "viewer", role=Role.MODERATOR)
    bob = await join("bob", "stage")
    vera = await join("vera", "viewer")
    # news the others are shown as the room ends: it must go with the room
    await host.page.evaluate(
        "window.stageClient.command('create_poll', {question: 'Tea?', options: ['yes', 'no']})"
    )
    for other in (mod, bob, vera):
        await expect(toast(other, "poll")).to_be_visible(timeout=UI_TIMEOUT)

    # Leaving offers a choice, and Cancel changes nothing.
    await tool(host, "leave-room").click()
    dialog = host.page.locator("dialog.choice")
    await expect(dialog).to_be_visible(timeout=UI_TIMEOUT)
    await expect(dialog).to_contain_text("Leave the room?")
    await expect(choice(host, "leave-only")).to_have_text("Leave")
    await expect(choice(host, "end-room")).to_have_text("End for everyone")
    await host.screenshot("end-room-choice.png", toasts=False)
    await choice(host, "cancel").click()
    await expect(dialog).to_have_count(0)
    assert (await host.state())["status"] == "joined"

    await tool(host, "leave-room").click()
    await choice(host, "end-room").click()

    await ended_screen(host, "You ended the room", "The room ended for everyone.")
    for other in (mod, bob, vera):
        await ended_screen(other, "The host ended the room", "Hana ended the room for everyone.")
        assert (await other.state())["ended"] == "room_ended"
    await vera.screenshot("room-ended.png")


@pytest.mark.timeout(120)
async def test_a_host_who_only_leaves_lets_the_room_go_on_and_the_others_are_told(
    join: Join,
) -> None:
    host = await join("hana", "viewer", role=Role.HOST)
    bob = await join("bob", "viewer")

    await tool(host, "leave-room").click()
    await choice(host, "leave-only").click()

    await ended_screen(host, "You left the room", "Thanks for joining.")
    notice = toast(bob, "host-left")
    await expect(notice).to_be_visible(timeout=UI_TIMEOUT)
    await expect(notice).to_contain_text("Hana (the host) left the room.")
    await expect(notice).to_contain_text("Nobody is moderating the room now")
    assert (await bob.state())["status"] == "joined"

    # Anyone but a host just leaves: there is nothing to choose.
    await tool(bob, "leave-room").click()
    await ended_screen(bob, "You left the room", "Thanks for joining.")
    await expect(bob.page.locator("dialog.choice")).to_have_count(0)
