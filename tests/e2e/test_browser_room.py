"""The room in three browsers, stage access by request: ask, approve, accept with the
camera on, moderate, remove, and raised hands in order."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest
from playwright.async_api import expect

from signaling.roles import Role
from tests.e2e.conftest import Join
from tests.e2e.room_page import (
    UI_TIMEOUT,
    choose,
    mic_indicator,
    open_people,
    row,
    section_rows,
    tile,
    toast,
    tool,
    wait_for_live_video,
    wait_for_preview,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MEDIA_TIMEOUT = 20.0


@pytest.fixture
def server_overrides() -> Mapping[str, object]:
    return {"rooms.stage_access": "request"}


@pytest.mark.timeout(120)
async def test_asking_approval_invitation_moderation_removal_and_hands(join: Join) -> None:
    host = await join("hana", "stage", role=Role.HOST)
    alice = await join("alice", "viewer")
    victor = await join("victor", "viewer")
    everyone = (host, alice, victor)
    alice_id = await alice.participant_id()
    victor_id = await victor.participant_id()

    # A viewer may not take the stage here: she asks, and the host approves in the list.
    await expect(tool(alice, "join-stage")).to_be_hidden()
    await tool(alice, "request-stage").click()
    await expect(tool(alice, "cancel-request")).to_be_visible(timeout=UI_TIMEOUT)
    await open_people(host)
    request = row(host, "waiting", alice_id)
    await expect(request).to_have_attribute("data-status", "requested", timeout=UI_TIMEOUT)
    await request.locator('[data-action="approve-request"]').click()

    # The approval arrives as an invitation with the device set-up; she accepts, camera on.
    invitation = alice.page.locator("dialog#invitation")
    await expect(invitation).to_be_visible(timeout=UI_TIMEOUT)
    await expect(invitation.locator("#invite-camera-on")).to_be_checked()
    await wait_for_preview(alice, invitation)
    await expect(invitation.locator("#invite-camera option")).not_to_have_count(0)
    await alice.screenshot("invitation.png")
    await invitation.locator('[data-action="accept-invitation"]').click()
    await expect(invitation).to_be_hidden(timeout=UI_TIMEOUT)
    await expect(tool(alice, "leave-stage")).to_be_visible(timeout=UI_TIMEOUT)

    # Everyone else sees her tile with decoding video; the fake microphone's beep lights
    # the speaking indicator everywhere (her own page included).
    for other in (host, victor):
        await wait_for_live_video(other, alice_id)
    for who in everyone:
        await expect(mic_indicator(who, alice_id)).to_have_attribute(
            "data-state", "speaking", timeout=MEDIA_TIMEOUT * 1000
        )
    await expect(host.page.locator("#stage .tile")).to_have_count(2)
    await host.screenshot("stage.png")

    # The host mutes her from her tile's menu: every browser shows her muted.
    await tile(host, alice_id).hover()
    await choose(host, tile(host, alice_id).locator('[data-action="tile-menu"]'), "mute-mic")
    for who in everyone:
        await expect(mic_indicator(who, alice_id)).to_have_attribute(
            "data-state", "muted", timeout=UI_TIMEOUT
        )
    await expect(toast(alice, "device-forced")).to_be_visible(timeout=UI_TIMEOUT)
    await expect(tool(alice, "toggle-mic")).to_have_attribute("data-state", "muted")

    # She turns her camera off: the others see her initials instead of video.
    await tool(alice, "toggle-camera").click()
    for who in everyone:
        alice_tile = tile(who, alice_id)
        await expect(alice_tile).to_have_attribute("data-camera", "off", timeout=UI_TIMEOUT)
        await expect(alice_tile).to_have_attribute("data-video", "off")
        await expect(alice_tile.locator(".initials")).to_be_visible()
        await expect(alice_tile.locator(".initials")).to_have_text("A")
        await expect(alice_tile.locator("video")).to_be_hidden()

    # The host removes her from the stage: she is a viewer again, and told so.
    await choose(
        host,
        row(host, "stage", alice_id).locator('[data-action="person-menu"]'),
        "remove-from-stage",
    )
    await expect(toast(alice, "removed")).to_be_visible(timeout=UI_TIMEOUT)
    await expect(toast(alice, "removed")).to_contain_text("You are now a viewer")
    # who did it, once the server names them (`stage_left.by_name`); "A moderator" until then
    await expect(toast(alice, "removed")).to_have_text(
        re.compile(r"^(Hana|A moderator) moved you off the stage\.")
    )
    for who in everyone:
        await expect(tile(who, alice_id)).to_have_count(0, timeout=UI_TIMEOUT)
    await expect(row(host, "viewers", alice_id)).to_be_visible(timeout=UI_TIMEOUT)
    await open_people(alice)
    await expect(row(alice, "viewers", alice_id)).to_be_visible(timeout=UI_TIMEOUT)
    await expect(tool(alice, "toggle-mic")).to_be_hidden()

    # Two viewers raise their hands: the host sees them in the order they were raised.
    await tool(victor, "toggle-hand").click()
    await expect(row(host, "waiting", victor_id)).to_have_attribute(
        "data-hand", "1", timeout=UI_TIMEOUT
    )
    await tool(alice, "toggle-hand").click()
    hands = section_rows(host, "waiting")
    await expect(hands).to_have_count(2, timeout=UI_TIMEOUT)
    assert [await hands.nth(i).get_attribute("data-participant") for i in range(2)] == [
        victor_id,
        alice_id,
    ]
    assert [await hands.nth(i).get_attribute("data-hand") for i in range(2)] == ["1", "2"]
    await expect(tool(victor, "toggle-hand")).to_have_attribute("aria-pressed", "true")
    await host.page.locator("#participant-search").focus()
    await host.screenshot("participants.png")

    # The search box narrows every section to the matches.
    await host.page.locator("#participant-search").fill("vic")
    await expect(section_rows(host, "waiting")).to_have_count(1)
    await expect(section_rows(host, "viewers")).to_have_count(0)
    await expect(host.page.locator('[data-section="stage"]')).to_be_hidden()

    for who in everyone:
        assert not [line for line in who.console if line.startswith("uncaught")], who.console


@pytest.mark.timeout(120)
async def test_invitations_revoked_or_declined_requests_declined_hands_cleared(
    join: Join,
) -> None:
    host = await join("hana", "stage", role=Role.HOST)
    vera = await join("vera", "viewer")
    vera_id = await vera.participant_id()
    await open_people(host)
    person_menu = row(host, "viewers", vera_id).locator('[data-action="person-menu"]')
    invitation = vera.page.locator("dialog#invitation")

    # Invited, then the invitation is revoked: the pop-up closes and says why.
    await choose(host, person_menu, "invite")
    await expect(invitation).to_be_visible(timeout=UI_TIMEOUT)
    await expect(invitation.locator("#invitation-title")).to_have_text(
        "You're invited to the stage"
    )
    # Sentence case, as everywhere else.
    await expect(invitation.locator('[data-action="accept-invitation"]')).to_have_text("Join stage")
    await expect(invitation.locator('[data-action="decline-invitation"]')).to_have_text(
        "Decline invitation"
    )
    # Invited people have their own heading, apart from hands and requests.
    await expect(row(host, "invited", vera_id)).to_have_attribute(
        "data-status", "invited", timeout=UI_TIMEOUT
    )
    await expect(row(host, "waiting", vera_id)).to_have_count(0)
    await expect(host.page.locator('[data-section="invited"] h3')).to_contain_text("Invited")
    await choose(
        host,
        row(host, "invited", vera_id).locator('[data-action="person-menu"]'),
        "revoke-invitation",
    )
    invited_section = host.page.locator('section[data-section="invited"]')
    await expect(invited_section).to_be_hidden(timeout=UI_TIMEOUT)
    await expect(invitation).to_be_hidden(timeout=UI_TIMEOUT)
    await expect(toast(vera, "invitation-revoked")).to_be_visible()

    # Invited again; closing the pop-up keeps the invitation, which she then declines.
    await choose(host, person_menu, "invite")
    await expect(invitation).to_be_visible(timeout=UI_TIMEOUT)
    await vera.page.keyboard.press("Escape")
    await expect(invitation).to_be_hidden()
    await tool(vera, "show-invitation").click()
    await expect(invitation).to_be_visible()
    await invitation.locator('[data-action="decline-invitation"]').click()
    await expect(toast(host, "invitation-declined")).to_contain_text(
        "Vera declined", timeout=UI_TIMEOUT
    )
    await expect(row(host, "viewers", vera_id)).to_be_visible(timeout=UI_TIMEOUT)
    await vera.wait_for("window.stageState.stage === 'viewer'", timeout=10, what="viewer again")

    # Asking and being declined.
    await tool(vera, "request-stage").click()
    request = row(host, "waiting", vera_id)
    await expect(request).to_have_attribute("data-status", "requested", timeout=UI_TIMEOUT)
    await request.locator('[data-action="decline-request"]').click()
    await expect(toast(vera, "request-declined")).to_be_visible(timeout=UI_TIMEOUT)
    await expect(tool(vera, "request-stage")).to_be_visible()

    # A raised hand, lowered by the host for everyone.
    await tool(vera, "toggle-hand").click()
    await expect(row(host, "waiting", vera_id)).to_have_attribute(
        "data-hand", "1", timeout=UI_TIMEOUT
    )
    await choose(host, tool(host, "manage"), "clear-hands")
    await expect(tool(vera, "toggle-hand")).to_have_attribute(
        "aria-pressed", "false", timeout=UI_TIMEOUT
    )
    await expect(row(host, "viewers", vera_id)).to_be_visible()
