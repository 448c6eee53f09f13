"""Mutated datagrams for a live ICE/DTLS-SRTP transport: STUN, DTLS records, SRTP and
SRTCP that authenticate (protected with the negotiated keys) and that do not, and
random bytes across the RFC 7983 demultiplexing ranges.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from enum import StrEnum

from . import rtp_packets as rtp
from . import stun_packets as stun
from .media_session import Endpoint


class Protect(StrEnum):
    NONE = "none"
    RTP = "rtp"
    RTCP = "rtcp"


@dataclass(frozen=True, slots=True)
class Datagram:
    family: str  # stun, dtls, srtp, srtcp, bad_auth, random
    label: str
    data: bytes
    protect: Protect  # protect with the endpoint's SRTP session before sending
    from_client: bool  # send from the client's ICE socket (else from a stranger's)
    endpoint: Endpoint
    corrupt_after_protect: bool = False

    def describe(self) -> str:
        source = "client ICE socket" if self.from_client else "plain socket"
        protect = "" if self.protect is Protect.NONE else f", SRTP-protect as {self.protect}"
        corrupt = ", then one byte flipped" if self.corrupt_after_protect else ""
        return (
            f"{self.family}/{self.label} to {self.endpoint.name} from {source}{protect}"
            f"{corrupt}: bytes.fromhex({self.data.hex()!r})"
        )


# RFC 7983 boundaries: STUN 0-3, ZRTP 16-19, DTLS 20-63, TURN 64-79, RTP/RTCP 128-191.
_FIRST_BYTES = (
    0,
    1,
    2,
    3,
    4,
    15,
    16,
    19,
    20,
    21,
    22,
    23,
    63,
    64,
    79,
    80,
    127,
    128,
    144,
    191,
    192,
    255,
)


class UdpMutator:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._strangers = [
            rng.getrandbits(32) for _ in range(6)
        ]  # bounded: SRTP keeps a stream each
        self._next_seq: dict[int, int] = {}
        self._table = [
            (15, self.stun),
            (12, self.dtls),
            (30, self.srtp),
            (20, self.srtcp),
            (10, self.bad_auth),
            (13, self.random),
        ]
        self._weights = [w for w, _ in self._table]

    def datagram(self, endpoints: list[Endpoint]) -> Datagram:
        strategy = self.rng.choices(self._table, self._weights)[0][1]
        return strategy(self.rng.choice(endpoints))

    # -- helpers --------------------------------------------------------------------
    def _ssrc(self, endpoint: Endpoint) -> int:
        known = endpoint.media_ssrcs
        if known and self.rng.random() < 0.7:
            return self.rng.choice(known)
        return self.rng.choice(self._strangers)

    def _pt(self, endpoint: Endpoint) -> int:
        if endpoint.payload_types and self.rng.random() < 0.8:
            return self.rng.choice(endpoint.payload_types)
        return self.rng.randrange(128)

    def _seq(self, ssrc: int) -> int:
        """Mostly in order: SRTP's replay window refuses packets far behind the newest."""
        seq = self._next_seq.get(ssrc, self.rng.getrandbits(16))
        if self.rng.random() < 0.05:
            seq = self.rng.getrandbits(16)
        self._next_seq[ssrc] = (seq + self.rng.choice([1, 1, 1, 2, 10])) & 0xFFFF
        return seq

    def _bytes(self, most: int) -> bytes:
        return self.rng.randbytes(self.rng.choice([0, 1, 2, 3, 4, 7, 16, most]))

    # -- STUN -----------------------------------------------------------------------
    def stun(self, endpoint: Endpoint) -> Datagram:
        rng = self.rng
        transaction = rng.randbytes(12)
        username = f"{endpoint.server.ice_ufrag}:{endpoint.client_ufrag}".encode()
        key = endpoint.server.ice_pwd.encode()
        role = rng.choice([stun.ICE_CONTROLLING, stun.ICE_CONTROLLED])
        attrs = (
            stun.attribute(stun.USERNAME, username)
            + stun.attribute(stun.PRIORITY, struct.pack("!I", rng.getrandbits(32)))
            + stun.attribute(role, rng.randbytes(8))
        )
        from_client = rng.random() < 0.5
        if from_client and rng.random() < 0.2:
            attrs += stun.attribute(stun.USE_CANDIDATE, b"")  # only on the pair in use
        variant = rng.randrange(10)
        if variant == 0:
            data, label = (
                stun.with_integrity(stun.BINDING_REQUEST, transaction, attrs, key),
                "valid",
            )
        elif variant == 1:
            data = stun.with_integrity(stun.BINDING_REQUEST, transaction, attrs, key, corrupt=True)
            label = "bad_integrity"
        elif variant == 2:
            data = stun.with_integrity(stun.BINDING_REQUEST, transaction, attrs, rng.randbytes(22))
            label = "wrong_password"
        elif variant == 3:
            bad_user = rng.choice([b"", b":", b"x" * 600, username[::-1], username + b"\x00"])
            attrs = (
                stun.attribute(stun.USERNAME, bad_user)
                + attrs[len(stun.attribute(stun.USERNAME, username)) :]
            )
            data, label = (
                stun.with_integrity(stun.BINDING_REQUEST, transaction, attrs, key),
                "username",
            )
        elif variant == 4:
            valid = stun.with_integrity(stun.BINDING_REQUEST, transaction, attrs, key)
            length = rng.choice([0, 4, len(valid) - 20 + 4, len(valid) - 20 - 4, 0xFFFF, 3])
            data, label = valid[:2] + struct.pack("!H", length) + valid[4:], f"length={length}"
        elif variant == 5:
            valid = stun.with_integrity(stun.BINDING_REQUEST, transaction, attrs, key)
            data, label = valid[: rng.randrange(len(valid))], "truncated"
        elif variant == 6:
            kind = rng.choice(
                [
                    stun.BINDING_SUCCESS,
                    stun.BINDING_ERROR,
                    stun.BINDING_INDICATION,
                    0x0003,
                    0x0113,
                    0x3FFF,
                    rng.getrandbits(14),
                ]
            )
            body = stun.attribute(stun.XOR_MAPPED_ADDRESS, self._bytes(20)) + stun.attribute(
                stun.ERROR_CODE, self._bytes(8)
            )
            data, label = stun.message(kind, transaction, body), f"type=0x{kind:04x}"
        elif variant == 7:
            junk = b"".join(
                stun.attribute(
                    rng.getrandbits(16), self._bytes(64), rng.choice([None, 0, 1, 0xFFFF, 600])
                )
                for _ in range(rng.choice([1, 3, 40]))
            )
            data = stun.with_integrity(stun.BINDING_REQUEST, transaction, attrs + junk, key)
            label = "odd_attributes"
        elif variant == 8:
            valid = stun.with_integrity(stun.BINDING_REQUEST, transaction, attrs, key)
            data = valid[:-4] + rng.randbytes(4)
            label = "bad_fingerprint"
        else:
            data = stun.message(stun.BINDING_REQUEST, transaction, attrs, magic=rng.getrandbits(32))
            label = "bad_magic"
        return Datagram("stun", label, data, Protect.NONE, from_client, endpoint)

    # -- DTLS -----------------------------------------------------------------------
    def dtls(self, endpoint: Endpoint) -> Datagram:
        rng = self.rng
        records = []
        for _ in range(rng.choice([1, 1, 1, 2, 5])):
            content = rng.choice([20, 21, 22, 23, 24, 25, rng.randrange(20, 64)])
            version = rng.choice([0xFEFD, 0xFEFF, 0xFEFC, 0x0303, rng.getrandbits(16)])
            epoch = rng.choice([0, 1, 2, 0xFFFF, rng.getrandbits(16)])
            seq = rng.choice([0, 1, rng.getrandbits(48), 0xFFFFFFFFFFFF])
            if content == 21:  # alert: warning/fatal, close_notify and friends
                fragment = bytes([rng.choice([1, 2, 0, 255]), rng.choice([0, 10, 20, 40, 80])])
            elif content == 20:
                fragment = b"\x01"
            elif content == 22:  # handshake header (RFC 6347 §4.2.2) with lying lengths
                kind = rng.choice([1, 2, 3, 11, 12, 14, 16, 20, 255])
                body = self._bytes(200)
                fragment = bytes([kind]) + rng.choice([len(body), 0xFFFFFF, 0]).to_bytes(3, "big")
                fragment += struct.pack("!H", rng.getrandbits(16))
                fragment += rng.choice([0, 0xFFFFFF, rng.getrandbits(24)]).to_bytes(3, "big")
                fragment += rng.choice([len(body), 0xFFFFFF]).to_bytes(3, "big") + body
            else:
                fragment = self._bytes(300)
            length = rng.choice([len(fragment)] * 3 + [0, len(fragment) + 1, 0xFFFF])
            records.append(
                struct.pack("!BHH", content, version, epoch)
                + seq.to_bytes(6, "big")
                + struct.pack("!H", length)
                + fragment
            )
        data = b"".join(records)
        if rng.random() < 0.1:
            data = data[: rng.randrange(1, 13)]  # a header cut short
        label = f"records={len(records)} first=0x{data[0]:02x}"
        return Datagram("dtls", label, data, Protect.NONE, rng.random() < 0.5, endpoint)

    # -- SRTP with valid authentication ---------------------------------------------
    def _extension(self) -> tuple[bytes, str]:
        rng = self.rng
        if rng.random() < 0.5:
            body = b"".join(
                rtp.one_byte_element(
                    rng.randrange(16),
                    self._bytes(16)[:16] or b"\x00",
                    rng.choice([None, None, 1, 16]),
                )
                if rng.random() < 0.9
                else b"\x00" * rng.randrange(1, 4)
                for _ in range(rng.choice([1, 2, 5, 14]))
            )
            profile, form = rtp.ONE_BYTE_PROFILE, "one_byte"
        else:
            body = b"".join(
                rtp.two_byte_element(
                    rng.randrange(256),
                    rng.randbytes(rng.choice([0, 1, 16, 255])),
                    rng.choice([None, None, 0, 255]),
                )
                for _ in range(rng.choice([1, 2, 5]))
            )
            profile = rng.choice([rtp.TWO_BYTE_PROFILE, 0x100F, 0x1001])
            form = "two_byte"
        if rng.random() < 0.1:
            profile, form = rng.getrandbits(16), "other_profile"
        return rtp.extension_block(profile, body), f"{form}:{len(body)}"

    def _payload(self) -> bytes:
        rng = self.rng
        choice = rng.randrange(5)
        if choice == 0:  # VP8 descriptor with X/I/L/T/K bits and a picture id, maybe cut
            return bytes(
                [rng.choice([0x90, 0x10, 0x80, 0xB0, 0xFF]), rng.getrandbits(8), rng.getrandbits(8)]
            )[: rng.randrange(4)] + self._bytes(40)
        if choice == 1:  # H264: STAP-A (24), FU-A (28), odd NAL types
            return bytes([rng.choice([24, 28, 0x65, 0x67, 31, 0])]) + self._bytes(40)
        if choice == 2:
            return b""
        return self._bytes(1200)

    def srtp(self, endpoint: Endpoint) -> Datagram:
        rng = self.rng
        extension, label = (None, "no_ext") if rng.random() < 0.2 else self._extension()
        csrcs = [rng.getrandbits(32) for _ in range(rng.choice([0, 0, 0, 1, 15]))]
        padding = rng.choice([0, 0, 0, 1, 4, 255])
        ssrc = self._ssrc(endpoint)
        data = rtp.rtp(
            seq=self._seq(ssrc),
            ts=rng.getrandbits(32),
            ssrc=ssrc,
            pt=self._pt(endpoint),
            marker=rng.random() < 0.3,
            csrcs=csrcs,
            extension=extension,
            payload=self._payload(),
            padding=padding,
            pad_count=rng.choice([None, None, 0, 255]) if padding else None,
        )
        label = f"{label} csrcs={len(csrcs)} padding={padding}"
        return Datagram("srtp", label, data, Protect.RTP, rng.random() < 0.5, endpoint)

    # -- SRTCP with valid authentication --------------------------------------------
    def _rtcp_packet(self, endpoint: Endpoint) -> bytes:
        rng = self.rng
        me, media = rng.getrandbits(32), self._ssrc(endpoint)
        words = rng.choice([None] * 4 + [0, 1, 2, 0xFFFF, rng.getrandbits(8)])
        blocks = [
            rtp.report_block(
                media, lost=rng.getrandbits(32), lsr=rng.getrandbits(32), dlsr=rng.getrandbits(32)
            )
            for _ in range(rng.choice([0, 1, 3]))
        ]
        count = rng.choice([None, None, 0, 31])
        kind = rng.randrange(11)
        if kind == 0:
            return rtp.sender_report(media, blocks, count=count, words=words)
        if kind == 1:
            return rtp.receiver_report(me, blocks, count=count, words=words)
        if kind == 2:
            fci = b"".join(
                rtp.nack_fci(rng.getrandbits(16), rng.getrandbits(16))
                for _ in range(rng.choice([0, 1, 10, 200]))
            )
            return rtp.feedback(rtp.RTPFB, 1, me, media, fci, words=words)
        if kind == 3:
            return rtp.feedback(rtp.PSFB, 1, me, media, self._bytes(8), words=words)
        if kind == 4:
            fci = rtp.fir_fci(media, rng.getrandbits(8))[: rng.choice([8, 8, 3])]
            return rtp.feedback(rtp.PSFB, 4, me, 0, fci, words=words)
        if kind == 5:
            ssrcs = [media] * rng.choice([0, 1, 3])
            fci = rtp.remb_fci(
                rng.getrandbits(6), rng.getrandbits(18), ssrcs, rng.choice([None, 0, 255])
            )
            return rtp.feedback(
                rtp.PSFB, 15, me, 0, fci[: rng.choice([len(fci), 4, 7])], words=words
            )
        if kind == 6:
            return rtp.rtcp(rtp.SDES, rng.choice([1, 31]), self._bytes(64), words=words)
        if kind == 7:
            return rtp.rtcp(
                rtp.BYE,
                rng.choice([0, 1, 31]),
                struct.pack("!I", media) + self._bytes(16),
                words=words,
            )
        if kind == 8:
            return rtp.feedback(rtp.RTPFB, 15, me, media, self._bytes(64), words=words)  # TWCC
        if kind == 9:
            return rtp.rtcp(
                rng.choice([rtp.APP, rtp.XR, 192, 195, 208, 223, 72, 79]),
                rng.randrange(32),
                self._bytes(64),
                words=words,
            )
        return rtp.rtcp(
            rng.choice([rtp.RR, rtp.SR]),
            rng.randrange(32),
            self._bytes(64),
            words=words,
            padding=True,
            version=rng.choice([2, 2, 0, 1, 3]),
        )

    def srtcp(self, endpoint: Endpoint) -> Datagram:
        packets = [self._rtcp_packet(endpoint) for _ in range(self.rng.choice([1, 1, 2, 4]))]
        data = b"".join(packets)
        label = "compound=" + "+".join(str(p[1]) for p in packets)
        return Datagram("srtcp", label, data, Protect.RTCP, self.rng.random() < 0.5, endpoint)

    # -- failing authentication -----------------------------------------------------
    def bad_auth(self, endpoint: Endpoint) -> Datagram:
        base = self.srtp(endpoint) if self.rng.random() < 0.6 else self.srtcp(endpoint)
        if self.rng.random() < 0.7:
            return Datagram(
                "bad_auth",
                f"flipped:{base.family}",
                base.data,
                base.protect,
                base.from_client,
                endpoint,
                corrupt_after_protect=True,
            )
        return Datagram(
            "bad_auth",
            f"plaintext:{base.family}",
            base.data,
            Protect.NONE,
            base.from_client,
            endpoint,
        )

    # -- random bytes ---------------------------------------------------------------
    def random(self, endpoint: Endpoint) -> Datagram:
        rng = self.rng
        size = rng.choice([1, 2, 3, 12, 13, 20, 100, 1200, rng.randrange(1, 1500), 9000])
        data = bytearray(rng.randbytes(size))
        if rng.random() < 0.7:
            data[0] = rng.choice(_FIRST_BYTES)
        return Datagram(
            "random",
            f"first=0x{data[0]:02x} size={size}",
            bytes(data),
            Protect.NONE,
            rng.random() < 0.5,
            endpoint,
        )
