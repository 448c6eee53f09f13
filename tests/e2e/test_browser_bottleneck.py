"""Real browsers behind a real bottleneck: a viewer whose downlink tbf limits (in a
network namespace of its own, tests/netns.py), in a three-person stage.

- Without bandwidth estimation (the default), small tiles that ask for the smallest
  simulcast encoding play behind 1.3 Mbit/s.
- With it (``media.downlink_estimation``), a viewer whose large tiles want more than
  its 700 kbit/s carry is fitted into the link instead of flooded: the smallest
  encoding (at fewer frames where needed), its audio whole, few retransmissions and
  few drops, where without estimation nothing played (docs/bottleneck.md); when the
  limit is lifted, probing finds the room and its tiles go back up.

The figures are printed (``pytest -s``) and recorded in docs/bottleneck.md.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.e2e.bottleneck_stage import LARGE, Figures, bottleneck_stage, measure, table
from tests.e2e.conftest import poll
from tests.netns import HarnessError, require_tools

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

DOWNLINK_KBIT = 1300
# The three smallest encodings and three Opus streams take 620-800 kbit/s at the link
# (docs/bottleneck.md), about half of 1.3 Mbit/s. With less headroom the test is not
# stable today: with no bandwidth estimation and no pacing, a burst the link drops brings
# retransmissions that hold it over its rate for seconds. At 1 Mbit/s that cost over 1 %
# of the audio in one run of seven; at 700 kbit/s five runs of eight collapsed (tiles at
# 1-12 fps, ~10 % audio loss) and none met these bounds: the baseline the bandwidth
# estimation work starts from.
MIN_FPS = 10.0
"""The fake camera runs at ~20 fps: 10 is playing, if not smoothly."""
MAX_AUDIO_LOSS = 0.01


def _check(condition: bool, problem: str, figures: list[Figures]) -> None:
    assert condition, f"{problem}\n{table(figures)}"


def _require_tools() -> None:
    try:
        require_tools()
    except HarnessError as error:
        pytest.fail(str(error), pytrace=False)


def _check_control(unlimited: Figures, figures: list[Figures]) -> None:
    """The unlimited viewer is the control: if it does not play either, the machine (two
    cores for the server and five browsers) was too busy to say anything about the link."""
    load = os.getloadavg()[0]
    for tile in unlimited.tiles:
        _check(
            tile.fps >= MIN_FPS and tile.audio_loss < MAX_AUDIO_LOSS,
            f"the unlimited viewer's {tile.publisher} tile, on no limited link, plays at "
            f"{tile.fps:.1f} fps with {tile.audio_loss:.2%} audio loss: the machine is too "
            f"busy to measure the link (load average {load:.1f} on {os.cpu_count()} cores)",
            figures,
        )


@pytest.mark.timeout(360)
async def test_a_small_viewer_behind_a_narrow_link_keeps_every_tile_playing() -> None:
    _require_tools()
    # Set-up and measurement are bounded inside (240 s and 50 s), below the timeout, whose
    # watchdog would end the process without removing the namespaces.
    async with bottleneck_stage(downlink_kbit=DOWNLINK_KBIT) as stage:
        unlimited, limited = await measure(stage)
        lowest = await stage.lowest_widths()
    figures = [unlimited, limited]
    print(f"\n{table(figures)}")  # noqa: T201  (pytest -s shows the figures)

    _check_control(unlimited, figures)
    for tile in limited.tiles:
        _check(
            tile.fps >= MIN_FPS,
            f"{tile.publisher}'s tile behind {DOWNLINK_KBIT} kbit/s plays at {tile.fps:.1f} fps",
            figures,
        )
        _check(
            tile.audio_loss < MAX_AUDIO_LOSS,
            f"{tile.publisher}'s audio behind {DOWNLINK_KBIT} kbit/s lost {tile.audio_loss:.2%}",
            figures,
        )
        _check(
            tile.width == lowest[tile.publisher],
            f"the small {tile.publisher} tile shows {tile.width} wide, not the smallest "
            f"encoding ({lowest[tile.publisher]} wide)",
            figures,
        )
    for large, small in zip(unlimited.tiles, limited.tiles, strict=True):
        _check(
            large.width > small.width,
            f"the unlimited large {large.publisher} tile is {large.width} wide, no wider than "
            f"the limited viewer's ({small.width})",
            figures,
        )


ESTIMATED_KBIT = 700
MAX_RETRANSMISSIONS_PER_S = 50.0
"""Without estimation the server sent ~880 a second into this link (docs/bottleneck.md)."""
MAX_LINK_DROPS_PER_S = 20.0
"""Without estimation the link dropped ~960 packets a second."""
MAX_ESTIMATED_AUDIO_LOSS = 0.03
"""Without estimation 14-19 % of the audio was lost; with it 0-0.4 % in five runs (audio
never waits for the pacer). The goal is under 1 %; the bound leaves room for a loaded
machine's own losses (see docs/bottleneck.md, "What does not work yet")."""
LIFT_TIMEOUT = 45.0
"""A bound on the wait, not a goal: the time taken is printed and recorded in docs."""


@pytest.mark.timeout(360)
async def test_with_estimation_a_viewer_behind_700_kbit_s_is_fitted_not_flooded() -> None:
    _require_tools()
    async with bottleneck_stage(
        downlink_kbit=ESTIMATED_KBIT,
        limited_viewport=LARGE,
        settings={"media.downlink_estimation": "true"},
    ) as stage:
        unlimited, limited = await measure(stage)
        lowest = await stage.lowest_widths()
        # The limit lifted: probing finds the room, and the tiles go back up.
        lifted_at = asyncio.get_running_loop().time()
        await stage.topology.set_downlink(None)
        await poll(
            stage.limited.stats,
            lambda stats: all(
                stats["byParticipant"].get(pid, {}).get("width", 0) > lowest[name]
                for pid, name in stage.names.items()
            ),
            timeout=LIFT_TIMEOUT,
            what="the limited viewer's tiles back above the smallest encoding",
            describe=stage.describe,
        )
        back_after = asyncio.get_running_loop().time() - lifted_at
        probes = (await stage.server.metrics()).get("stage_sfu_probe_clusters_total", 0.0)
    figures = [unlimited, limited]
    print(f"\n{table(figures)}\nlimit lifted: every tile up again after {back_after:.1f} s")  # noqa: T201

    _check_control(unlimited, figures)
    for tile in unlimited.tiles:
        _check(
            tile.width > lowest[tile.publisher],
            f"the unlimited viewer's large {tile.publisher} tile is on the smallest encoding",
            figures,
        )
    for tile in limited.tiles:
        _check(
            tile.audio_loss < MAX_ESTIMATED_AUDIO_LOSS,
            f"{tile.publisher}'s audio behind {ESTIMATED_KBIT} kbit/s lost {tile.audio_loss:.2%}",
            figures,
        )
        _check(
            tile.width == lowest[tile.publisher],
            f"the {tile.publisher} tile behind {ESTIMATED_KBIT} kbit/s gets {tile.width} wide, "
            f"not the smallest encoding ({lowest[tile.publisher]} wide) that fits",
            figures,
        )
    _check(
        limited.retransmissions_per_s < MAX_RETRANSMISSIONS_PER_S,
        f"the server resent {limited.retransmissions_per_s:.0f} packets a second",
        figures,
    )
    _check(probes > 0, "no probe cluster was sent: nothing could find the room", figures)
    _check(
        limited.link_drops_per_s < MAX_LINK_DROPS_PER_S,
        f"the link dropped {limited.link_drops_per_s:.0f} packets a second",
        figures,
    )
