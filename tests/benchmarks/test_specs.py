from __future__ import annotations

from benchmarks.__main__ import _parser, _specs


def _runs(*argv: str) -> list[tuple[int | None, int]]:
    return [(spec.workers, spec.viewers) for spec in _specs(_parser().parse_args(list(argv)))]


def test_viewers_per_worker_offers_every_worker_count_the_same_load_per_worker() -> None:
    runs = _runs("capacity", "--viewers", "80,84", "--workers", "1,2", "--viewers-per-worker")

    assert runs == [(1, 80), (2, 160), (1, 84), (2, 168)]


def test_without_it_every_worker_count_gets_the_same_viewers() -> None:
    assert _runs("capacity", "--viewers", "80", "--workers", "1,2") == [(1, 80), (2, 80)]
