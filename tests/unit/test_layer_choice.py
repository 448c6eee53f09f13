"""Which simulcast encoding a viewer gets, from its tile and what the publisher sends."""

from __future__ import annotations

from sfu.layer_choice import available_layer, fitting_layer


def test_the_smallest_encoding_that_fills_the_tile_is_chosen() -> None:
    heights = [180, 360, 720]
    assert fitting_layer(heights, 90) == 0
    assert fitting_layer(heights, 180) == 0
    assert fitting_layer(heights, 200) == 0  # within the upscale slack
    assert fitting_layer(heights, 300) == 1
    assert fitting_layer(heights, 700) == 2


def test_a_tile_taller_than_every_encoding_gets_the_tallest() -> None:
    assert fitting_layer([180, 360, 720], 2160) == 2


def test_no_limit_or_one_encoding_means_the_top() -> None:
    assert fitting_layer([180, 360, 720], 0) == 2
    assert fitting_layer([720], 100) == 0
    assert fitting_layer([], 100) == 0


def test_unknown_heights_are_estimated_down_the_ladder_from_the_tallest_known() -> None:
    # Only the top is known (720): the others are taken as 360 and 180.
    assert fitting_layer([0, 0, 720], 150) == 0
    assert fitting_layer([0, 0, 720], 300) == 1
    # Nothing known yet: the top, until key frames tell.
    assert fitting_layer([0, 0, 0], 150) == 2


def test_the_highest_sent_encoding_within_the_preference_is_forwarded() -> None:
    assert available_layer(2, [0, 1, 2]) == 2
    assert available_layer(2, [0, 1]) == 1  # the top one stopped
    assert available_layer(1, [0, 2]) == 0


def test_above_the_preference_only_when_nothing_lower_is_sent() -> None:
    assert available_layer(0, [1, 2]) == 1
    assert available_layer(1, []) == 1  # nothing measured yet: as preferred
