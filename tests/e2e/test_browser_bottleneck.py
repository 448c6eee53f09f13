"""Real browsers behind a real bottleneck: a viewer whose downlink tbf limits (in a
network namespace of its own, tests/netns.py) still plays every tile of a three-person
stage, because its small tiles ask for the smallest simulcast encoding.

There is no bandwidth estimation yet: what fits the link today is only what the tiles'
sizes choose. The figures are printed (``pytest -s``) and recorded with the baseline in
docs/bottleneck.md.
"""

from __future__ import annotations

import os

import pytest

from tests.e2e.bottleneck_stage import Figures, bottleneck_stage, measure, table
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


@pytest.mark.timeout(360)
async def test_a_small_viewer_behind_a_narrow_link_keeps_every_tile_playing() -> None:
    try:
        require_tools()
    except HarnessError as error:
        pytest.fail(str(error), pytrace=False)
    # Set-up and measurement are bounded inside (240 s and 50 s), below the timeout, whose
    # watchdog would end the process without removing the namespaces.
    async with bottleneck_stage(downlink_kbit=DOWNLINK_KBIT) as stage:
        unlimited, limited = await measure(stage)
        lowest = await stage.lowest_widths()
    figures = [unlimited, limited]
    print(f"\n{table(figures)}")  # noqa: T201  (pytest -s shows the figures)

    # The unlimited viewer is the control: if it does not play either, the machine (two
    # cores for the server and five browsers) was too busy to say anything about the link.
    load = os.getloadavg()[0]
    for tile in unlimited.tiles:
        _check(
            tile.fps >= MIN_FPS and tile.audio_loss < MAX_AUDIO_LOSS,
            f"the unlimited viewer's {tile.publisher} tile, on no limited link, plays at "
            f"{tile.fps:.1f} fps with {tile.audio_loss:.2%} audio loss: the machine is too "
            f"busy to measure the link (load average {load:.1f} on {os.cpu_count()} cores)",
            figures,
        )
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
