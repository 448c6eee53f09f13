"""Real headless Chromium against a real server on loopback.

One browser per test module; one browser context (its own cookies, storage and media
permissions) per participant. Chromium is never downloaded: Debian's ``/usr/bin/chromium``
must be installed, and a missing browser fails the tests rather than skipping them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict, TypeVar
from urllib.parse import urlencode

import pytest
import pytest_asyncio
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Error,
    Page,
    async_playwright,
)

from signaling.roles import Role
from tests.server import RunningServer, running_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # A fake camera (a moving test pattern) and microphone (a beep), granted without a prompt.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # The server offers 127.0.0.1 only: Chromium skips loopback candidates unless told not
    # to, and without a getUserMedia grant (viewers) it hides its own addresses behind mDNS.
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
    # Pages in one headless browser are all "in the background": keep their timers,
    # rendering and decoding at full speed.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
)
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"
POLL_INTERVAL = 0.1
JOIN_TIMEOUT = 20.0
DESKTOP = {"width": 960, "height": 600}

T = TypeVar("T")


async def poll(
    probe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    timeout: float,
    what: str,
    describe: Callable[[], str] = lambda: "",
) -> T:
    """Return the first ``probe()`` value for which ``done`` holds, probing every 0.1 s.

    Fails the test after ``timeout`` seconds, naming ``what`` was awaited, the last value
    seen and ``describe()`` (page diagnostics).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if done(value):
            return value
        if loop.time() >= deadline:
            pytest.fail(
                f"{what}: not reached within {timeout:g} s; last value {value!r}{describe()}",
                pytrace=False,
            )
        await asyncio.sleep(POLL_INTERVAL)


class PageStats(TypedDict):
    """`window.stageStats()` (app.js): the subscribe connection's inbound RTP, in total
    and, under `byParticipant`, per participant (framesDecoded, width, height, freezeCount,
    videoPackets, videoPacketsLost, audioSamples, audioPackets, audioPacketsLost)."""

    framesDecoded: int
    audioSamples: int
    audioPackets: int
    videoPackets: int
    width: int
    byParticipant: dict[str, dict[str, int]]


async def now(read: Callable[[], T]) -> T:
    """`read()` as an awaitable, for `poll`ing server state the test can read directly."""
    return read()


@dataclass
class Participant:
    """One person in the room: a page of the web client in its own browser context."""

    identity: str
    entry: str
    page: Page
    console: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """The page's console errors and uncaught exceptions, for failure messages."""
        if not self.console:
            return ""
        return f"\n{self.identity}'s page said:\n  " + "\n  ".join(self.console[-20:])

    async def state(self) -> dict[str, Any]:
        state: dict[str, Any] | None = await self.page.evaluate("window.stageState ?? null")
        return state or {"status": "loading"}

    async def stats(self) -> PageStats:
        """Decoded frames and received audio of the subscribe connection (app.js)."""
        stats: PageStats = await self.page.evaluate("window.stageStats()")
        return stats

    async def wait_for_stats(
        self, done: Callable[[PageStats], bool], *, timeout: float, what: str
    ) -> PageStats:
        return await poll(self.stats, done, timeout=timeout, what=what, describe=self.describe)

    async def wait_for_media_flowing(
        self, *, frames: int, timeout: float, how: str = ""
    ) -> PageStats:
        """Video decoded and audio received, then `frames` more frames and more audio:
        media keeps flowing, not a burst. Returns the later stats."""
        first = await self.wait_for_stats(
            lambda s: s["framesDecoded"] > 0 and s["audioSamples"] > 0,
            timeout=timeout,
            what=f"{self.identity} decoding video and receiving audio{how}",
        )
        return await self.wait_for_stats(
            lambda s: (
                s["framesDecoded"] >= first["framesDecoded"] + frames
                and s["audioSamples"] > first["audioSamples"]
            ),
            timeout=timeout,
            what=f"{self.identity} decoding {frames} more frames after {first}",
        )

    async def screenshot(self, name: str, *, toasts: bool = True) -> Path:
        """Save a screenshot to artifacts/e2e/ (``toasts=False``: notifications removed)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        if not toasts:
            await self.page.evaluate(
                "document.querySelectorAll('#toasts > *').forEach((t) => t.remove())"
            )
        await self.page.screenshot(path=path)
        return path

    async def participant_id(self) -> str:
        state = await self.state()
        participant_id: str = state["participantId"]
        return participant_id

    async def wait_for(self, script: str, arg: Any = None, *, timeout: float, what: str) -> Any:
        """Poll a JavaScript expression or function in the page until it is truthy."""

        async def probe() -> Any:
            return await self.page.evaluate(script, arg)

        return await poll(probe, bool, timeout=timeout, what=what, describe=self.describe)

    def _record(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.console.append(f"console.{message.type}: {message.text}")

    def _record_exception(self, error: Error) -> None:
        self.console.append(f"uncaught: {error}")


def _require_chromium() -> None:
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium is required for the e2e tests but {CHROMIUM} is not an executable "
            "(install Debian's 'chromium' package; browsers are never downloaded)",
            pytrace=False,
        )


class Join(Protocol):
    """``await join(identity, entry, role=..., viewport=..., query=...)``."""

    def __call__(
        self,
        identity: str,
        entry: str,
        *,
        role: Role = Role.PARTICIPANT,
        viewport: Mapping[str, int] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Awaitable[Participant]: ...


class OpenPage(Protocol):
    """``await open_page(path, viewport=...)``: a page of the client in a fresh context."""

    def __call__(
        self, path: str = "/", *, viewport: Mapping[str, int] | None = None, identity: str = "page"
    ) -> Awaitable[Participant]: ...


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium, launched once for the module."""
    _require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS), timeout=30_000
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def server_overrides() -> Mapping[str, object]:
    """Settings for the test's server (dotted keys); a test module may override it."""
    return {}


@pytest_asyncio.fixture(loop_scope="module")
async def server(server_overrides: Mapping[str, object]) -> AsyncIterator[RunningServer]:
    """The shared loopback server, but in the module's event loop, where the browser is.

    Playwright's connection is bound to the loop that launched the browser, and the server
    only answers while its own loop runs, so both must share one loop.
    """
    async with running_server(server_overrides) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def contexts(browser: Browser) -> AsyncIterator[list[BrowserContext]]:
    """Browser contexts opened by a test, closed (before the server stops) when it ends."""
    opened: list[BrowserContext] = []
    try:
        yield opened
    finally:
        for context in opened:
            await context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def open_page(
    browser: Browser, server: RunningServer, contexts: list[BrowserContext]
) -> OpenPage:
    """Open a page of the web client (e.g. the join screen) in its own browser context."""

    async def open_(
        path: str = "/", *, viewport: Mapping[str, int] | None = None, identity: str = "page"
    ) -> Participant:
        size = viewport or DESKTOP
        context = await browser.new_context(
            viewport={"width": size["width"], "height": size["height"]}
        )
        contexts.append(context)
        page = await context.new_page()
        participant = Participant(identity=identity, entry="", page=page)
        page.on("console", participant._record)
        page.on("pageerror", participant._record_exception)
        # A <video> that never gets a frame holds back the load event: only wait for the
        # navigation to commit, then poll the page's own state.
        await page.goto(f"{server.http_url}{path}", wait_until="commit")
        # The page is usable once its module has run (it defines stageState).
        await poll(
            lambda: page.evaluate("Boolean(window.stageState)"),
            bool,
            timeout=JOIN_TIMEOUT,
            what=f"{identity}'s page starting",
            describe=participant.describe,
        )
        return participant

    return open_


@pytest_asyncio.fixture(loop_scope="module")
async def join(open_page: OpenPage, server: RunningServer) -> Join:
    """``await join(identity, entry)``: open the web client in a fresh context and join.

    Waits (bounded) until the page reports ``stageState.status == "joined"``; contexts
    are closed before the server stops.
    """

    async def open_and_join(
        identity: str,
        entry: str,
        *,
        role: Role = Role.PARTICIPANT,
        viewport: Mapping[str, int] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> Participant:
        params = {
            "token": server.token(identity, role=role),
            "entry": entry,
            "autojoin": "1",
            **(query or {}),
        }
        participant = await open_page(
            f"/?{urlencode(params)}", viewport=viewport, identity=identity
        )
        participant.entry = entry
        state = await poll(
            participant.state,
            lambda s: s["status"] in ("joined", "error", "closed"),
            timeout=JOIN_TIMEOUT,
            what=f"{identity} joining as {entry}",
            describe=participant.describe,
        )
        if state["status"] != "joined":
            pytest.fail(
                f"{identity} could not join as {entry}: {state}{participant.describe()}",
                pytrace=False,
            )
        return participant

    return open_and_join
