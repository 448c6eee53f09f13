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
    throttle.key_frame_received(1)  # answered: nothing deferred or to retry remains
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


def test_a_request_no_key_frame_answers_is_retried_with_backoff() -> None:
    throttle = KeyFrameRequestThrottle(min_interval=1.0)
    assert throttle.request(1, 0.0) is True
    assert throttle.due(0.9) == []
    assert throttle.due(1.0) == [1]  # 1 s without a key frame
    assert throttle.due(2.9) == []
    assert throttle.due(3.0) == [1]  # then 2 s
    assert throttle.due(7.0) == [1]  # then 4 s
    assert throttle.due(14.9) == []
    assert throttle.due(15.0) == [1]  # then 8 s, and 8 s from then on
    assert throttle.due(23.0) == [1]


def test_a_key_frame_ends_the_retries() -> None:
    throttle = KeyFrameRequestThrottle(min_interval=1.0)
    throttle.request(1, 0.0)
    throttle.key_frame_received(1)
    assert throttle.due(10.0) == []


def test_retries_stop_when_no_one_wants_the_key_frame_any_more() -> None:
    throttle = KeyFrameRequestThrottle(min_interval=1.0)
    throttle.request(1, 0.0)
    assert throttle.due(1.0, lambda ssrc: False) == []
    assert throttle.due(10.0) == []  # dropped, not just skipped


def test_retries_give_up_after_thirty_seconds() -> None:
    throttle = KeyFrameRequestThrottle(min_interval=1.0)
    throttle.request(1, 0.0)
    sent = [t for t in range(0, 60) if throttle.due(float(t))]
    assert sent == [1, 3, 7, 15, 23]  # the next would be at 31 s: past 30 s, given up
    assert throttle.request(1, 60.0) is True  # a new request starts over
    assert throttle.due(61.0) == [1]
