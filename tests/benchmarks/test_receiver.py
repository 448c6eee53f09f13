"""A viewer bot's packet counting, full and thin (one sequence number in N)."""

from __future__ import annotations

import struct

import pytest

from benchmarks.receiver import Receiver, sampled_between


def _rtp(seq: int, *, ssrc: int = 7, payload_type: int = 96) -> bytes:
    return struct.pack("!BBHII", 0x80, payload_type, seq & 0xFFFF, 0, ssrc) + b"payload"


def _receiver(every: int) -> tuple[Receiver, list[int]]:
    first: list[int] = []
    receiver = Receiver(
        sample_every=1_000_000, samples=[], app_samples=[], on_first_media=lambda: first.append(1)
    )
    receiver.every = every
    receiver.payload_kinds[96] = "video"
    return receiver, first


@pytest.mark.parametrize("every", [1, 2, 3, 4, 7, 16, 1000])
@pytest.mark.parametrize("first", [0x10000, 0x10000 + 65530, 0x10000 + 12345, 0x3FFFF])
def test_sampled_between_counts_what_a_brute_force_count_does(every: int, first: int) -> None:
    for length in (0, 1, 5, 70000, 140000):
        last = first + length - 1
        brute = sum(1 for e in range(first, last + 1) if (e & 0xFFFF) % every == 0)
        assert sampled_between(first, last, every) == brute


def test_a_full_receiver_counts_gaps_as_loss() -> None:
    receiver, first = _receiver(1)
    for seq in (100, 101, 103, 104):
        receiver.on_datagram(_rtp(seq))
    received, expected, *_ = receiver.totals()
    assert (received, expected) == (4, 5)
    assert first == [1]


def test_a_thin_receiver_counts_loss_on_its_subsequence_across_the_wrap() -> None:
    every = 3  # does not divide 65536: the spacing changes at the wrap
    receiver, first = _receiver(every)
    seqs = [s & 0xFFFF for s in range(65500, 65536 + 40)]
    kept = [s for s in seqs if s % every == 0]
    lost = kept[5]
    for seq in seqs:
        # What the kernel filter lets through, minus one packet lost on the way.
        if seq % every == 0 and seq != lost:
            receiver.on_datagram(_rtp(seq))
    received, expected, *_ = receiver.totals()
    assert (received, expected) == (len(kept) - 1, len(kept))
    assert receiver.off_sample == 0
    assert first == [1]


def test_packets_off_the_subsequence_are_not_media_but_still_end_the_join() -> None:
    receiver, first = _receiver(4)
    receiver.on_datagram(_rtp(5))  # arrived before the filter was attached
    assert first == [1]
    assert receiver.off_sample == 1 and not receiver.streams
    for seq in (8, 12, 16):
        receiver.on_datagram(_rtp(seq))
    received, expected, *_ = receiver.totals()
    assert (received, expected) == (3, 3)


def test_rtcp_is_not_counted_as_media() -> None:
    receiver, _ = _receiver(4)
    receiver.on_datagram(b"\x80\xc8\x00\x06" + bytes(24))
    assert receiver.rtcp_packets == 1 and not receiver.streams and receiver.off_sample == 0
