"""SRTP/SRTCP protection for what the SFU sends (RFC 3711, RFC 7714).

Our own sender side, so the fan-out can encrypt without a library call per
packet per viewer in pure Python today and in native code (sfu/_fastpath.c)
later, with byte-identical output to libsrtp (the tests compare the two).
Receiving stays with aiortc/libsrtp.

Profiles: AES128_CM_HMAC_SHA1_80 (RFC 3711 §4.1.1, §4.2.1) and
AEAD_AES_128_GCM / AEAD_AES_256_GCM (RFC 7714).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from enum import StrEnum

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_HEADER = struct.Struct("!BBHII")


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


def header_length(packet: bytes) -> int:
    """RTP header length including CSRCs and the extension block."""
    length = 12 + 4 * (packet[0] & 0x0F)
    if packet[0] & 0x10:
        length += 4 + 4 * int.from_bytes(packet[length + 2 : length + 4], "big")
    return length


class RocTracker:
    """The sender's packet index per SSRC (RFC 3711 §3.3.1), estimated exactly as
    libsrtp does so the output is identical: ROC guessing only once the highest
    index passed 2^15, so an early jump counts as forward, and late packets from
    before a wrap keep their old ROC.
    """

    __slots__ = ("_highest",)

    def __init__(self) -> None:
        self._highest: dict[int, int] = {}  # ssrc -> highest 48-bit index sent

    def index(self, ssrc: int, seq: int) -> int:
        highest = self._highest.get(ssrc)
        if highest is None:
            self._highest[ssrc] = seq
            return seq
        if highest > 0x8000:
            roc, local = highest >> 16, highest & 0xFFFF
            if local < 0x8000:
                if seq - local > 0x8000:
                    guess, delta = ((roc - 1) << 16) | seq, seq - local - 0x10000
                else:
                    guess, delta = (roc << 16) | seq, seq - local
            elif local - 0x8000 > seq:
                guess, delta = ((roc + 1) << 16) | seq, seq - local + 0x10000
            else:
                guess, delta = (roc << 16) | seq, seq - local
        else:
            guess, delta = seq, seq - (highest & 0xFFFF)
        if delta > 0:
            self._highest[ssrc] = guess
        return guess & 0xFFFFFFFFFFFF

    def forget(self, ssrc: int) -> None:
        """The stream ended; its SSRC must never be sent again with these keys."""
        self._highest.pop(ssrc, None)

    def __len__(self) -> int:
        return len(self._highest)


class SrtpSender:
    """Protects outgoing RTP and RTCP for one DTLS-SRTP association."""

    __slots__ = ("_aead", "_keys", "_rocs", "_rtcp_aead", "_rtcp_index")

    def __init__(self, keys: SessionKeys) -> None:
        self._keys = keys
        self._rocs = RocTracker()
        self._rtcp_index = 1  # libsrtp's first SRTCP index
        self._aead = AESGCM(keys.rtp_key) if keys.profile.aead else None
        self._rtcp_aead = AESGCM(keys.rtcp_key) if keys.profile.aead else None

    def forget(self, ssrc: int) -> None:
        self._rocs.forget(ssrc)

    @property
    def tracked(self) -> int:
        """How many SSRCs have a packet index (bounded by the streams still open)."""
        return len(self._rocs)

    @property
    def keys(self) -> SessionKeys:
        return self._keys

    def protect(self, packet: bytes) -> bytes:
        ssrc = int.from_bytes(packet[8:12], "big")
        seq = int.from_bytes(packet[2:4], "big")
        index = self._rocs.index(ssrc, seq)
        roc = (index >> 16) & 0xFFFFFFFF
        header = header_length(packet)
        keys = self._keys
        if self._aead is not None:
            # RFC 7714 §8.1: IV = (00 00 || SSRC || ROC || SEQ) XOR salt; AAD = header.
            iv = _xor(
                b"\x00\x00" + packet[8:12] + roc.to_bytes(4, "big") + packet[2:4], keys.rtp_salt
            )
            return packet[:header] + self._aead.encrypt(iv, packet[header:], packet[:header])
        # RFC 3711 §4.1.1: IV = (salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16)
        iv = _xor(
            keys.rtp_salt + b"\x00\x00",
            b"\x00\x00\x00\x00" + packet[8:12] + (index & 0xFFFFFFFFFFFF).to_bytes(6, "big")
            + b"\x00\x00",
        )  # fmt: skip
        encryptor = Cipher(algorithms.AES(keys.rtp_key), modes.CTR(iv)).encryptor()
        body = packet[:header] + encryptor.update(packet[header:]) + encryptor.finalize()
        tag = hmac.new(keys.rtp_auth, body + roc.to_bytes(4, "big"), hashlib.sha1).digest()
        return body + tag[:10]

    def protect_rtcp(self, packet: bytes) -> bytes:
        """SRTCP (RFC 3711 §3.4): encrypted after the first 8 bytes, E flag + index appended."""
        index = self._rtcp_index
        self._rtcp_index = (index + 1) & 0x7FFFFFFF
        trailer = (0x80000000 | index).to_bytes(4, "big")
        keys = self._keys
        ssrc = packet[4:8]
        if self._rtcp_aead is not None:
            # RFC 7714 §9.1: IV = (00 00 || SSRC || 00 00 || index) XOR salt;
            # AAD = the first 8 bytes + the trailer.
            iv = _xor(b"\x00\x00" + ssrc + b"\x00\x00" + index.to_bytes(4, "big"), keys.rtcp_salt)
            sealed = self._rtcp_aead.encrypt(iv, packet[8:], packet[:8] + trailer)
            return packet[:8] + sealed + trailer
        iv = _xor(
            keys.rtcp_salt + b"\x00\x00",
            b"\x00\x00\x00\x00" + ssrc + b"\x00\x00" + index.to_bytes(4, "big") + b"\x00\x00",
        )
        encryptor = Cipher(algorithms.AES(keys.rtcp_key), modes.CTR(iv)).encryptor()
        body = packet[:8] + encryptor.update(packet[8:]) + encryptor.finalize() + trailer
        tag = hmac.new(keys.rtcp_auth, body, hashlib.sha1).digest()
        return body + tag[:10]


def _xor(a: bytes, b: bytes) -> bytes:
    if len(a) != len(b):
        raise ValueError("xor of unequal lengths")
    # As integers: four times faster than byte by byte, and this runs per packet.
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")
