"""Producer + Consumer together, repairing what a viewer lost: key-frame requests
(relayed, throttled, retried, limited per viewer) and NACKs (answered from the
history, within the viewer's repair budget)."""

from __future__ import annotations

from sfu.options import MediaOptions
from sfu.repair_budget import RepairBudget
from sfu.types import MediaKind
from tests.forwarding_harness import (
    PUB_MID,
    PUB_MID_ID,
    PUB_ORIENTATION_ID,
    PUB_SSRC,
    VIDEO_FRAME,
    Harness,
    Viewer,
)
from tests.packets import make_vp8_payload, parse_rtp

# -- key frames -----------------------------------------------------------------


def test_video_viewer_starts_on_a_key_frame_and_asks_the_publisher_for_one() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(initial_sequence=77)

    (pli,) = h.plis()
    assert pli.media_ssrc == PUB_SSRC
    h.video(1, 0)
    h.video(2, VIDEO_FRAME)
    assert viewer.rtp.sent == []

    h.video(3, 2 * VIDEO_FRAME, keyframe=True, marker=False)
    h.video(4, 2 * VIDEO_FRAME, start=False, body=b"rest of the key frame")
    h.video(5, 3 * VIDEO_FRAME)
    views = viewer.packets
    assert [v.sequence_number for v in views] == [77, 78, 79]
    assert views[1].payload == make_vp8_payload(True, start=False, body=b"rest of the key frame")
    assert h.producer.key_frames_received == 1


def test_a_key_frame_request_that_gets_no_answer_is_sent_again_until_one_arrives() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    assert len(h.plis()) == 1
    h.tick_for(0.9)
    assert len(h.plis()) == 1
    h.tick_for(0.2)
    assert len(h.plis()) == 2  # the first was lost: asked again after 1 s
    h.tick_for(2.0)
    assert len(h.plis()) == 3  # then 2 s later
    h.video(1, 0, keyframe=True)
    h.tick_for(20.0)
    assert len(h.plis()) == 3  # answered: no more requests
    assert [v.sequence_number for v in viewer.packets] == [1000]


def test_resumed_video_viewer_waits_for_the_next_key_frame() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    h.video(1, 0, keyframe=True)
    h.video(2, VIDEO_FRAME)
    viewer.consumer.pause()
    h.clock.advance(1.5)  # past the PLI throttle interval
    h.upstream.clear()

    viewer.consumer.resume()
    (pli,) = h.plis()
    assert pli.media_ssrc == PUB_SSRC
    h.video(3, 2 * VIDEO_FRAME)
    assert len(viewer.rtp.sent) == 2
    h.video(4, 3 * VIDEO_FRAME, keyframe=True)
    assert len(viewer.rtp.sent) == 3


def test_a_paused_viewers_key_frame_request_is_not_relayed() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    viewer.consumer.pause()
    h.clock.advance(1.5)
    h.upstream.clear()

    viewer.consumer.receive_key_frame_request()
    h.tick_for(2.0)

    assert h.plis() == []
    assert viewer.consumer.key_frame_requests_received == 1


def test_audio_viewers_never_ask_for_key_frames() -> None:
    h = Harness(MediaKind.AUDIO)
    viewer = h.add_viewer()
    viewer.consumer.receive_key_frame_request()
    h.tick_for(2.0)

    assert h.plis() == []


def _hundred_ready_viewers(h: Harness) -> list[Viewer]:
    viewers = [h.add_viewer(ssrc=0xC000_0000 + i, mid=str(i)) for i in range(100)]
    h.tick_for(3.0)  # the PLIs their set_ready() caused are sent or released
    assert len(h.plis()) == 2
    h.video(0, 0, keyframe=True)  # they play: their own requests are relayed again
    h.upstream.clear()
    return viewers


def test_hundred_viewers_asking_within_a_second_cause_one_pli_then_one_deferred() -> None:
    h = Harness(MediaKind.VIDEO)
    viewers = _hundred_ready_viewers(h)
    first = h.clock.now()
    for viewer in viewers:
        viewer.consumer.receive_key_frame_request()
        h.clock.advance(0.0099)
        h.producer.tick(h.clock.now())
    assert h.clock.now() - first < 1.0
    assert len(h.plis()) == 1

    h.tick_for(3.0)
    plis = h.plis()
    assert len(plis) == 2
    assert {p.media_ssrc for p in plis} == {PUB_SSRC}
    times = h.pli_times()
    assert times[1] - times[0] >= 1.0
    assert sum(v.consumer.key_frame_requests_received for v in viewers) == 100


def test_a_key_frame_arriving_cancels_the_deferred_pli() -> None:
    h = Harness(MediaKind.VIDEO)
    viewers = _hundred_ready_viewers(h)
    for viewer in viewers:
        viewer.consumer.receive_key_frame_request()
        h.clock.advance(0.005)
        h.producer.tick(h.clock.now())
    assert len(h.plis()) == 1

    h.video(1, 0, keyframe=True)
    h.tick_for(3.0)
    assert len(h.plis()) == 1
    assert all(len(v.rtp.sent) == 2 for v in viewers)


def test_a_delta_frame_does_not_cancel_the_deferred_pli() -> None:
    h = Harness(MediaKind.VIDEO)
    viewers = _hundred_ready_viewers(h)
    viewers[0].consumer.receive_key_frame_request()
    viewers[1].consumer.receive_key_frame_request()
    h.video(1, 0, keyframe=False)
    h.tick_for(1.5)

    assert len(h.plis()) == 2


# -- NACKs from viewers -----------------------------------------------------------


def _video_stream(h: Harness, count: int, first_seq: int = 200) -> list[bytes]:
    sent = []
    for i in range(count):
        sent.append(
            h.video(
                first_seq + i,
                i * VIDEO_FRAME,
                keyframe=i == 0,
                body=bytes([i]) * 50,
                extensions=((PUB_MID_ID, PUB_MID), (PUB_ORIENTATION_ID, b"\x02")),
            )
        )
        h.clock.advance(0.033)
    return sent


def test_nack_is_answered_with_exactly_the_bytes_sent_the_first_time() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(initial_sequence=65530)
    _video_stream(h, 10)
    originals = list(viewer.rtp.sent)
    h.clock.advance(0.1)

    wanted = [originals[3], originals[7]]
    viewer.consumer.receive_nack([parse_rtp(p).sequence_number for p in wanted])

    assert viewer.rtp.sent[10:] == wanted
    assert viewer.consumer.retransmissions_sent == 2
    assert viewer.consumer.retransmission_misses == 0


def test_a_nack_repeated_within_50_ms_resends_once() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    _video_stream(h, 5)
    seq = viewer.packets[2].sequence_number

    viewer.consumer.receive_nack([seq])
    h.clock.advance(0.01)
    viewer.consumer.receive_nack([seq])
    assert viewer.consumer.retransmissions_sent == 1
    h.clock.advance(0.06)
    viewer.consumer.receive_nack([seq])
    assert viewer.consumer.retransmissions_sent == 2


def test_nack_for_a_sequence_never_sent_counts_a_miss() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(initial_sequence=1000)
    _video_stream(h, 5)  # output 1000..1004

    viewer.consumer.receive_nack([2000, 999])

    assert len(viewer.rtp.sent) == 5
    assert viewer.consumer.retransmission_misses == 2
    assert viewer.consumer.retransmissions_sent == 0


def test_nack_for_a_packet_the_publisher_never_delivered_counts_a_miss() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer(initial_sequence=1000)
    h.video(1, 0, keyframe=True)
    h.video(3, VIDEO_FRAME)  # 2 lost upstream: output 1001 is a hole

    viewer.consumer.receive_nack([1001])

    assert viewer.consumer.retransmission_misses == 1
    assert len(viewer.rtp.sent) == 2


def test_nack_for_a_packet_older_than_the_history_counts_a_miss() -> None:
    options = MediaOptions(retransmission_max_age=1.0, native_fastpath=False)
    h = Harness(MediaKind.VIDEO, options=options)
    viewer = h.add_viewer()
    _video_stream(h, 3)
    seq = viewer.packets[0].sequence_number
    h.clock.advance(1.5)

    viewer.consumer.receive_nack([seq])

    assert viewer.consumer.retransmission_misses == 1
    assert len(viewer.rtp.sent) == 3


def _budget(estimate_bps: int, media_bps: int) -> RepairBudget:
    budget = RepairBudget()
    budget.set_rates(estimate_bps, media_bps)
    return budget


def test_a_nack_flood_on_a_full_link_is_repaired_only_within_the_budget() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    _video_stream(h, 40)
    viewer.consumer.repair_budget = budget = _budget(700_000, 900_000)  # only the floor
    seqs = [p.sequence_number for p in viewer.packets]

    viewer.consumer.receive_nack(seqs)

    consumer = viewer.consumer
    largest = max(len(p) for p in viewer.rtp.sent)
    assert 0 < budget.spent_bytes <= 2400 + largest  # the bucket's two packets' worth
    assert 0 < consumer.retransmissions_sent < 40
    assert consumer.retransmissions_refused == 40 - consumer.retransmissions_sent
    assert len(viewer.rtp.sent) == 40 + consumer.retransmissions_sent


def test_without_a_budget_every_nack_is_answered() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    _video_stream(h, 40)
    viewer.consumer.receive_nack([p.sequence_number for p in viewer.packets])
    assert viewer.consumer.retransmissions_sent == 40
    assert viewer.consumer.retransmissions_refused == 0


def test_a_packet_is_resent_at_most_twice_and_not_once_it_is_too_late() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    _video_stream(h, 5)
    viewer.consumer.repair_budget = _budget(5_000_000, 1_000_000)
    first, second = (p.sequence_number for p in viewer.packets[1:3])

    for _ in range(3):
        viewer.consumer.receive_nack([first])
        h.clock.advance(0.06)
    assert viewer.consumer.retransmissions_sent == 2

    viewer.consumer.receive_nack([second])  # first asked for now
    h.clock.advance(1.0)  # a second later no frame waits for it any more
    viewer.consumer.receive_nack([second])
    assert viewer.consumer.retransmissions_sent == 3
    assert viewer.consumer.retransmissions_refused == 2


def test_a_playing_viewers_own_key_frame_requests_are_limited_to_one_per_5_s() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    _video_stream(h, 3)  # playing: not waiting for a key frame
    h.tick_for(2.0)
    h.upstream.clear()

    for _ in range(10):  # a request every 1.5 s (the stream's throttle lets each by)
        viewer.consumer.receive_key_frame_request()
        h.tick_for(1.5)
        h.video(100 + len(viewer.rtp.sent), 0, keyframe=True)  # each is answered

    # Two at once (its burst), then one per 5 s: four in 15 s, not ten.
    assert len(h.plis()) == 4
    assert viewer.consumer.key_frame_requests_held == 6


def test_a_viewer_waiting_for_a_key_frame_does_not_ask_again_upstream() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    h.tick_for(0.1)
    assert len(h.plis()) == 1  # its own, on becoming ready
    for _ in range(5):
        viewer.consumer.receive_key_frame_request()
        h.tick_for(0.1)
    assert len(h.plis()) == 1  # the retry after 1 s is the throttle's, not these
    assert viewer.consumer.key_frame_requests_held == 5


def test_a_pipes_consumer_relays_every_request_of_the_viewers_behind_it() -> None:
    h = Harness(MediaKind.VIDEO)
    viewer = h.add_viewer()
    viewer.consumer.relay = True
    _video_stream(h, 3)
    h.tick_for(2.0)
    h.upstream.clear()
    for _ in range(6):
        viewer.consumer.receive_key_frame_request()
        h.tick_for(1.0)
        h.video(100 + len(viewer.rtp.sent), 0, keyframe=True)
    assert len(h.plis()) == 6

