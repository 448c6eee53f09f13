from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfu.rtp.codecs import is_h264_keyframe, is_vp8_keyframe, is_vp9_keyframe

# VP8 payload header first octet: size0=0, H=1, VER=0, P (bit 0): 0 key, 1 inter.
VP8_KEY = 0x10
VP8_INTER = 0x11


# --- VP8 (RFC 7741) ---------------------------------------------------------


def test_vp8_minimal_descriptor_key_frame() -> None:
    assert is_vp8_keyframe(bytes([0x10, VP8_KEY, 0x02, 0x00, 0x9D, 0x01, 0x2A]))


def test_vp8_inter_frame_is_not_key() -> None:
    assert not is_vp8_keyframe(bytes([0x10, VP8_INTER, 0x00]))


def test_vp8_continuation_packet_is_not_key_even_if_bit_is_zero() -> None:
    assert not is_vp8_keyframe(bytes([0x00, VP8_KEY, 0x00]))  # S=0


def test_vp8_non_zero_partition_is_not_key() -> None:
    assert not is_vp8_keyframe(bytes([0x11, VP8_KEY, 0x00]))  # PID=1


def test_vp8_with_7_bit_picture_id() -> None:
    assert is_vp8_keyframe(bytes([0x90, 0x80, 0x17, VP8_KEY]))
    assert not is_vp8_keyframe(bytes([0x90, 0x80, 0x17, VP8_INTER]))


def test_vp8_with_15_bit_picture_id() -> None:
    # M bit set: two octets of picture id; the second one has its low bit set
    # to prove it is not misread as the payload header.
    assert is_vp8_keyframe(bytes([0x90, 0x80, 0x81, 0x01, VP8_KEY]))
    assert not is_vp8_keyframe(bytes([0x90, 0x80, 0x81, 0x00, VP8_INTER]))


def test_vp8_with_all_extensions_i_l_t_k() -> None:
    payload = bytes([0x90, 0xF0, 0x80 | 0x12, 0x34, 0x05, 0xE1, VP8_KEY])
    assert is_vp8_keyframe(payload)
    assert not is_vp8_keyframe(payload[:-1] + bytes([VP8_INTER]))


def test_vp8_with_only_k_extension() -> None:
    assert is_vp8_keyframe(bytes([0x90, 0x10, 0x01, VP8_KEY]))


def test_vp8_accepts_memoryview() -> None:
    assert is_vp8_keyframe(memoryview(bytes([0x10, VP8_KEY, 0x00])))


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x10", b"\x90\x80", b"\x90\x80\x81\x01", b"\x90\xf0\x80\x12\x34\x05\xe1"],
)
def test_vp8_truncated_payloads_are_not_key(payload: bytes) -> None:
    assert not is_vp8_keyframe(payload)


# --- VP9 (RFC 9628) ---------------------------------------------------------


def test_vp9_start_of_non_predicted_frame_is_key() -> None:
    assert is_vp9_keyframe(bytes([0x08, 0x82]))  # B=1, P=0


def test_vp9_predicted_frame_is_not_key() -> None:
    assert not is_vp9_keyframe(bytes([0x48, 0x82]))  # P=1


def test_vp9_middle_of_frame_is_not_key() -> None:
    assert not is_vp9_keyframe(bytes([0x00, 0x82]))  # B=0


def test_vp9_with_15_bit_picture_id_and_base_layer() -> None:
    # I=1, L=1, B=1, non-flexible: picture id (2), layer octet SID=0, TL0PICIDX.
    assert is_vp9_keyframe(bytes([0xA8, 0x81, 0x23, 0x00, 0x07, 0x82]))


def test_vp9_key_picture_in_upper_spatial_layer_is_not_reported() -> None:
    layer = (1 << 1) | 0x01  # SID=1, D=1
    assert not is_vp9_keyframe(bytes([0xA8, 0x81, 0x23, layer, 0x07, 0x82]))


def test_vp9_flexible_mode_layer_octet_without_tl0picidx() -> None:
    assert is_vp9_keyframe(bytes([0xB8, 0x05, 0x00, 0x82]))  # I, L, F, B; 7-bit id


def test_vp9_with_7_bit_picture_id_and_no_layers() -> None:
    assert is_vp9_keyframe(bytes([0x88, 0x05, 0x82]))


@pytest.mark.parametrize(
    "payload", [b"", b"\x08", b"\x88\x05", b"\xa8\x81\x23", b"\xa8\x81\x23\x00\x07"]
)
def test_vp9_truncated_payloads_are_not_key(payload: bytes) -> None:
    assert not is_vp9_keyframe(payload)


# --- H.264 (RFC 6184) -------------------------------------------------------


def nal(nal_type: int, body: bytes = b"\x88\x84") -> bytes:
    return bytes([0x60 | nal_type]) + body


def test_h264_single_sps_is_key() -> None:
    assert is_h264_keyframe(nal(7))


@pytest.mark.parametrize("nal_type", [1, 5, 6, 8, 9])
def test_h264_single_units_other_than_the_sps_are_not_key(nal_type: int) -> None:
    # An IDR slice (5) included: its SPS and PPS went before it, where a decoder starts.
    assert not is_h264_keyframe(nal(nal_type))


def stap_a(*units: bytes) -> bytes:
    out = bytes([0x78])  # STAP-A, NRI=3
    for unit in units:
        out += len(unit).to_bytes(2, "big") + unit
    return out


def test_h264_stap_a_with_sps_pps_idr_is_key() -> None:
    assert is_h264_keyframe(stap_a(nal(7), nal(8), nal(5)))


def test_h264_stap_a_with_sps_after_other_units_is_key() -> None:
    assert is_h264_keyframe(stap_a(nal(9, b"\x10"), nal(6, b"\x05\x10"), nal(7), nal(8)))


def test_h264_stap_a_with_an_idr_but_no_sps_is_not_key() -> None:
    assert not is_h264_keyframe(stap_a(nal(6, b"\x05\x10"), nal(5)))


def test_h264_stap_a_without_key_units_is_not_key() -> None:
    assert not is_h264_keyframe(stap_a(nal(6), nal(1)))


def test_h264_stap_a_with_truncated_unit_is_not_key() -> None:
    packet = stap_a(nal(1)) + b"\x00\x09" + nal(7)  # claims 9 octets, has 3
    assert not is_h264_keyframe(packet)


def test_h264_stap_a_with_zero_size_unit_stops() -> None:
    assert not is_h264_keyframe(bytes([0x78, 0x00, 0x00]) + nal(7))


def fu_a(start: bool, nal_type: int) -> bytes:
    return bytes([0x7C, (0x80 if start else 0x00) | nal_type, 0xAA, 0xBB])


def test_h264_fu_a_start_of_sps_is_key() -> None:
    assert is_h264_keyframe(fu_a(True, 7))


def test_h264_fu_a_continuation_of_sps_is_not_key() -> None:
    assert not is_h264_keyframe(fu_a(False, 7))


def test_h264_fu_a_start_of_idr_is_not_key() -> None:
    assert not is_h264_keyframe(fu_a(True, 5))


def test_h264_key_frame_sent_as_sps_pps_and_idr_packets_starts_at_the_sps_only() -> None:
    # Parameter sets as single NAL unit packets, then the IDR in fragments (RFC 6184
    # §5.6, §5.8): a viewer switched at any later packet would lack the SPS and PPS.
    packets = [nal(7), nal(8), fu_a(True, 5), fu_a(False, 5)]
    assert [is_h264_keyframe(p) for p in packets] == [True, False, False, False]


def test_h264_fu_a_start_of_non_idr_is_not_key() -> None:
    assert not is_h264_keyframe(fu_a(True, 1))


@pytest.mark.parametrize("payload", [b"", b"\x7c", b"\x7c\x85", b"\x78", b"\x78\x00"])
def test_h264_truncated_payloads_are_not_key(payload: bytes) -> None:
    assert not is_h264_keyframe(payload)


@given(st.binary(max_size=64))
def test_detectors_never_raise_on_arbitrary_bytes(payload: bytes) -> None:
    for detect in (is_vp8_keyframe, is_vp9_keyframe, is_h264_keyframe):
        assert isinstance(detect(payload), bool)
        assert isinstance(detect(memoryview(payload)), bool)
