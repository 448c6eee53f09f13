from __future__ import annotations

from benchmarks.__main__ import _parser, _specs


def _runs(*argv: str) -> list[tuple[int | None, int]]:
    return [(spec.workers, spec.viewers) for spec in _specs(_parser().parse_args(list(argv)))]


def test_viewers_per_worker_offers_every_worker_count_the_same_load_per_worker() -> None:
    runs = _runs("capacity", "--viewers", "80,84", "--workers", "1,2", "--viewers-per-worker")

    assert runs == [(1, 80), (2, 160), (1, 84), (2, 168)]


def test_without_it_every_worker_count_gets_the_same_viewers() -> None:
    assert _runs("capacity", "--viewers", "80", "--workers", "1,2") == [(1, 80), (2, 80)]


def test_simulcast_runs_each_point_with_one_encoding_then_three_and_the_same_viewers() -> None:
    specs = _specs(_parser().parse_args(["simulcast", "--viewers", "30,60", "--fanout", "both"]))

    shape = [(s.viewers, s.target, s.simulcast) for s in specs]
    assert shape == [
        (30, "sfu", False),
        (30, "sfu", True),
        (30, "sfu-python", False),
        (30, "sfu-python", True),
        (60, "sfu", False),
        (60, "sfu", True),
        (60, "sfu-python", False),
        (60, "sfu-python", True),
    ]
    # Both runs of a point: viewers on tiles for each encoding, the room on one worker.
    assert {s.view_heights for s in specs} == {(90, 180, 360)}
    assert {s.sfu_options for s in specs} == {("rooms.spread_after=1000000",)}


def test_simulcast_keeps_a_spread_setting_it_is_given() -> None:
    argv = ["simulcast", "--sfu-option", "rooms.spread_after=0", "--view-heights", "0,90"]
    (single, simulcast) = _specs(_parser().parse_args(argv))

    assert single.sfu_options == simulcast.sfu_options == ("rooms.spread_after=0",)
    assert single.view_heights == simulcast.view_heights == (0, 90)
