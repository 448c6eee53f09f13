"""Which simulcast encoding a viewer should get, from what it shows and what the
publisher sends. Pure functions: the consumer applies the answer (switching at the
next key frame of the chosen encoding)."""

from __future__ import annotations

from collections.abc import Sequence

# A tile up to this much taller than an encoding still takes it: scaling up by a
# few percent is invisible and saves the next encoding's bitrate.
_UPSCALE_SLACK = 1.15


def fitting_layer(heights: Sequence[int], tile_height: int) -> int:
    """The lowest encoding that fills a tile `tile_height` device pixels tall, else the
    tallest. `heights` are the encodings' picture heights, lowest first, 0 where not
    known yet: those are estimated as halving per encoding below the tallest known
    (the usual simulcast ladder), or, with none known, the top encoding is taken."""
    top = len(heights) - 1
    if tile_height <= 0 or top <= 0:
        return max(top, 0)
    known = [(layer, h) for layer, h in enumerate(heights) if h > 0]
    if not known:
        return top
    anchor_layer, anchor_height = known[-1]
    for layer, height in enumerate(heights):
        estimated = height or anchor_height / 2 ** (anchor_layer - layer)
        if estimated * _UPSCALE_SLACK >= tile_height:
            return layer
    return top


def available_layer(preferred: int, active: Sequence[int]) -> int:
    """The encoding to forward when `preferred` is wanted and the publisher sends
    `active` (ascending): the highest active one not above the preference, else the
    lowest active one, else the preference itself (nothing measured yet)."""
    below = [layer for layer in active if layer <= preferred]
    if below:
        return below[-1]
    return active[0] if active else preferred
