"""The publishers' video pacer, on a simulated clock, and the publisher loop around it."""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

import pytest

from benchmarks.media import MediaClip, VideoFrame
from benchmarks.pacer import LOOKAHEAD, MAX_DEBT, Pacer, burst_bound
from benchmarks.sender import Publisher
from sfu.ortc import PAYLOAD_TYPES
from sfu.rtp import rtcp

RATE = 3_000_000.0  # bits/s
KEY_FRAME = tuple(bytes([i]) * 1000 for i in range(25))
SPACING = 1000 * 8 / RATE  # seconds per 1000-byte packet: 2.67 ms, longer than LOOKAHEAD


def _drain(pacer: Pacer, start: float) -> list[tuple[float, int]]:
    """Wake exactly when the pacer asks, as the publisher does; (time, packets) per wake."""
    now, wakes = start, []
    while pacer.queued:
        now = max(now, pacer.wake_at)
        wakes.append((now, len(pacer.due(now))))
    return wakes


def test_a_key_frame_leaves_one_packet_per_interval_at_the_pacing_rate() -> None:
    pacer = Pacer(RATE)
    pacer.push(KEY_FRAME, timestamp=1234, now=10.0)
    wakes = _drain(pacer, 10.0)
    assert [n for _, n in wakes] == [1] * 25
    assert [t for t, _ in wakes] == pytest.approx([10.0 + i * SPACING for i in range(25)])
    assert pacer.max_burst == 1
    assert pacer.max_delay == pytest.approx(24 * SPACING)


def test_packets_keep_their_frame_timestamp_and_only_the_last_has_the_marker() -> None:
    pacer = Pacer(RATE)
    pacer.push(KEY_FRAME[:3], timestamp=7, now=0.0)
    pacer.push(KEY_FRAME[3:5], timestamp=3007, now=0.0)
    sent = []
    now = 0.0
    while pacer.queued:
        now = pacer.wake_at
        sent.extend(pacer.due(now))
    assert [(p.timestamp, p.marker) for p in sent] == [
        (7, False),
        (7, False),
        (7, True),
        (3007, False),
        (3007, True),
    ]
    assert [p.payload for p in sent] == list(KEY_FRAME[:5])


def test_without_a_rate_a_frame_leaves_at_once() -> None:
    pacer = Pacer(0.0)
    pacer.push(KEY_FRAME, timestamp=0, now=5.0)
    assert len(pacer.due(5.0)) == 25
    assert pacer.max_burst == 25
    assert pacer.wake_at == float("inf")


def test_a_frame_queued_behind_another_waits_and_an_idle_pacer_saves_no_budget() -> None:
    pacer = Pacer(RATE)
    pacer.push(KEY_FRAME, timestamp=0, now=0.0)
    pacer.push(KEY_FRAME[:2], timestamp=3000, now=0.033)
    wakes = _drain(pacer, 0.0)
    assert wakes[25][0] == pytest.approx(25 * SPACING)  # after the key frame, not at 33 ms
    # Idle for a second: the next frame starts when it arrives, then paces again.
    pacer.push(KEY_FRAME[:2], timestamp=6000, now=5.0)
    assert [n for _, n in _drain(pacer, 5.0)] == [1, 1]


def test_a_stall_is_caught_up_in_bounded_bursts() -> None:
    pacer = Pacer(RATE)
    pacer.push(KEY_FRAME, timestamp=0, now=0.0)
    released = pacer.due(0.5)  # the process did not run for half a second
    assert 1 < len(released) <= burst_bound(RATE, 1000)
    assert len(released) == int((MAX_DEBT + LOOKAHEAD) / SPACING) + 1
    assert pacer.wake_at > 0.5  # the rest is paced again from now


# -- the publisher loop -------------------------------------------------------------
class _Peer:
    """Just enough of sfu.aiortc_bridge.PeerConnection for a Publisher."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.on_rtcp: Any = None
        self.watch: Any = None

    def send_rtp(self, packet: bytes) -> bool:
        self.sent.append(packet)
        if self.watch is not None:
            self.watch(packet)
        return True

    def send_rtcp(self, packet: bytes) -> None:
        pass


def _clip() -> MediaClip:
    """Key frames of 25 packets at frames 0 and 15, deltas of 2; two Opus packets."""
    frames = tuple(
        VideoFrame(payloads=KEY_FRAME if i in (0, 15) else KEY_FRAME[:2], keyframe=i in (0, 15))
        for i in range(30)
    )
    return MediaClip(video=frames, audio=(b"\x01" * 80, b"\x02" * 80))


def _header(packet: bytes) -> tuple[int, int, int]:
    """(payload type, marker, RTP timestamp)."""
    second, timestamp = packet[1], struct.unpack("!I", packet[4:8])[0]
    return second & 0x7F, second >> 7, timestamp


async def test_the_publisher_paces_video_sends_audio_between_and_answers_a_pli() -> None:
    peer = _Peer()
    clip = _clip()
    video_ssrc = 0x1234
    publisher = Publisher(
        peer,  # type: ignore[arg-type]
        clip,
        audio_ssrc=0x5678,
        video_ssrc=video_ssrc,
        stamp=True,
        deadline=time.monotonic() + 600,
        pacing_rate=2.5 * clip.video_bitrate,
    )
    video = PAYLOAD_TYPES["VP8"]
    markers = 0
    pli_sent = False
    done = asyncio.Event()
    captured: list[int] = []  # packets per frame, in the order frames entered the pacer
    push = publisher.pacer.push

    def record(payloads: tuple[bytes, ...], timestamp: int, now: float, stream: int = 0) -> None:
        captured.append(len(payloads))
        push(payloads, timestamp, now, stream)

    publisher.pacer.push = record  # type: ignore[method-assign]

    def watch(packet: bytes) -> None:
        nonlocal markers, pli_sent
        payload_type, marker, _ = _header(packet)
        if payload_type == video and marker:
            markers += 1
            if markers == 3 and not pli_sent:  # the key frame and two deltas are out
                pli_sent = True
                publisher._on_rtcp(
                    rtcp.serialize(rtcp.PictureLossIndication(sender_ssrc=1, media_ssrc=video_ssrc))
                )
            elif publisher.key_frames_sent == 2 and not publisher.pacer.queued:
                done.set()

    peer.watch = watch
    task = asyncio.create_task(publisher.run())
    try:
        await asyncio.wait_for(done.wait(), 30)  # a hang guard, not a timing assertion
    finally:
        publisher.stop()
        await asyncio.wait_for(task, 30)

    assert publisher.key_frame_requests == 1 and publisher.key_frames_sent == 2
    # Frames 0, 1, 2 went out before the PLI; it turned the next capture into frame 15.
    after_pli = captured.index(25, 1)
    assert after_pli < 15  # not frame 15 reached in its turn
    assert all(n == 2 for n in captured[1:after_pli])
    headers = [_header(p) for p in peer.sent]
    first_key = [i for i, header in enumerate(headers) if header[0] == video][:25]
    # The key frame was spread out: audio went out between its first and last packets.
    audio_between = [
        i for i in range(first_key[0], first_key[-1]) if headers[i][0] == PAYLOAD_TYPES["opus"]
    ]
    assert audio_between
    assert len({headers[i][2] for i in first_key}) == 1
    assert publisher.pacer.max_burst <= burst_bound(2.5 * clip.video_bitrate, 1000)
