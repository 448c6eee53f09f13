from __future__ import annotations

import pytest

from sfu.keyframes import KeyFrameRequestThrottle


def test_first_request_is_sent_immediately() -> None:
    throttle = KeyFrameRequestThrottle()
    assert throttle.request(1111, 0.0) is True
    assert throttle.pending == []


def test_hundred_requests_in_one_second_give_one_immediate_and_one_deferred() -> None:
    throttle = KeyFrameRequestThrottle(min_interval=1.0)
    immediate = 0
    deferred: list[int] = []
    for i in range(100):
        now = i * 0.01
        immediate += throttle.request(1111, now)
        deferred += throttle.due(now)
    for k in range(1, 31):
        deferred += throttle.due(0.99 + k * 0.01)
    assert immediate == 1
    assert deferred == [1111]


def test_deferred_request_is_due_only_after_the_interval() -> None:
    throttle = KeyFrameRequestThrottle(min_interval=1.0)
    throttle.request(1, 0.0)
    assert throttle.request(1, 0.2) is False
    assert throttle.due(0.5) == []
    assert throttle.due(0.999) == []
    assert throttle.due(1.0) == [1]
    assert throttle.due(1.5) == []


def test_due_marks_the_request_sent_so_the_next_one_waits_again() -> None:
    throttle = KeyFrameRequestThrottle(min_interval=1.0)
    throttle.request(1, 0.0)
    throttle.request(1, 0.5)
    assert throttle.due(1.2) == [1]
    assert throttle.request(1, 1.5) is False
    assert throttle.due(2.1) == []
    assert throttle.due(2.2) == [1]


def test_key_frame_cancels_the_deferred_request() -> None:
    throttle = KeyFrameRequestThrottle(min_interval=1.0)
    throttle.request(1, 0.0)
    throttle.request(1, 0.3)
    throttle.key_frame_received(1)
    assert throttle.pending == []
    assert throttle.due(2.0) == []


def test_key_frame_does_not_lift_the_throttle() -> None:
    throttle = KeyFrameRequestThrottle(min_interval=1.0)
    throttle.request(1, 0.0)
    throttle.key_frame_received(1)
    assert throttle.request(1, 0.5) is False


def test_request_after_the_interval_is_sent_immediately_and_clears_pending() -> None:
    throttle = KeyFrameRequestThrottle(min_interval=1.0)
    throttle.request(1, 0.0)
    throttle.request(1, 0.4)
    assert throttle.request(1, 1.0) is True
    assert throttle.due(5.0) == []


def test_ssrcs_are_throttled_independently() -> None:
    throttle = KeyFrameRequestThrottle(min_interval=1.0)
    assert throttle.request(1, 0.0) is True
    assert throttle.request(2, 0.1) is True
    assert throttle.request(1, 0.2) is False
    assert throttle.request(2, 0.3) is False
    assert throttle.due(1.05) == [1]
    assert throttle.due(1.15) == [2]


def test_due_reports_in_request_order() -> None:
    throttle = KeyFrameRequestThrottle(min_interval=1.0)
    for ssrc in (3, 1, 2):
        throttle.request(ssrc, 0.0)
    for ssrc in (2, 3, 1):
        throttle.request(ssrc, 0.5)
    assert throttle.due(1.0) == [2, 3, 1]


def test_forget_drops_pending_and_history() -> None:
    throttle = KeyFrameRequestThrottle(min_interval=1.0)
    throttle.request(1, 0.0)
    throttle.request(1, 0.1)
    throttle.forget(1)
    assert throttle.due(5.0) == []
    assert throttle.request(1, 0.2) is True


def test_zero_interval_never_defers() -> None:
    throttle = KeyFrameRequestThrottle(min_interval=0.0)
    assert all(throttle.request(1, 0.0) for _ in range(5))


def test_negative_interval_is_rejected() -> None:
    with pytest.raises(ValueError, match="min_interval"):
        KeyFrameRequestThrottle(min_interval=-0.1)
