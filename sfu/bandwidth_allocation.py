"""Dividing one viewer's estimated downlink over the tracks it receives.

Audio comes first and is never cut: a stage you cannot hear is worse than one you
cannot see. Video tracks are served in priority order (shared content, then the
active speaker, then the rest): each first gets its lowest encoding, and a track
whose lowest encoding no longer fits is paused rather than letting every track lose
packets; what is left then lifts tracks one encoding at a time, highest priority
first, up to what each tile needs. Going up costs a margin more than staying, so an
estimate hovering at a boundary does not make a tile switch back and forth.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

PAUSED = -1
# An encoding above the one forwarded now must fit with this much to spare.
UPGRADE_MARGIN = 1.15


@dataclass(frozen=True, slots=True)
class VideoDemand:
    """What one video track could take.

    `bitrates` are its encodings' measured rates, lowest first, 0 for one the
    publisher is not sending; `ceiling` the highest encoding its tile needs
    (PAUSED: hidden, it needs nothing); `current` the encoding it gets now.
    """

    key: Hashable
    priority: int
    bitrates: Sequence[int]
    ceiling: int
    current: int


def allocate(
    budget_bps: float, audio_bps: float, videos: Sequence[VideoDemand]
) -> dict[Hashable, int]:
    """The encoding each video track gets (PAUSED for none) within `budget_bps`,
    after `audio_bps` of audio."""
    left = budget_bps - audio_bps
    order = sorted(range(len(videos)), key=lambda i: -videos[i].priority)  # stable
    chosen: dict[Hashable, int] = {}
    for i in order:
        demand = videos[i]
        lowest = _sent_layers(demand)[:1]
        chosen[demand.key] = PAUSED
        if demand.ceiling == PAUSED:
            continue
        if not lowest:  # nothing measured (yet): it costs nothing, and nothing is known
            chosen[demand.key] = demand.ceiling
            continue
        cost = _cost(demand, lowest[0])
        if cost <= left:
            chosen[demand.key] = lowest[0]
            left -= cost
    lifted = True
    while lifted:
        lifted = False
        for i in order:
            demand = videos[i]
            layer = chosen[demand.key]
            if layer == PAUSED or not any(demand.bitrates):
                continue
            above = [x for x in _sent_layers(demand) if layer < x <= demand.ceiling]
            if not above:
                continue
            extra = _cost(demand, above[0]) - _cost(demand, layer)
            if extra <= left:
                chosen[demand.key] = above[0]
                left -= extra
                lifted = True
    return chosen


def _sent_layers(demand: VideoDemand) -> list[int]:
    return [layer for layer, bps in enumerate(demand.bitrates) if bps > 0]


def _cost(demand: VideoDemand, layer: int) -> float:
    bps = float(demand.bitrates[layer])
    return bps * UPGRADE_MARGIN if layer > demand.current else bps
