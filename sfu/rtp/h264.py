"""The picture size of an H.264 key frame, read from its sequence parameter set.

A simulcast producer reports each encoding's size so a viewer gets the smallest one
that fills its tile; VP8 writes the size in every key frame's header, H.264 in the
SPS that precedes every IDR (H.264 §7.3.2.1.1). Reading it means Exp-Golomb codes
and skipping what comes before the size, but no decoding. Called once per key frame,
never raises: anything short, truncated or out of range gives None.
"""

from __future__ import annotations

from .codecs import Payload

_SPS = 7
_STAP_A = 24
# profile_idc values whose SPS carries chroma format, bit depths and scaling matrices
# (H.264 §7.3.2.1.1, the `if( profile_idc = = 100 || ...` branch).
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
_MAX_MACROBLOCKS = 1 << 16  # 4096x4096 pixels: anything larger is not a picture size


class _Truncated(Exception):
    """The SPS ended before its picture size."""


class _Bits:
    """An MSB-first bit reader over an RBSP (emulation prevention removed)."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def bit(self) -> int:
        byte, shift = divmod(self._pos, 8)
        if byte >= len(self._data):
            raise _Truncated
        self._pos += 1
        return (self._data[byte] >> (7 - shift)) & 1

    def bits(self, count: int) -> int:
        value = 0
        for _ in range(count):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        """§9.1 ue(v): leading zeros, a one, then as many bits."""
        zeros = 0
        while not self.bit():
            zeros += 1
            if zeros > 31:
                raise _Truncated
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        """§9.1.1 se(v): 1, -1, 2, -2, ... for ue 1, 2, 3, 4, ..."""
        code = self.ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)


def key_frame_size(payload: Payload) -> tuple[int, int] | None:
    """(width, height) from a packet carrying an SPS, as a single NAL unit (RFC 6184
    §5.6) or in a STAP-A (§5.7.1), or None."""
    sps = _sps_unit(bytes(payload))
    if sps is None:
        return None
    try:
        return sps_picture_size(sps)
    except _Truncated:
        return None


def _sps_unit(payload: bytes) -> bytes | None:
    if not payload:
        return None
    nal_type = payload[0] & 0x1F
    if nal_type == _SPS:
        return payload
    if nal_type != _STAP_A:
        return None
    pos = 1
    while pos + 2 < len(payload):
        size = (payload[pos] << 8) | payload[pos + 1]
        pos += 2
        if size == 0 or pos + size > len(payload):
            return None
        if payload[pos] & 0x1F == _SPS:
            return payload[pos : pos + size]
        pos += size
    return None


def sps_picture_size(sps: bytes) -> tuple[int, int] | None:
    """The cropped picture size an SPS NAL unit (its one-byte header first) describes
    (H.264 §7.3.2.1.1, §7.4.2.1.1 for the cropping units). Raises _Truncated."""
    bits = _Bits(_rbsp(sps[1:]))
    profile_idc = bits.bits(8)
    bits.bits(16)  # constraint flags, level_idc
    bits.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    separate_colour_planes = 0
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = bits.ue()
        if chroma_format_idc == 3:
            separate_colour_planes = bits.bit()
        bits.ue()  # bit_depth_luma_minus8
        bits.ue()  # bit_depth_chroma_minus8
        bits.bit()  # qpprime_y_zero_transform_bypass_flag
        if bits.bit():  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma_format_idc != 3 else 12):
                if bits.bit():
                    _skip_scaling_list(bits, 16 if index < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    pic_order_cnt_type = bits.ue()
    if pic_order_cnt_type == 0:
        bits.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif pic_order_cnt_type == 1:
        bits.bit()  # delta_pic_order_always_zero_flag
        bits.se()  # offset_for_non_ref_pic
        bits.se()  # offset_for_top_to_bottom_field
        cycle = bits.ue()
        if cycle > 255:
            return None
        for _ in range(cycle):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.bit()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_map_units = bits.ue() + 1
    frame_mbs_only = bits.bit()
    if not frame_mbs_only:
        bits.bit()  # mb_adaptive_frame_field_flag
    bits.bit()  # direct_8x8_inference_flag
    height_mbs = height_map_units * (2 - frame_mbs_only)
    if width_mbs * height_mbs > _MAX_MACROBLOCKS:
        return None
    width, height = width_mbs * 16, height_mbs * 16
    if bits.bit():  # frame_cropping_flag: offsets in chroma samples (Table 6-1)
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
        subsampled = chroma_format_idc != 0 and not separate_colour_planes
        crop_x = 2 if subsampled and chroma_format_idc in (1, 2) else 1
        crop_y = (2 if subsampled and chroma_format_idc == 1 else 1) * (2 - frame_mbs_only)
        width -= (left + right) * crop_x
        height -= (top + bottom) * crop_y
    return (width, height) if width > 0 and height > 0 else None


def _skip_scaling_list(bits: _Bits, size: int) -> None:
    """§7.3.2.1.1.1: delta-coded until a delta makes the next scale zero."""
    last = next_scale = 8
    for _ in range(size):
        if next_scale:
            next_scale = (last + bits.se() + 256) % 256
        last = next_scale or last


def _rbsp(data: bytes) -> bytes:
    """§7.4.1: drop the emulation prevention byte of every 00 00 03."""
    return data.replace(b"\x00\x00\x03", b"\x00\x00") if b"\x00\x00\x03" in data else data
