"""The REMB a simulcast publisher is sent: what its viewers' tiles need, up at once,
down after a hold, never lowered by what a viewer's downlink carries."""

from __future__ import annotations

import pytest

from sfu.upstream_rate import (
    ALLOWANCE_BPS,
    HEADROOM,
    HOLD,
    WARM_UP,
    UpstreamRate,
    needed_bitrate,
)

CEILING = 3_000_000
# The web client's 720p ladder as Chromium sends it: each encoding at its target while a
# higher one is sent too.
LADDER = (150_000, 500_000, 1_500_000)


def _warm(rate: UpstreamRate, bitrates: tuple[int, ...] = LADDER) -> None:
    for _ in range(WARM_UP):
        rate.measured(bitrates)


def test_the_need_is_the_wanted_encodings_with_headroom() -> None:
    assert needed_bitrate(LADDER, 0, CEILING) == round(150_000 * HEADROOM) + ALLOWANCE_BPS
    assert needed_bitrate(LADDER, 1, CEILING) == round(650_000 * HEADROOM) + ALLOWANCE_BPS


def test_the_need_stays_under_what_starts_the_next_encoding() -> None:
    # Chromium starts an encoding once the lower ones have their targets and its
    # minimum is left: 720p's top needs 150 + 500 + 600 kbit/s, 360p's middle 150 + 150.
    assert needed_bitrate(LADDER, 1, CEILING) < 1_250_000
    assert needed_bitrate(LADDER, 0, CEILING) < 300_000
    # ... and over what keeps the wanted ones running (the highest at its minimum).
    assert needed_bitrate(LADDER, 1, CEILING) > 150_000 + 150_000 + ALLOWANCE_BPS


def test_the_top_encoding_or_an_unknown_rate_asks_for_the_ceiling() -> None:
    assert needed_bitrate(LADDER, 2, CEILING) == CEILING
    assert needed_bitrate((150_000, 0, 1_500_000), 1, CEILING) == CEILING
    assert needed_bitrate((150_000,), 0, CEILING) == CEILING  # one encoding: nothing to stop
    assert needed_bitrate(LADDER, 1, 500_000) == 500_000  # never above the ceiling


def test_nobody_watching_asks_for_the_lowest_encoding_not_nothing() -> None:
    rate = UpstreamRate(layers=3, ceiling=CEILING)
    _warm(rate)
    assert rate.wanted == 0
    assert rate.ask(0.0) == (needed_bitrate(LADDER, 0, CEILING), 0)


def test_the_ceiling_until_the_encodings_were_measured_for_a_few_seconds() -> None:
    rate = UpstreamRate(layers=3, ceiling=CEILING)
    for _ in range(WARM_UP - 1):
        rate.measured(LADDER)
        assert rate.ask(0.0)[0] == CEILING
    rate.measured(LADDER)
    assert rate.ask(0.0)[0] < CEILING


def test_the_highest_encoding_any_viewer_wants_sets_the_need() -> None:
    rate = UpstreamRate(layers=3, ceiling=CEILING)
    _warm(rate)
    for _ in range(50):
        rate.want(None, 0)  # fifty thumbnails
    rate.want(None, 1)  # one medium tile
    assert rate.ask(0.0) == (needed_bitrate(LADDER, 1, CEILING), 1)
    rate.want(None, 2)  # one large tile
    assert rate.ask(0.0) == (CEILING, 2)


def test_a_rise_is_due_at_once_and_a_fall_waits_for_the_hold() -> None:
    rate = UpstreamRate(layers=3, ceiling=CEILING)
    _warm(rate)
    rate.want(None, 0)
    assert rate.ask(10.0)[1] == 0
    assert not rate.rose(10.0)

    rate.want(0, 2)  # the viewer enlarged its tile
    assert rate.rose(10.02)
    assert rate.ask(10.02) == (CEILING, 2)
    assert not rate.rose(10.04)  # asked for

    rate.want(2, 0)  # and shrank it again
    assert rate.ask(10.5) == (CEILING, 2)
    rate.want(0, 2)  # a flicker: back up within the hold, which starts over
    assert rate.layer(12.0) == 2
    rate.want(2, 0)
    assert rate.layer(12.5) == 2
    assert rate.ask(12.5 + HOLD - 0.1)[1] == 2
    assert rate.ask(12.5 + HOLD) == (needed_bitrate(LADDER, 0, CEILING), 0)


def test_consumers_that_stop_wanting_are_forgotten() -> None:
    rate = UpstreamRate(layers=3, ceiling=CEILING)
    rate.want(None, 2)
    rate.want(None, 1)
    assert rate.wanted == 2
    rate.want(2, None)  # hidden, paused or closed
    assert rate.wanted == 1
    rate.want(1, None)
    assert rate.wanted == 0


def test_the_top_encodings_share_of_the_budget_does_not_count_as_its_need() -> None:
    # With the top switched off the middle encoding is the highest sent, and Chromium
    # gives it what the budget leaves, up to its maximum: the need stays on its target.
    rate = UpstreamRate(layers=3, ceiling=CEILING)
    _warm(rate)
    rate.want(None, 1)
    for _ in range(10):
        rate.measured((150_000, 700_000, 0))
    assert rate.ask(0.0)[0] == needed_bitrate(LADDER, 1, CEILING)


def test_an_encoding_never_sent_below_another_uses_any_rate_it_was_seen_at() -> None:
    rate = UpstreamRate(layers=3, ceiling=CEILING)
    _warm(rate, (150_000, 400_000, 0))  # the publisher's uplink never carried the top
    rate.want(None, 1)
    assert rate.ask(0.0)[0] == needed_bitrate((150_000, 400_000, 0), 1, CEILING)


def test_a_still_picture_lowers_the_need_only_slowly() -> None:
    rate = UpstreamRate(layers=3, ceiling=CEILING)
    _warm(rate)
    rate.want(None, 1)
    before = rate.ask(0.0)[0]
    for _ in range(3):
        rate.measured((30_000, 60_000, 200_000))
    after = rate.ask(0.0)[0]
    assert before * 0.9 < after < before


def test_a_switched_off_encoding_keeps_its_rate_for_when_it_is_wanted_again() -> None:
    rate = UpstreamRate(layers=3, ceiling=CEILING)
    _warm(rate)
    for _ in range(30):
        rate.measured((150_000, 0, 0))
    rate.want(None, 1)
    assert rate.ask(0.0)[0] == needed_bitrate(LADDER, 1, CEILING)


def test_layers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="layers"):
        UpstreamRate(layers=0, ceiling=CEILING)
