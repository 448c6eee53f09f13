"""The participants list as the server describes it: a viewer who leaves the full view
keeps no one the server no longer tells them about and shows the server's counts;
raised hands are announced both ways; one person in two tabs is two distinct rows."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from signaling.roles import Role
from tests.e2e.conftest import Join
from tests.e2e.room_page import (
    UI_TIMEOUT,
    choose,
    open_people,
    row,
    section_rows,
    tile,
    toast,
    tool,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest.mark.timeout(120)
async def test_a_viewer_removed_from_the_stage_keeps_no_stale_people_and_the_servers_counts(
    join: Join,
) -> None:
    host = await join("hana", "stage", role=Role.HOST)
    bob = await join("bob", "stage")
    vic = await join("vic", "viewer")
    bob_id = await bob.participant_id()
    vic_id = await vic.participant_id()

    # On stage, Bob sees everyone, Vic among the viewers.
    await open_people(bob)
    await expect(row(bob, "viewers", vic_id)).to_be_visible(timeout=UI_TIMEOUT)

    await open_people(host)

    # Moved off the stage, Bob is a plain viewer: told who did it (or "A moderator" until
    # the server names them), and Vic is no longer listed, only counted.
    await choose(
        host, row(host, "stage", bob_id).locator('[data-action="person-menu"]'), "remove-from-stage"
    )
    await expect(toast(bob, "removed")).to_have_text(
        re.compile(r"^(Hana|A moderator) moved you off the stage\. You are now a viewer\.$"),
        timeout=UI_TIMEOUT,
    )
    await expect(tile(bob, bob_id)).to_have_count(0, timeout=UI_TIMEOUT)
    await expect(row(bob, "viewers", vic_id)).to_have_count(0, timeout=UI_TIMEOUT)
    await expect(row(bob, "viewers", bob_id)).to_be_visible()
    viewers = bob.page.locator('#panel-people section[data-section="viewers"]')
    await expect(viewers).to_have_attribute("data-total", "2", timeout=UI_TIMEOUT)
    await expect(viewers.locator(".section-empty")).to_have_text("And 1 watching")

    # Vic leaves: Bob is not told of him any more, but the counts follow the server's.
    await tool(vic, "leave-room").click()
    await expect(viewers).to_have_attribute("data-total", "1", timeout=UI_TIMEOUT)
    await expect(bob.page.locator("#counts")).to_have_text("1 on stage · 1 watching")
    await expect(section_rows(bob, "viewers")).to_have_count(1)

    # With the moderator's name (stage_left.by_name), the notice says who.
    await bob.page.evaluate(
        """() => window.stageClient.onMessage(
            {type: "stage_left", reason: "removed", by: "x", by_name: "Hana"})"""
    )
    await expect(toast(bob, "removed").last).to_have_text(
        "Hana moved you off the stage. You are now a viewer."
    )


@pytest.mark.timeout(120)
async def test_a_raised_hand_is_announced_and_a_moderators_lowering_too(join: Join) -> None:
    host = await join("hana", "stage", role=Role.HOST)
    vic = await join("vic", "viewer")
    vic_id = await vic.participant_id()

    # The host is told when a hand goes up, and can show the list from the notice.
    await tool(vic, "toggle-hand").click()
    raised = toast(host, "hand-raised")
    await expect(raised).to_have_text("Vic raised a hand.Show", timeout=UI_TIMEOUT)
    await raised.locator(".toast-action").click()
    waiting = row(host, "waiting", vic_id)
    await expect(waiting).to_have_attribute("data-hand", "1", timeout=UI_TIMEOUT)

    # Lower hand is a button in the row, beside Invite.
    actions = waiting.locator(".row-actions button")
    await expect(actions).to_have_count(2)
    assert [await actions.nth(i).get_attribute("data-action") for i in range(2)] == [
        "invite",
        "lower-hand",
    ]
    await waiting.locator('[data-action="lower-hand"]').click()
    await expect(tool(vic, "toggle-hand")).to_have_attribute(
        "aria-pressed", "false", timeout=UI_TIMEOUT
    )
    await expect(toast(vic, "hand-lowered")).to_have_text("A moderator lowered your hand.")
    await toast(vic, "hand-lowered").locator(".toast-close").click()

    # Lowering your own hand is no news to you.
    await tool(vic, "toggle-hand").click()
    await expect(tool(vic, "toggle-hand")).to_have_attribute(
        "aria-pressed", "true", timeout=UI_TIMEOUT
    )
    await tool(vic, "toggle-hand").click()
    await expect(tool(vic, "toggle-hand")).to_have_attribute(
        "aria-pressed", "false", timeout=UI_TIMEOUT
    )
    await expect(row(host, "viewers", vic_id)).to_be_visible(timeout=UI_TIMEOUT)
    await expect(toast(vic, "hand-lowered")).to_have_count(0)


@pytest.mark.timeout(120)
async def test_one_person_in_two_tabs_is_two_distinct_rows(join: Join) -> None:
    host = await join("hana", "stage", role=Role.HOST)
    first = await join("bob", "viewer")
    second = await join("bob", "viewer")
    ids = sorted([await first.participant_id(), await second.participant_id()])
    await open_people(host)
    for n, participant_id in enumerate(ids, start=1):
        await expect(row(host, "viewers", participant_id).locator(".person-name")).to_have_text(
            f"Bob (session {n})", timeout=UI_TIMEOUT
        )
