"""The join screen in a room where the stage is by request: development tokens, the
"Get ready" device check, and what happens when the stage cannot be joined directly."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import JOIN_TIMEOUT, OpenPage, Participant, poll
from tests.e2e.room_page import (
    UI_TIMEOUT,
    device_prompts,
    tile,
    toast,
    tool,
    wait_for_preview,
    watch_device_prompts,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest.fixture
def server_overrides() -> Mapping[str, object]:
    return {"rooms.stage_access": "request"}


async def joined(who: Participant) -> dict[str, object]:
    return await poll(
        who.state,
        lambda s: s["status"] in ("joined", "error"),
        timeout=JOIN_TIMEOUT,
        what=f"{who.identity} joining",
        describe=who.describe,
    )


@pytest.mark.timeout(60)
async def test_a_host_joins_the_stage_from_the_join_screen_with_a_dev_token(
    open_page: OpenPage,
) -> None:
    dora = await open_page("/", identity="dora")
    page = dora.page
    await expect(page.locator("#join-title")).to_be_visible()
    await page.locator("#name").fill("Dora Host")
    await page.locator("#room-input").fill("demo")
    await page.locator("#role").select_option("host")
    await dora.screenshot("join.png")

    await page.locator('[data-action="join-stage"]').click()
    ready = page.locator("dialog#devices-dialog")
    await expect(ready).to_be_visible()
    await expect(ready.locator("#devices-title")).to_have_text("Get ready to join the stage")
    await expect(ready.locator("#settings-mic-on")).to_be_checked()
    await wait_for_preview(dora, ready)
    await dora.screenshot("get-ready.png")
    await ready.locator('[data-action="confirm-join-stage"]').click()

    state = await joined(dora)
    assert state["status"] == "joined", state
    assert state["role"] == "host"
    await dora.wait_for("window.stageState.stage === 'on_stage'", timeout=10, what="on stage")
    await dora.wait_for(
        "(window.stageState.publishing || []).join() === 'camera,microphone'",
        timeout=10,
        what="publishing camera and microphone",
    )
    me = await dora.participant_id()
    await expect(tile(dora, me)).to_have_attribute("data-video", "on", timeout=UI_TIMEOUT)
    await expect(tile(dora, me).locator(".name")).to_have_text("Dora Host (you)")
    await expect(page.locator("#access-label")).to_have_attribute("data-access", "request")


@pytest.mark.timeout(60)
async def test_a_participant_who_chose_the_stage_lands_as_a_viewer_and_may_ask(
    open_page: OpenPage,
) -> None:
    eve = await open_page("/", identity="eve")
    page = eve.page
    await watch_device_prompts(eve)
    await page.locator("#name").fill("Eve")
    await page.locator('[data-action="join-stage"]').click()

    # Told why before any camera or microphone is asked for: no device check at all.
    state = await joined(eve)
    assert state["status"] == "joined", state
    assert state["stage"] == "viewer"
    notice = toast(eve, "stage-not-allowed")
    await expect(notice).to_contain_text("by request", timeout=UI_TIMEOUT)
    assert await device_prompts(eve) == {"media": 0, "dialogs": []}
    await expect(tool(eve, "request-stage")).to_be_visible()
    await notice.locator(".toast-action").click()  # "Ask to join stage"
    await expect(tool(eve, "cancel-request")).to_be_visible(timeout=UI_TIMEOUT)
    await eve.wait_for("window.stageState.stage === 'requested'", timeout=10, what="requested")
    await tool(eve, "cancel-request").click()
    await expect(tool(eve, "request-stage")).to_be_visible(timeout=UI_TIMEOUT)


@pytest.mark.timeout(60)
async def test_a_bad_token_is_explained_on_the_join_screen(open_page: OpenPage) -> None:
    page = (await open_page("/?token=not-a-token")).page
    await expect(page.locator("#mode-token")).to_be_checked()
    await page.locator('[data-action="join-viewer"]').click()
    await expect(page.locator("#join-error")).to_have_text(
        "This join token is not valid.", timeout=UI_TIMEOUT
    )
    await expect(page.locator("#join")).to_be_visible()
    await expect(page.locator('[data-action="join-viewer"]')).to_be_enabled()


@pytest.mark.timeout(60)
async def test_a_development_link_joins_the_stage_in_one_step(open_page: OpenPage) -> None:
    quinn = await open_page(
        "/?room=demo&name=Quinn&role=moderator&entry=stage&autojoin=1", identity="quinn"
    )
    state = await joined(quinn)
    assert state["status"] == "joined", state
    assert state["role"] == "moderator"
    await quinn.wait_for("window.stageState.stage === 'on_stage'", timeout=10, what="on stage")
