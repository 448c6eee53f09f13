"""Dividing a viewer's estimate over its tracks: audio first, video by priority, each
track through its options (fewer frames of its lowest encoding, then each encoding)."""

from __future__ import annotations

from collections.abc import Sequence

from sfu.bandwidth_allocation import (
    PAUSED,
    UPGRADE_MARGIN,
    Option,
    VideoDemand,
    allocate,
)
from sfu.rtp.temporal import ALL_TEMPORAL_LAYERS

LADDER = (150_000, 500_000, 1_500_000)
ALL = ALL_TEMPORAL_LAYERS


def video(
    key: str,
    *,
    priority: int = 1,
    bitrates: Sequence[int] = LADDER,
    temporal: Sequence[int] = (),
    current: int = 2,
) -> VideoDemand:
    """A track whose options are `temporal` (cumulative rates of the lowest encoding's
    temporal layers below its whole rate), then each encoding of `bitrates`."""
    options = [Option(0, t, bps) for t, bps in enumerate(temporal)]
    options += [Option(layer, ALL, bps) for layer, bps in enumerate(bitrates)]
    return VideoDemand(key=key, priority=priority, options=options, current=current)


def test_enough_for_everyone_gives_every_tile_what_it_needs() -> None:
    chosen = allocate(10_000_000, 100_000, [video("a"), video("b", bitrates=LADDER[:2])])
    assert chosen == {"a": 2, "b": 1}


def test_a_tight_link_lowers_the_low_priority_tracks_first() -> None:
    tracks = [video("speaker", priority=2), video("other")]
    # audio 100k + both at h (1M) + 1M more: the speaker gets f, the other stays on h
    chosen = allocate(100_000 + 500_000 + 1_500_000 + 100_000, 100_000, tracks)
    assert chosen == {"speaker": 2, "other": 1}


def test_audio_is_budgeted_first_and_video_paused_when_nothing_fits() -> None:
    tracks = [video("screen", priority=3), video("a"), video("b")]
    chosen = allocate(450_000, 120_000, tracks)
    # 330k left: the screen and one camera at q; the lowest priority is paused
    assert chosen == {"screen": 0, "a": 0, "b": PAUSED}
    assert allocate(100_000, 120_000, tracks) == {"screen": PAUSED, "a": PAUSED, "b": PAUSED}


def test_fewer_frames_of_the_lowest_encoding_come_before_a_pause() -> None:
    # q at 150k whole, 75k for TID 0 alone, 110k for TIDs 0 and 1.
    tracks = [video(k, temporal=(75_000, 110_000), current=2) for k in "abc"]
    assert allocate(3 * 150_000, 0, tracks) == {"a": 2, "b": 2, "c": 2}
    assert allocate(3 * 110_000, 0, tracks) == {"a": 1, "b": 1, "c": 1}
    # Lifted one step at a time, round the tracks: the frames are shared out evenly.
    assert allocate(150_000 + 2 * 110_000, 0, tracks) == {"a": 2, "b": 1, "c": 1}
    # Two fit at TID 0, the third does not, and what it would have had lifts the two.
    assert allocate(3 * 75_000 - 1, 0, tracks) == {"a": 1, "b": 1, "c": PAUSED}


def test_a_hidden_tile_gets_nothing_and_costs_nothing() -> None:
    hidden = VideoDemand(key="hidden", priority=5, options=(), current=PAUSED)
    chosen = allocate(700_000, 0, [hidden, video("shown")])
    assert chosen == {"hidden": PAUSED, "shown": 1}


def test_a_track_not_measured_yet_costs_nothing() -> None:
    new = VideoDemand(key="new", priority=1, options=(Option(1, ALL, 0),), current=PAUSED)
    chosen = allocate(200_000, 0, [new, video("a")])
    assert chosen == {"new": 0, "a": 0}


def test_going_up_needs_a_margin_staying_does_not() -> None:
    on_h = video("a", current=1)
    just_enough = LADDER[2]
    assert allocate(just_enough, 0, [on_h]) == {"a": 1}  # f fits, but not with the margin
    assert allocate(just_enough * UPGRADE_MARGIN, 0, [on_h]) == {"a": 2}
    on_f = video("a", current=2)
    assert allocate(just_enough, 0, [on_f]) == {"a": 2}  # already there: it stays
