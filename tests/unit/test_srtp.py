"""Our SRTP sender against libsrtp (pylibsrtp, which aiortc uses): byte for byte, in
Python and in the native protect that peers use when the extension is built."""

from __future__ import annotations

import random
from collections.abc import Callable

import pylibsrtp
import pytest

from sfu import fastpath
from sfu.srtp import SessionKeys, SrtpProfile, SrtpSender

LIBSRTP = {
    SrtpProfile.AES128_CM_SHA1_80: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    SrtpProfile.AEAD_AES_128_GCM: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    SrtpProfile.AEAD_AES_256_GCM: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
}


def _pair(profile: SrtpProfile, seed: int) -> tuple[pylibsrtp.Session, SrtpSender]:
    rnd = random.Random(seed)
    master = bytes(rnd.getrandbits(8) for _ in range(profile.key_length + profile.salt_length))
    policy = pylibsrtp.Policy(
        key=master, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=LIBSRTP[profile]
    )
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return pylibsrtp.Session(policy), SrtpSender(SessionKeys.from_master(profile, master))


def _rtp(seq: int, ssrc: int, payload: bytes, *, extension: bool = True) -> bytes:
    header = bytes([0x90 if extension else 0x80, 96]) + seq.to_bytes(2, "big")
    header += (1234).to_bytes(4, "big") + ssrc.to_bytes(4, "big")
    if extension:
        header += b"\xbe\xde\x00\x01\x10\x41\x00\x00"
    return header + payload


def _protect(ours: SrtpSender, implementation: str) -> Callable[[bytes], bytes]:
    if implementation == "python":
        return ours.protect
    native = fastpath.rtp_protector(ours.keys)
    assert native is not None, "the native extension was not built"
    protect: Callable[[bytes], bytes] = native.protect
    return protect


@pytest.mark.parametrize("implementation", ["python", "native"])
@pytest.mark.parametrize("profile", list(SrtpProfile))
def test_rtp_matches_libsrtp_across_wraps_reordering_and_ssrcs(
    profile: SrtpProfile, implementation: str
) -> None:
    libsrtp, ours = _pair(profile, 1)
    protect = _protect(ours, implementation)
    rnd = random.Random(2)
    sequence = [1, 2, 65534, 65535, 0, 1, 5, 65535, 2]
    sequence += [(40000 + i + rnd.randint(-5, 5)) % 65536 for i in range(70000)]
    compared = 0
    for n, seq in enumerate(sequence):
        ssrc = 0xDEADBEEF if n % 3 else 0x1234
        packet = _rtp(seq, ssrc, rnd.randbytes(rnd.randrange(1, 200)), extension=n % 2 == 0)
        try:
            expected = libsrtp.protect(packet)
        except pylibsrtp.Error:
            continue  # libsrtp refuses packets more than its window behind; we never send those
        assert protect(packet) == expected, f"packet {n} (seq {seq})"
        compared += 1
    assert compared > 40000  # reordered repeats beyond the replay window are refused by libsrtp


@pytest.mark.parametrize("profile", list(SrtpProfile))
def test_rtcp_matches_libsrtp(profile: SrtpProfile) -> None:
    libsrtp, ours = _pair(profile, 3)
    rnd = random.Random(4)
    for _ in range(50):
        report = bytes([0x81, 201, 0, 7]) + (0x1234).to_bytes(4, "big") + rnd.randbytes(24)
        assert ours.protect_rtcp(report) == libsrtp.protect_rtcp(report)


def test_a_salt_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="master salt"):
        SessionKeys.from_master(SrtpProfile.AEAD_AES_128_GCM, bytes(30))


@pytest.mark.parametrize("implementation", ["python", "native"])
def test_a_forgotten_ssrc_takes_its_packet_index_with_it(implementation: str) -> None:
    _, ours = _pair(SrtpProfile.AES128_CM_SHA1_80, seed=7)
    sender = ours if implementation == "python" else fastpath.rtp_protector(ours.keys)
    assert sender is not None, "the native extension was not built"

    def tracked() -> int:
        return sender.tracked if isinstance(sender, SrtpSender) else sender.tracked()

    for ssrc in (1, 2, 3):
        sender.protect(_rtp(100, ssrc, b"x" * 20))
    assert tracked() == 3
    sender.forget(2)
    sender.forget(99)  # never sent: nothing to drop
    assert tracked() == 2
    for ssrc in (1, 3):  # the others keep their index
        sender.protect(_rtp(101, ssrc, b"x" * 20))
    assert tracked() == 2


def test_a_packet_too_long_to_protect_is_refused_and_leaves_no_index() -> None:
    # pylibsrtp's buffer is 1500 bytes, trailer room included; the sender drops what it refuses.
    _, ours = _pair(SrtpProfile.AES128_CM_SHA1_80, seed=8)
    with pytest.raises(ValueError, match="too long"):
        ours.protect(_rtp(100, 7, b"x" * 1500))
    assert ours.tracked == 0
    ours.forget(7)  # nothing to drop, and no error
    assert len(ours.protect(_rtp(101, 7, b"x" * 1000))) == 1020 + 10
    assert ours.tracked == 1
