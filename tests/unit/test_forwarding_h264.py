"""H.264 through a producer and its viewers: a key frame is its IDR access unit from
the packet carrying the SPS on, however the publisher packetizes the parameter sets."""

from __future__ import annotations

from sfu.types import MediaKind
from tests.forwarding_harness import Harness
from tests.packets import H264_PPS as PPS
from tests.packets import H264_SPS_640X360 as SPS_640

IDR = bytes([0x65]) + bytes(range(1, 200))
NON_IDR = bytes([0x41, 0x9A, 0x02])
STAP_A, FU_A = 24, 28


def _stap_a(*units: bytes) -> bytes:
    return bytes([0x60 | STAP_A]) + b"".join(len(u).to_bytes(2, "big") + u for u in units)


def _fu_a(unit: bytes) -> list[bytes]:
    """The unit in two fragments (RFC 6184 §5.8): S on the first, E on the last."""
    indicator, nal_type, half = (unit[0] & 0xE0) | FU_A, unit[0] & 0x1F, len(unit) // 2
    return [
        bytes([indicator, 0x80 | nal_type]) + unit[1:half],
        bytes([indicator, 0x40 | nal_type]) + unit[half:],
    ]


def _key_frame(h: Harness, seq: int, ts: int, *, aggregated: bool) -> int:
    """SPS and PPS in one STAP-A or as two packets, then the IDR in two fragments;
    returns the next sequence number."""
    packets = [_stap_a(SPS_640, PPS)] if aggregated else [SPS_640, PPS]
    packets += _fu_a(IDR)
    for index, payload in enumerate(packets):
        h.h264(seq + index, ts, payload, marker=index == len(packets) - 1)
    return seq + len(packets)


def test_a_viewer_arriving_between_the_sps_and_the_idr_waits_for_the_next_key_frame() -> None:
    h = Harness(MediaKind.VIDEO, video_codec="H264")
    h.h264(1, 0, SPS_640)  # the key frame's first packet, before the viewer is there
    viewer = h.add_viewer()
    h.h264(2, 0, PPS)
    first, last = _fu_a(IDR)
    h.h264(3, 0, first)
    h.h264(4, 0, last, marker=True)
    h.h264(5, 3000, NON_IDR, marker=True)
    assert viewer.packets == []  # the IDR without its SPS and PPS would not decode

    _key_frame(h, 6, 6000, aggregated=False)

    sent = viewer.packets
    assert [p.payload[0] & 0x1F for p in sent] == [7, 8, FU_A, FU_A]
    assert [p.timestamp for p in sent] == [sent[0].timestamp] * 4


def test_one_key_frame_is_counted_per_idr_access_unit_and_its_size_learned() -> None:
    for aggregated in (True, False):
        h = Harness(MediaKind.VIDEO, video_codec="H264")
        seq = _key_frame(h, 1, 0, aggregated=aggregated)
        h.h264(seq, 3000, NON_IDR, marker=True)
        _key_frame(h, seq + 1, 6000, aggregated=aggregated)

        (stream,) = h.producer.streams
        assert stream.key_frames_received == 2
        assert (stream.width, stream.height) == (640, 360)
