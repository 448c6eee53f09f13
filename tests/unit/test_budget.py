"""Token buckets for per-identity rate limits."""

from __future__ import annotations

import pytest

from signaling.budget import TokenBucket


def test_a_bucket_allows_its_burst_at_once_then_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)

    assert [bucket.take(10.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(10.0) == pytest.approx(0.5)


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=3)
    for _ in range(3):
        bucket.take(0.0)

    assert bucket.take(0.5) == 0.0
    assert bucket.take(0.5) > 0
    assert [bucket.take(100.0) for _ in range(4)][:3] == [0.0, 0.0, 0.0]
    assert bucket.take(100.0) > 0


def test_refused_takes_do_not_push_the_next_token_further_away() -> None:
    bucket = TokenBucket(rate=1.0, burst=1)
    bucket.take(0.0)
    for _ in range(1000):
        bucket.take(0.5)

    assert bucket.take(1.0) == 0.0
