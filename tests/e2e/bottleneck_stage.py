"""A stage of real browsers with one viewer behind a shaped link (tests/netns.py), and
what each viewer gets: per tile the frame size, frame rate, freezes and audio loss.

Three Chromium publishers and an unlimited viewer run in ``open``, the limited viewer in
``lim``, whose downlink tbf limits. test_browser_bottleneck.py asserts on it; run as a
module it measures the baseline recorded in docs/bottleneck.md (a fresh stage per case)::

    nice -n 10 python3 -m tests.e2e.bottleneck_stage
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from playwright.async_api import Browser, BrowserContext, ViewportSize, async_playwright

from tests.e2e.conftest import ARTIFACTS, CHROMIUM_ARGS, JOIN_TIMEOUT, Participant, poll
from tests.netns import Namespace, NetnsServer, Topology, chromium_in, serve_in, topology

MEDIA_TIMEOUT = 60.0
SETUP_TIMEOUT = 240.0
"""The whole set-up: namespaces, server, browsers, joins, every tile playing."""
SETTLE = 10.0
"""Seconds between every tile playing and the start of a measurement window."""
WINDOW = 10.0
SMALL = ViewportSize(width=480, height=300)
"""Three tiles about 85 lines tall: each asks for the lowest encoding (180 lines)."""
LARGE = ViewportSize(width=1280, height=800)
"""Three tiles about 330 lines tall: each asks for the 360-line encoding."""
PUBLISHERS = ("ana", "ben", "cyd")
# The publishers capture 640x360 (?camera_height=360) instead of the web client's 1280x720.
# Three Chromiums encoding a three-encoding 720p ladder on the test machine's two cores
# starve everything else: the unlimited viewer's tiles fell to 13-17 fps with freezes and
# ~1 % audio loss with no limit at all, a test of the machine rather than of the link. At
# 360p they play at ~19.5 fps, and the ladder still has two encodings, 180 and 360 lines.
CAMERA_HEIGHT = 360

_COUNTERS = ("framesDecoded", "freezeCount", "audioPackets", "audioPacketsLost")


@dataclass
class Stage:
    """Publishers and ``unlimited`` in ``open``, ``limited`` in ``lim``."""

    topology: Topology
    server: NetnsServer
    publishers: list[Participant]
    unlimited: Participant
    limited: Participant
    names: dict[str, str]
    """Participant id -> identity, for the publishers."""

    def describe(self) -> str:
        """The pages' console errors, for failure messages."""
        return "".join(p.describe() for p in (*self.publishers, self.unlimited, self.limited))

    async def lowest_widths(self) -> dict[str, int]:
        """Each publisher's smallest encoding being sent, by width: identity -> width."""
        widths = {}
        for publisher in self.publishers:
            sent = [e["width"] for e in await _encodings(publisher) if e["bytesSent"] > 0]
            widths[publisher.identity] = min(sent, default=0)
        return widths


@dataclass(frozen=True, kw_only=True)
class Tile:
    """What one viewer got of one publisher over a measurement window."""

    publisher: str
    width: int
    height: int
    fps: float
    """Frames decoded per second."""
    freezes: int
    """Chromium's ``freezeCount`` increase."""
    audio_loss: float
    """Audio packets lost / packets received (inbound-rtp)."""


@dataclass(frozen=True, kw_only=True)
class Figures:
    """One viewer's tiles, and the server's and the link's counters, over one window."""

    viewer: str
    downlink: str
    viewport: str
    tiles: tuple[Tile, ...]
    retransmissions_per_s: float
    """Packets the server retransmitted (to every viewer) per second."""
    key_frames_per_s: float
    """Key frames the server received from the publishers (every encoding) per second."""
    link_kbit: float
    """What the shaped link carried toward ``lim``, kbit/s (0 for an unlimited viewer)."""
    link_drops_per_s: float
    """Packets the shaped link dropped per second."""

    def rows(self) -> list[str]:
        """Markdown table rows, one per tile."""
        return [
            f"| {self.viewer} | {self.downlink} | {self.viewport} | {t.publisher} | "
            f"{t.width}x{t.height} | {t.fps:.1f} | {t.freezes} | {t.audio_loss:.2%} | "
            f"{self.retransmissions_per_s:.1f} | {self.key_frames_per_s:.2f} | "
            f"{self.link_kbit:.0f} | {self.link_drops_per_s:.1f} |"
            for t in self.tiles
        ]


TABLE_HEADER = (
    "| viewer | downlink | viewport | tile | frame | fps | freezes | audio loss "
    "| server rtx/s | key frames in/s | link kbit/s | link drops/s |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def table(figures: Sequence[Figures]) -> str:
    return "\n".join([TABLE_HEADER, *(row for f in figures for row in f.rows())])


async def _join(
    browser: Browser,
    contexts: list[BrowserContext],
    server: NetnsServer,
    url: str,
    identity: str,
    entry: str,
    *,
    viewport: ViewportSize,
    query: Mapping[str, str] | None = None,
) -> Participant:
    """Open the web client at ``url`` in a fresh context of ``browser`` and join (bounded)."""
    context = await browser.new_context(viewport=viewport)
    contexts.append(context)
    page = await context.new_page()
    participant = Participant(identity=identity, entry=entry, page=page)
    page.on("console", participant._record)
    page.on("pageerror", participant._record_exception)
    params = {"token": server.token(identity), "entry": entry, "autojoin": "1", **(query or {})}
    # A <video> that never gets a frame holds back the load event (as in conftest.py).
    await page.goto(f"{url}/?{urlencode(params)}", wait_until="commit")
    state = await poll(
        participant.state,
        lambda s: s["status"] in ("joined", "error", "closed", "ended"),
        timeout=JOIN_TIMEOUT,
        what=f"{identity} joining as {entry}",
        describe=participant.describe,
    )
    assert state["status"] == "joined", f"{identity}: {state}{participant.describe()}"
    return participant


@asynccontextmanager
async def bottleneck_stage(
    *,
    downlink_kbit: int | None,
    limited_viewport: ViewportSize = SMALL,
    limited_must_play: bool = True,
    settings: Mapping[str, str] | None = None,
) -> AsyncIterator[Stage]:
    """The topology (``lim``'s downlink at ``downlink_kbit``), the server (a front and
    its media workers, as deployed) and the browsers: three publishers sending simulcast,
    then the unlimited viewer (LARGE) and the limited one, each decoding every tile (all
    waits bounded; the limited viewer's only if ``limited_must_play``). Everything is
    stopped and removed when the block ends. ``settings`` go to the server (dotted keys)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        # Bounded as a whole, so a hang still unwinds the stack below (the test's
        # timeout would end the process without removing the namespaces).
        async with asyncio.timeout(SETUP_TIMEOUT):
            topo = await stack.enter_async_context(topology())
            await topo.set_downlink(downlink_kbit)
            log = ARTIFACTS / "bottleneck-server.log"
            server = await stack.enter_async_context(serve_in(topo, settings, log=log))
            playwright = await stack.enter_async_context(async_playwright())
            browsers = {}
            # The loopback tests' flags as they are: --allow-loopback-in-peer-connection is
            # harmless here, and the viewers still offer plain addresses, not mDNS names.
            for namespace in (topo.open, topo.lim):
                browsers[namespace] = await stack.enter_async_context(
                    chromium_in(
                        playwright, namespace, args=CHROMIUM_ARGS,
                        secure_origins=[server.url(namespace)],
                    )
                )  # fmt: skip
            contexts: list[BrowserContext] = []
            stack.push_async_callback(_close_all, contexts)

            async def join(
                where: Namespace, identity: str, entry: str, viewport: ViewportSize, **query: str
            ) -> Participant:
                return await _join(
                    browsers[where], contexts, server, server.url(where), identity, entry,
                    viewport=viewport, query=query,
                )  # fmt: skip

            publishers = [
                await join(topo.open, name, "stage", SMALL, camera_height=str(CAMERA_HEIGHT))
                for name in PUBLISHERS
            ]
            for publisher in publishers:
                await poll(
                    lambda p=publisher: _encodings(p),  # type: ignore[misc]
                    lambda encodings: sum(1 for e in encodings if e["bytesSent"] > 0) >= 2,
                    timeout=MEDIA_TIMEOUT,
                    what=f"{publisher.identity} sending two simulcast encodings",
                    describe=publisher.describe,
                )
            unlimited = await join(topo.open, "una", "viewer", LARGE)
            limited = await join(topo.lim, "lim", "viewer", limited_viewport)
            names = {await p.participant_id(): p.identity for p in publishers}
            stage = Stage(topo, server, publishers, unlimited, limited, names)
            for viewer in (unlimited, limited) if limited_must_play else (unlimited,):
                await _wait_all_playing(stage, viewer)
        yield stage


async def _close_all(contexts: list[BrowserContext]) -> None:
    for context in contexts:
        await context.close()


async def _encodings(publisher: Participant) -> list[dict[str, Any]]:
    encodings: list[dict[str, Any]] = await publisher.page.evaluate("window.stagePublishStats()")
    return encodings


async def _wait_all_playing(stage: Stage, viewer: Participant) -> None:
    def playing(stats: Mapping[str, Any]) -> bool:
        per = stats["byParticipant"]
        return all(per.get(pid, {}).get("framesDecoded", 0) > 0 for pid in stage.names)

    await poll(
        viewer.stats,
        playing,
        timeout=MEDIA_TIMEOUT,
        what=f"{viewer.identity} decoding every publisher's video",
        describe=stage.describe,
    )


@dataclass(frozen=True)
class _Snapshot:
    at: float
    tiles: dict[str, dict[str, dict[str, int]]]
    metrics: dict[str, float]
    link: dict[str, int]


async def _snapshot(stage: Stage) -> _Snapshot:
    viewers = (stage.unlimited, stage.limited)
    tiles = {v.identity: dict((await v.stats())["byParticipant"]) for v in viewers}
    at = asyncio.get_running_loop().time()
    return _Snapshot(
        at, tiles, await stage.server.metrics(), await stage.topology.downlink_counters()
    )


async def measure(
    stage: Stage, *, settle: float = SETTLE, window: float = WINDOW
) -> tuple[Figures, Figures]:
    """After ``settle`` seconds, both viewers over ``window`` seconds: (unlimited, limited)."""
    async with asyncio.timeout(settle + window + 30.0):
        await asyncio.sleep(settle)  # a measurement interval, not a wait for a condition
        before = await _snapshot(stage)
        await asyncio.sleep(window)
        after = await _snapshot(stage)
    seconds = after.at - before.at

    def per_second(name: str) -> float:
        return (after.metrics.get(name, 0.0) - before.metrics.get(name, 0.0)) / seconds

    def viewer_figures(viewer: Participant, limited: bool) -> Figures:
        tiles = []
        for pid, identity in stage.names.items():
            start = before.tiles[viewer.identity].get(pid, {})
            end = after.tiles[viewer.identity].get(pid, {})
            delta = {key: end.get(key, 0) - start.get(key, 0) for key in _COUNTERS}
            tiles.append(
                Tile(
                    publisher=identity,
                    width=end.get("width", 0),
                    height=end.get("height", 0),
                    fps=delta["framesDecoded"] / seconds,
                    freezes=delta["freezeCount"],
                    audio_loss=delta["audioPacketsLost"] / max(delta["audioPackets"], 1),
                )
            )
        size = viewer.page.viewport_size or {"width": 0, "height": 0}
        shaped = stage.topology.downlink_kbit if limited else None
        link = {key: after.link[key] - before.link[key] for key in ("bytes", "drops")}
        return Figures(
            viewer=viewer.identity,
            downlink="unlimited" if shaped is None else f"{shaped} kbit/s",
            viewport=f"{size['width']}x{size['height']}",
            tiles=tuple(tiles),
            retransmissions_per_s=per_second("stage_sfu_retransmissions_sent_total"),
            key_frames_per_s=per_second("stage_sfu_key_frames_received_total"),
            link_kbit=link["bytes"] * 8 / 1000 / seconds if shaped else 0.0,
            link_drops_per_s=link["drops"] / seconds if shaped else 0.0,
        )

    return viewer_figures(stage.unlimited, False), viewer_figures(stage.limited, True)


BASELINE = ((700, SMALL), (1000, SMALL), (700, LARGE), (1300, LARGE), (2000, LARGE))
"""(kbit/s, the limited viewer's viewport) measured by ``main``."""


async def baseline() -> list[Figures]:
    """The limited viewer in each ``BASELINE`` case, each on a fresh stage."""
    found = []
    for rate, viewport in BASELINE:
        async with bottleneck_stage(
            downlink_kbit=rate, limited_viewport=viewport, limited_must_play=False
        ) as stage:
            found.append((await measure(stage))[1])
    return found


def main() -> None:
    text = table(asyncio.run(baseline()))
    (ARTIFACTS / "bottleneck-baseline.md").write_text(text + "\n")
    print(text)  # noqa: T201


if __name__ == "__main__":
    main()
