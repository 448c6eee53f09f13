"""The join screen offers only what the person can do: a watch-only phone is offered
only "Join as viewer", and on a stage by invitation "Join stage" says why it cannot
before any camera or microphone is asked for, and suggests raising a hand instead."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import JOIN_TIMEOUT, OpenPage, poll
from tests.e2e.room_page import (
    UI_TIMEOUT,
    device_prompts,
    toast,
    tool,
    watch_device_prompts,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def server_overrides() -> Mapping[str, object]:
    return {"rooms.stage_access": "invite_only"}


@pytest.mark.timeout(60)
async def test_a_watch_only_phone_is_offered_only_join_as_viewer(open_page: OpenPage) -> None:
    phone = await open_page("/", viewport=PHONE, identity="pia")
    page = phone.page
    viewer = page.locator('#join-form [data-action="join-viewer"]')
    stage = page.locator('#join-form [data-action="join-stage"]')
    await expect(page.locator("#viewer-only")).to_be_checked()
    await expect(stage).to_be_hidden()
    await expect(viewer).to_be_visible()
    await expect(viewer).to_have_class("primary")

    # Unticked, the stage is on offer again, and it is the main button.
    await page.locator("#viewer-only").uncheck()
    await expect(stage).to_be_visible()
    await expect(stage).to_have_class("primary")
    await expect(viewer).to_have_class("secondary")


@pytest.mark.timeout(60)
async def test_join_stage_on_an_invitation_only_stage_says_why_before_any_device_prompt(
    open_page: OpenPage,
) -> None:
    ivy = await open_page("/", identity="ivy")
    page = ivy.page
    await watch_device_prompts(ivy)
    await page.locator("#name").fill("Ivy")
    await page.locator('#join-form [data-action="join-stage"]').click()

    state = await poll(
        ivy.state,
        lambda s: s["status"] in ("joined", "error"),
        timeout=JOIN_TIMEOUT,
        what="ivy joining",
        describe=ivy.describe,
    )
    assert state["status"] == "joined" and state["stage"] == "viewer", state
    notice = toast(ivy, "stage-not-allowed")
    await expect(notice).to_contain_text("by invitation", timeout=UI_TIMEOUT)
    await expect(notice).to_contain_text("Raise your hand")
    assert await device_prompts(ivy) == {"media": 0, "dialogs": []}

    # Nothing to ask for here (requests are not allowed): raising a hand is what is offered.
    await expect(tool(ivy, "request-stage")).to_have_count(0)
    await expect(tool(ivy, "join-stage")).to_be_hidden()
    await expect(tool(ivy, "toggle-hand")).to_have_class("tool accent")
    await notice.locator(".toast-action").click()
    await expect(tool(ivy, "toggle-hand")).to_have_attribute(
        "aria-pressed", "true", timeout=UI_TIMEOUT
    )
    assert (await device_prompts(ivy))["media"] == 0
