"""SRTP/SRTCP protection for what the SFU sends (RFC 3711, RFC 7714).

The session keys are derived here so the native fan-out (sfu/_fastpath.c) can
protect each viewer's copy in the same call that writes it; `SrtpSender` is the
fallback when the extension is not built, and protects with libsrtp itself, whose
output the native code reproduces byte for byte (the tests compare the two).
Receiving stays with aiortc/libsrtp.

Profiles: AES128_CM_HMAC_SHA1_80 (RFC 3711 §4.1.1, §4.2.1) and
AEAD_AES_128_GCM / AEAD_AES_256_GCM (RFC 7714).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pylibsrtp
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class SrtpProfile(StrEnum):
    AES128_CM_SHA1_80 = "SRTP_AES128_CM_SHA1_80"
    AEAD_AES_128_GCM = "SRTP_AEAD_AES_128_GCM"
    AEAD_AES_256_GCM = "SRTP_AEAD_AES_256_GCM"

    @property
    def key_length(self) -> int:
        return 32 if self is SrtpProfile.AEAD_AES_256_GCM else 16

    @property
    def salt_length(self) -> int:
        return 14 if self is SrtpProfile.AES128_CM_SHA1_80 else 12

    @property
    def aead(self) -> bool:
        return self is not SrtpProfile.AES128_CM_SHA1_80

    @property
    def rtp_overhead(self) -> int:
        """Bytes protection adds to an RTP packet: its authentication tag, 80 bits for
        HMAC-SHA1-80 (RFC 3711 §4.2.1), 16 octets for AEAD GCM (RFC 7714). No MKI."""
        return 16 if self.aead else 10


# RFC 3711 §4.3.1 key derivation labels
_RTP_ENCRYPTION, _RTP_AUTH, _RTP_SALT = 0x00, 0x01, 0x02
_RTCP_ENCRYPTION, _RTCP_AUTH, _RTCP_SALT = 0x03, 0x04, 0x05


def derive(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """RFC 3711 §4.3.1 AES-CM PRF with a key derivation rate of 0.

    A 96-bit (GCM) master salt is used as the leftmost bits of the 112-bit
    input, as RFC 7714 §11 and libsrtp do.
    """
    salt = master_salt.ljust(14, b"\x00")
    x = bytearray(salt)
    x[7] ^= label
    iv = bytes(x) + b"\x00\x00"
    encryptor = Cipher(algorithms.AES(master_key), modes.CTR(iv)).encryptor()
    return encryptor.update(b"\x00" * length) + encryptor.finalize()


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """Session keys for one direction (RFC 3711 §4.3)."""

    profile: SrtpProfile
    rtp_key: bytes
    rtp_salt: bytes
    rtp_auth: bytes
    rtcp_key: bytes
    rtcp_salt: bytes
    rtcp_auth: bytes
    master: bytes  # master key || master salt, as exported from DTLS (for native contexts)

    @classmethod
    def from_master(cls, profile: SrtpProfile, key_and_salt: bytes) -> SessionKeys:
        key = key_and_salt[: profile.key_length]
        salt = key_and_salt[profile.key_length :]
        if len(salt) != profile.salt_length:
            raise ValueError(f"{profile}: master salt must be {profile.salt_length} bytes")
        auth = 0 if profile.aead else 20
        return cls(
            profile=profile,
            rtp_key=derive(key, salt, _RTP_ENCRYPTION, profile.key_length),
            rtp_salt=derive(key, salt, _RTP_SALT, profile.salt_length),
            rtp_auth=derive(key, salt, _RTP_AUTH, auth) if auth else b"",
            rtcp_key=derive(key, salt, _RTCP_ENCRYPTION, profile.key_length),
            rtcp_salt=derive(key, salt, _RTCP_SALT, profile.salt_length),
            rtcp_auth=derive(key, salt, _RTCP_AUTH, auth) if auth else b"",
            master=key_and_salt,
        )


class SrtpSender:
    """Protects outgoing RTP and RTCP for one DTLS-SRTP association, with libsrtp.

    libsrtp keeps a packet index per SSRC (RFC 3711 §3.3.1); `forget` drops it when
    a stream ends, so state stays bounded by the streams open. A packet too old for
    the replay window, or longer than pylibsrtp's 1500-byte buffer allows, raises
    pylibsrtp.Error or ValueError: the caller drops it.
    """

    __slots__ = ("_keys", "_session", "_ssrcs")

    def __init__(self, keys: SessionKeys) -> None:
        self._keys = keys
        policy = pylibsrtp.Policy(
            key=keys.master,
            ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
            srtp_profile=_LIBSRTP_PROFILES[keys.profile],
        )
        # A retransmission is the packet first sent, under the same index.
        policy.allow_repeat_tx = True
        policy.window_size = _WINDOW
        self._session = pylibsrtp.Session(policy)
        self._ssrcs: set[int] = set()  # those libsrtp holds a stream for

    def forget(self, ssrc: int) -> None:
        """The stream ended; its SSRC must never be sent again with these keys."""
        if ssrc in self._ssrcs:
            self._ssrcs.discard(ssrc)
            self._session.remove_stream(ssrc)

    @property
    def tracked(self) -> int:
        """How many SSRCs have a packet index (bounded by the streams still open)."""
        return len(self._ssrcs)

    @property
    def keys(self) -> SessionKeys:
        return self._keys

    def protect(self, packet: bytes) -> bytes:
        protected: bytes = self._session.protect(packet)
        # Counted once protected: a packet refused as too long leaves no stream behind.
        self._ssrcs.add(int.from_bytes(packet[8:12], "big"))
        return protected

    def protect_rtcp(self, packet: bytes) -> bytes:
        """SRTCP (RFC 3711 §3.4); the SFU's own RTCP goes through aiortc's session."""
        protected: bytes = self._session.protect_rtcp(packet)
        return protected


_LIBSRTP_PROFILES = {
    SrtpProfile.AES128_CM_SHA1_80: pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    SrtpProfile.AEAD_AES_128_GCM: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    SrtpProfile.AEAD_AES_256_GCM: pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
}
# libsrtp's widest replay window (it must stay under 2^15): the native path refuses
# nothing for age, and the retransmission history holds at most 32768 packets.
_WINDOW = 0x7FFF
