"""Probe padding: padding-only RTP on a track's RTX stream, stamped for transport-cc,
byte for byte the same from the Python and the native sender."""

from __future__ import annotations

import pytest

from sfu import fastpath
from sfu.fanout import CallableEgress
from sfu.padding import MAX_PADDING, PaddingStream, send_stamped
from sfu.rtp.send_log import SendLog
from sfu.srtp import SessionKeys, SrtpProfile, SrtpSender
from tests.packets import parse_rtp

TRANSPORT_CC_ID = 3
MID_ELEMENT = bytes([1 << 4 | 0]) + b"4"  # MID "4" under id 1
RTX_SSRC = 0x5EED_0001


def _stream() -> PaddingStream:
    return PaddingStream(
        ssrc=RTX_SSRC, payload_type=97, mid_element=MID_ELEMENT, transport_cc_id=TRANSPORT_CC_ID
    )


def test_a_padding_packet_carries_only_padding_the_mid_and_a_transport_number() -> None:
    stream = _stream()
    packet, at = stream.packet(1234)
    packet[at : at + 2] = (0xABCD).to_bytes(2, "big")
    view = parse_rtp(bytes(packet))
    assert (view.ssrc, view.payload_type, view.timestamp) == (RTX_SSRC, 97, 1234)
    assert view.payload_end == view.payload_start  # nothing but padding
    assert len(packet) - view.payload_end == MAX_PADDING
    assert view.extension(1) == b"4"
    assert view.extension(TRANSPORT_CC_ID) == b"\xab\xcd"
    assert parse_rtp(bytes(stream.packet(0)[0])).sequence_number == 1  # numbered on


@pytest.mark.skipif(not fastpath.native_available(), reason="the native sender was not built")
def test_python_and_native_senders_stamp_log_and_protect_it_identically() -> None:
    profile = SrtpProfile.AES128_CM_SHA1_80
    keys = SessionKeys.from_master(profile, bytes(range(profile.key_length + profile.salt_length)))
    sender = SrtpSender(keys)
    plain: list[bytes] = []
    sent: list[bytes] = []

    def send(packet: bytes) -> bool:
        plain.append(packet)
        sent.append(sender.protect(packet))
        return True

    log = SendLog(TRANSPORT_CC_ID, overhead=profile.rtp_overhead)
    python = CallableEgress(send, log)
    native = fastpath.native_egress(
        profile=str(profile), key=keys.rtp_key, salt=keys.rtp_salt, auth_key=keys.rtp_auth,
        fd=-1, address=("", 0), transport_cc_id=TRANSPORT_CC_ID,
    )  # fmt: skip
    ours, theirs = _stream(), _stream()
    for i in range(5):
        assert send_stamped(python, *ours.packet(0), now=10.0 + i)
        assert send_stamped(native, *theirs.packet(0), now=10.0 + i)
    captured = list(native.take_captured())
    assert captured == sent
    assert native.sent_packets(0, 6) == python.sent_packets(0, 6)
    assert native.sent_packets(4, 1) == [(14.0, len(sent[4]))]
    assert parse_rtp(plain[2]).extension(TRANSPORT_CC_ID) == b"\x00\x02"


@pytest.mark.skipif(not fastpath.native_available(), reason="the native sender was not built")
def test_the_native_sender_refuses_a_packet_it_cannot_stamp() -> None:
    native = fastpath.native_egress(
        profile="NONE", key=b"", salt=b"", auth_key=b"", fd=-1, address=("", 0),
        transport_cc_id=TRANSPORT_CC_ID,
    )  # fmt: skip
    packet, at = _stream().packet(0)
    for bad_at in (-1, 3, len(packet)):
        with pytest.raises(ValueError, match="bad packet to stamp"):
            native.send_stamped(bytes(packet), bad_at, 1.0)
    with pytest.raises(ValueError, match="bad packet to stamp"):
        native.send_stamped(bytes(packet[:14]), at, 1.0)
