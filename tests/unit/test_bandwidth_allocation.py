"""Dividing a viewer's estimate over its tracks: audio first, video by priority."""

from __future__ import annotations

from collections.abc import Sequence

from sfu.bandwidth_allocation import PAUSED, UPGRADE_MARGIN, VideoDemand, allocate

LADDER = (150_000, 500_000, 1_500_000)


def video(
    key: str,
    *,
    priority: int = 1,
    bitrates: Sequence[int] = LADDER,
    ceiling: int = 2,
    current: int = 2,
) -> VideoDemand:
    return VideoDemand(
        key=key, priority=priority, bitrates=bitrates, ceiling=ceiling, current=current
    )


def test_enough_for_everyone_gives_every_tile_what_it_needs() -> None:
    chosen = allocate(10_000_000, 100_000, [video("a"), video("b", ceiling=1)])
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


def test_a_hidden_tile_gets_nothing_and_costs_nothing() -> None:
    chosen = allocate(700_000, 0, [video("hidden", ceiling=PAUSED, priority=5), video("shown")])
    assert chosen == {"hidden": PAUSED, "shown": 1}


def test_an_encoding_the_publisher_does_not_send_is_skipped() -> None:
    chosen = allocate(10_000_000, 0, [video("a", bitrates=(150_000, 0, 1_500_000))])
    assert chosen == {"a": 2}
    chosen = allocate(1_000_000, 0, [video("a", bitrates=(150_000, 0, 1_500_000))])
    assert chosen == {"a": 0}


def test_a_track_not_measured_yet_keeps_its_tile_s_choice_and_costs_nothing() -> None:
    chosen = allocate(200_000, 0, [video("new", bitrates=(0, 0, 0), ceiling=1), video("a")])
    assert chosen == {"new": 1, "a": 0}


def test_going_up_needs_a_margin_staying_does_not() -> None:
    on_h = video("a", current=1)
    just_enough = LADDER[2]
    assert allocate(just_enough, 0, [on_h]) == {"a": 1}  # f fits, but not with the margin
    assert allocate(just_enough * UPGRADE_MARGIN, 0, [on_h]) == {"a": 2}
    on_f = video("a", current=2)
    assert allocate(just_enough, 0, [on_f]) == {"a": 2}  # already there: it stays
