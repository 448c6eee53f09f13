"""The native egress's pacer: a burst leaves at the set rate, audio overtakes waiting
video, transport-wide numbers and the send log follow the order and time packets leave,
and every bound (longest wait, queue size, close, forget) holds."""

from __future__ import annotations

import pytest

from sfu import fastpath
from tests import pacing_scenarios as scenarios

pytestmark = pytest.mark.skipif(
    not fastpath.native_available(), reason="the native extension is not built"
)

RATE = 400_000  # bit/s: 50 kB/s, a 1 kB packet every 20 ms
BURST = 20  # packets: 0.4 s at the rate, within the longest wait (1 s)


def test_a_burst_leaves_at_the_pacing_rate_in_order() -> None:
    departures = scenarios.burst_at_a_rate(RATE, BURST)

    assert [d.sequence for d in departures] == list(range(BURST))
    bytes_per_second = RATE / 8
    sent = 0
    for departure in departures:
        sent += departure.size
        # Never ahead of the rate by more than one packet (the budget may go one over),
        # never behind it by more than one packet and the 1 ms flush step.
        allowed = bytes_per_second * departure.at
        assert sent <= allowed + departure.size
        assert sent >= allowed - departure.size - bytes_per_second * 0.001
    # Twenty 1 kB packets at 50 kB/s: about 0.4 s, not at once.
    expected = BURST * departures[0].size / bytes_per_second
    assert departures[-1].at == pytest.approx(expected, abs=0.03)


def test_an_unpaced_burst_leaves_at_once() -> None:
    departures = scenarios.burst_at_a_rate(0, BURST)

    assert len(departures) == BURST and {d.at for d in departures} == {0.0}


def test_audio_overtakes_waiting_video_and_numbers_follow_departure() -> None:
    departures, log = scenarios.audio_behind_a_burst()

    assert departures[0].ssrc == scenarios.AUDIO_SSRC  # built after the video, sent before
    assert [d.transport_sequence for d in departures] == list(range(len(departures)))
    # The send log has each number's real departure time and size on the wire.
    assert log == [(d.at, d.size) for d in departures]
    video_times = [d.at for d in departures if d.ssrc == scenarios.VIDEO_SSRC]
    assert video_times[-1] > 0.15  # 20 kB at 100 kB/s


def test_probe_padding_does_not_wait_for_the_pacer() -> None:
    # A probe measures the link at the cluster's rate; held by the pacer it would
    # measure the pacing rate.
    assert scenarios.padding_behind_a_burst() == (5, 0)


def test_nothing_waits_longer_than_a_second() -> None:
    early, late, (waiting, waiting_bytes, overdue) = scenarios.overdue_after_the_longest_wait()

    assert early <= 2  # 1 kB/s lets about one packet through in 0.9 s
    assert late == 10 and waiting == waiting_bytes == 0
    assert overdue >= 8


def test_switching_pacing_off_sends_what_waits() -> None:
    paced, after = scenarios.pacing_switched_off()

    assert paced <= 1 and after == 10


def test_a_closed_egress_drops_what_its_pacer_holds() -> None:
    sent, (packets_sent, _, dropped), (waiting, _, _) = scenarios.closed_while_holding()

    assert sent == 0 and waiting == 0
    assert packets_sent + dropped == 10  # the three forwarded after the close never reached it


def test_forgetting_an_ssrc_drops_its_waiting_copies_and_keeps_the_table_small() -> None:
    sent, tracked, waiting = scenarios.forgotten_while_waiting()

    assert sent == 0 and waiting == 0
    assert tracked == 1  # the audio SSRC only


def test_the_queue_is_bounded_and_the_oldest_go_first() -> None:
    sent, (waiting, waiting_bytes, overdue) = scenarios.more_than_the_queue_holds(1100)

    assert waiting == 1024 and waiting_bytes > 1024 * scenarios.PAYLOAD
    assert sent == overdue == 1100 - 1024
