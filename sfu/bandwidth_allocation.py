"""Dividing one viewer's estimated downlink over the tracks it receives.

Audio comes first and is never cut: a stage you cannot hear is worse than one you
cannot see. Each video track offers *options*, cheapest first: its lowest encoding
at a reduced frame rate (fewer VP8 temporal layers) where the publisher sends them,
that encoding whole, then each higher encoding up to what its tile needs. Tracks are
served in priority order (the higher of the producer's, which the room raises for
shared content, and the consumer's own): each first gets its cheapest option, and a
track whose cheapest option no longer fits is paused rather than letting every track
lose packets; what is left then lifts tracks one option at a time, highest priority
first. Going up costs a margin more
than staying, so an estimate hovering at a boundary does not make a tile switch back
and forth.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

PAUSED = -1
# An option above the one forwarded now must fit with this much to spare.
UPGRADE_MARGIN = 1.15


@dataclass(frozen=True, slots=True)
class Option:
    """One way to forward a track: an encoding (0 = lowest), the highest VP8 temporal
    layer of it, and what that costs (0 while unmeasured)."""

    layer: int
    temporal: int
    bps: int


@dataclass(frozen=True, slots=True)
class VideoDemand:
    """What one video track could take: its `options`, cheapest first (none: its tile
    is hidden and needs nothing), and the index of the one it gets now (PAUSED:
    none)."""

    key: Hashable
    priority: int
    options: Sequence[Option]
    current: int


def allocate(
    budget_bps: float, audio_bps: float, videos: Sequence[VideoDemand]
) -> dict[Hashable, int]:
    """The option each video track gets (an index into its options, PAUSED for none)
    within `budget_bps`, after `audio_bps` of audio."""
    left = budget_bps - audio_bps
    order = sorted(range(len(videos)), key=lambda i: -videos[i].priority)  # stable
    chosen: dict[Hashable, int] = {}
    for i in order:
        demand = videos[i]
        chosen[demand.key] = PAUSED
        if not demand.options:
            continue
        cost = _cost(demand, 0)
        if cost <= left:
            chosen[demand.key] = 0
            left -= cost
    lifted = True
    while lifted:
        lifted = False
        for i in order:
            demand = videos[i]
            index = chosen[demand.key]
            if index == PAUSED or index + 1 >= len(demand.options):
                continue
            extra = _cost(demand, index + 1) - _cost(demand, index)
            if extra <= left:
                chosen[demand.key] = index + 1
                left -= extra
                lifted = True
    return chosen


def _cost(demand: VideoDemand, index: int) -> float:
    bps = float(demand.options[index].bps)
    return bps * UPGRADE_MARGIN if index > demand.current else bps
