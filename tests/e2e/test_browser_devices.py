"""Set devices: choices are saved in the browser, survive a reload, and are the ones
used when joining the stage."""

from __future__ import annotations

import pytest
from playwright.async_api import Locator, expect

from tests.e2e.conftest import Join, OpenPage
from tests.e2e.room_page import UI_TIMEOUT, tool, wait_for_preview

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

MIC = "Fake Audio Input 2"
OTHER_MIC = "Fake Audio Input 1"
SPEAKER = "Fake Audio Output 1"


async def selected_label(select: Locator) -> str:
    label: str = await select.evaluate("(s) => s.selectedOptions[0]?.textContent ?? ''")
    return label


@pytest.mark.timeout(90)
async def test_device_choices_survive_a_reload_and_are_used_on_stage(
    open_page: OpenPage, join: Join
) -> None:
    fay = await open_page("/", identity="fay")
    page = fay.page
    await page.locator('[data-action="open-devices"]').click()
    dialog = page.locator("dialog#devices-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog.locator("#devices-title")).to_have_text("Set devices")
    mic = dialog.locator("#settings-mic")
    speaker = dialog.locator("#settings-speaker")
    await expect(mic.locator("option", has_text=MIC)).to_have_count(1, timeout=UI_TIMEOUT)
    await mic.select_option(label=MIC)
    await speaker.select_option(label=SPEAKER)
    await wait_for_preview(fay, dialog)  # the new microphone drives the meter
    await fay.screenshot("devices.png")
    await dialog.locator('[data-action="devices-done"]').click()
    await expect(dialog).to_be_hidden()

    # The camera is switched off for entering the stage, in the "Get ready" check.
    await page.locator("#name").fill("Fay")
    await page.locator('[data-action="join-stage"]').click()
    await expect(dialog.locator("#settings-camera-on")).to_be_checked()
    await dialog.locator('label[for="settings-camera-on"]').click()
    await expect(dialog.locator(".preview-off")).to_be_visible()
    await dialog.locator('[data-action="devices-cancel"]').click()

    await page.reload(wait_until="commit")
    await fay.wait_for("Boolean(window.stageState)", timeout=10, what="the page after reload")
    await expect(page.locator("#name")).to_have_value("Fay")
    await page.locator('[data-action="open-devices"]').click()
    await expect(mic.locator("option", has_text=MIC)).to_have_count(1, timeout=UI_TIMEOUT)
    assert await selected_label(mic) == MIC
    assert await selected_label(speaker) == SPEAKER
    await dialog.locator('[data-action="devices-done"]').click()

    # Joining the stage uses them: that microphone, the camera left off.
    await page.locator('[data-action="join-stage"]').click()
    await expect(dialog.locator("#settings-camera-on")).not_to_be_checked()
    await dialog.locator('[data-action="confirm-join-stage"]').click()
    await fay.wait_for("window.stageState.stage === 'on_stage'", timeout=15, what="on stage")
    label = await fay.wait_for(
        """() => {
            const t = window.stageClient.transceivers.get("microphone");
            return t && t.sender.track ? t.sender.track.label : null;
        }""",
        timeout=15,
        what="publishing the microphone",
    )
    assert label == MIC

    # Another microphone chosen while on stage replaces the one being sent.
    await tool(fay, "open-settings").click()
    await mic.select_option(label=OTHER_MIC)
    await dialog.locator('[data-action="devices-done"]').click()
    await fay.wait_for(
        "(label) => window.stageClient.transceivers.get('microphone').sender.track?.label == label",
        OTHER_MIC,
        timeout=15,
        what="the other microphone being sent",
    )
    camera = await page.evaluate(
        "window.stageClient.transceivers.get('camera')?.sender.track ?? null"
    )
    assert camera is None
    me = await fay.participant_id()
    await expect(page.locator(f'.tile[data-participant="{me}"]')).to_have_attribute(
        "data-camera", "off"
    )

    # What others say plays on the chosen speaker.
    await join("gus", "stage")
    speaker_id = await page.evaluate(
        """async (label) => (await navigator.mediaDevices.enumerateDevices())
            .find((d) => d.kind === "audiooutput" && d.label === label).deviceId""",
        SPEAKER,
    )
    sinks = await fay.wait_for(
        """() => {
            const sinks = [...document.querySelectorAll(".audio-sinks audio")].map((a) => a.sinkId);
            return sinks.length && sinks.every(Boolean) ? sinks : null;  // setSinkId settles
        }""",
        timeout=15,
        what="gus's audio playing",
    )
    assert sinks == [speaker_id]
