"""An H.264 key frame's picture size, read from its SPS (sfu/rtp/h264.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfu.rtp.h264 import key_frame_size, sps_picture_size
from tests.packets import H264_PPS, H264_SPS_640X360

# SPS NAL units libx264 wrote (header byte 0x67 first), and the size each describes.
CAPTURED_SPS = {
    "baseline 160x90, cropped": ("6742c00bda0a37e484000003000400000300f23c50aa80", (160, 90)),
    "baseline 640x360, cropped": (H264_SPS_640X360.hex(), (640, 360)),
    "high 1280x720": ("6764001facb200a00b7420000003002000000791e30649", (1280, 720)),
    "main 1920x1080, interlaced": (
        "674d4028f403c0227ee10000030001000003003c9f162ea0",
        (1920, 1080),
    ),
    "high 4:4:4 352x288": ("67f4000d919681609684000003000400000300f23c50aa80", (352, 288)),
    "high 4:2:2 1366x768": ("677a0020bcb402b030f37080000003008000001e478c1950", (1366, 768)),
}


@pytest.mark.parametrize("name", CAPTURED_SPS)
def test_the_size_of_a_captured_sps(name: str) -> None:
    sps, size = CAPTURED_SPS[name]
    assert sps_picture_size(bytes.fromhex(sps)) == size


def _stap_a(*units: bytes) -> bytes:
    return bytes([0x78]) + b"".join(len(u).to_bytes(2, "big") + u for u in units)


SPS_640, PPS = H264_SPS_640X360, H264_PPS


def test_a_key_frame_packet_gives_its_size_whether_the_sps_is_alone_or_aggregated() -> None:
    assert key_frame_size(SPS_640) == (640, 360)
    assert key_frame_size(_stap_a(SPS_640, PPS)) == (640, 360)
    assert key_frame_size(_stap_a(bytes([0x09, 0x10]), SPS_640, PPS)) == (640, 360)


@pytest.mark.parametrize(
    "payload",
    [PPS, bytes([0x65, 0x88, 0x84]), bytes([0x7C, 0x85, 0x88]), _stap_a(PPS, bytes([0x65, 0x88]))],
    ids=["pps", "idr", "fu-a of an idr", "stap-a without an sps"],
)
def test_packets_without_an_sps_give_no_size(payload: bytes) -> None:
    assert key_frame_size(payload) is None


def test_an_sps_cut_before_its_cropping_ends_gives_no_size() -> None:
    sizes = [key_frame_size(SPS_640[:end]) for end in range(len(SPS_640) + 1)]
    complete = next(end for end, size in enumerate(sizes) if size is not None)
    assert complete == 9  # header, 3 bytes of profile and level, then the Exp-Golomb fields
    assert set(sizes[complete:]) == {(640, 360)}


class _BitWriter:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def put(self, value: int, count: int) -> None:
        self.bits += [(value >> (count - 1 - i)) & 1 for i in range(count)]

    def ue(self, value: int) -> None:
        code = value + 1
        self.put(0, code.bit_length() - 1)
        self.put(code, code.bit_length())

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def nal(self) -> bytes:
        self.put(1, 1)  # rbsp_stop_one_bit
        self.bits += [0] * (-len(self.bits) % 8)
        raw = bytes(
            int("".join(map(str, self.bits[i : i + 8])), 2) for i in range(0, len(self.bits), 8)
        )
        escaped = bytearray()
        zeros = 0
        for byte in raw:  # §7.4.1 emulation prevention
            if zeros >= 2 and byte <= 3:
                escaped.append(3)
                zeros = 0
            escaped.append(byte)
            zeros = zeros + 1 if byte == 0 else 0
        return bytes([0x67]) + bytes(escaped)


@given(
    width_mbs=st.integers(1, 120),
    height_mbs=st.integers(1, 68),
    crop=st.tuples(*[st.integers(0, 3)] * 4),
    poc_type=st.sampled_from([0, 1, 2]),
    scaling=st.booleans(),
)
def test_a_high_profile_sps_with_scaling_lists_and_cropping(
    width_mbs: int, height_mbs: int, crop: tuple[int, int, int, int], poc_type: int, scaling: bool
) -> None:
    bits = _BitWriter()
    bits.put(100, 8)  # profile_idc: high
    bits.put(0, 8)
    bits.put(40, 8)  # level_idc
    bits.ue(0)  # seq_parameter_set_id
    bits.ue(1)  # chroma_format_idc: 4:2:0
    bits.ue(0)
    bits.ue(0)
    bits.put(0, 1)
    bits.put(int(scaling), 1)
    if scaling:
        for index in range(8):
            bits.put(index % 2, 1)  # every other list present
            if index % 2:
                for _ in range(16 if index < 6 else 64):
                    bits.se(-3)  # deltas that never reach zero
    bits.ue(4)  # log2_max_frame_num_minus4
    bits.ue(poc_type)
    if poc_type == 0:
        bits.ue(2)
    elif poc_type == 1:
        bits.put(0, 1)
        bits.se(-2)
        bits.se(5)
        bits.ue(3)
        for offset in (1, -1, 7):
            bits.se(offset)
    bits.ue(2)  # max_num_ref_frames
    bits.put(0, 1)
    bits.ue(width_mbs - 1)
    bits.ue(height_mbs - 1)
    bits.put(1, 1)  # frame_mbs_only_flag
    bits.put(1, 1)  # direct_8x8_inference_flag
    bits.put(int(any(crop)), 1)
    if any(crop):
        for offset in crop:
            bits.ue(offset)
    bits.put(0, 1)  # vui_parameters_present_flag
    left, right, top, bottom = crop
    expected = (width_mbs * 16 - 2 * (left + right), height_mbs * 16 - 2 * (top + bottom))

    assert sps_picture_size(bits.nal()) == expected


@given(st.binary(max_size=64))
def test_the_size_reader_never_raises_on_arbitrary_bytes(payload: bytes) -> None:
    size = key_frame_size(payload)
    assert size is None or (size[0] > 0 and size[1] > 0)
    assert key_frame_size(bytes([0x67]) + payload) == key_frame_size(memoryview(b"\x67" + payload))
