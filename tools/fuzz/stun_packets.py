"""STUN messages (RFC 5389 / 8489) with optional lies: lengths, attributes, integrity.

A correct MESSAGE-INTEGRITY (HMAC-SHA1 with the server's ICE password, RFC 5389 §15.4)
and FINGERPRINT (CRC-32 xor 0x5354554e, §15.5) let mutated requests get past the first
checks into ICE's own handling.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import struct

MAGIC = 0x2112A442
BINDING_REQUEST, BINDING_INDICATION = 0x0001, 0x0011
BINDING_SUCCESS, BINDING_ERROR = 0x0101, 0x0111
USERNAME, MESSAGE_INTEGRITY, FINGERPRINT = 0x0006, 0x0008, 0x8028
PRIORITY, USE_CANDIDATE, ICE_CONTROLLED, ICE_CONTROLLING = 0x0024, 0x0025, 0x8029, 0x802A
ERROR_CODE, XOR_MAPPED_ADDRESS, UNKNOWN_ATTRIBUTES = 0x0009, 0x0020, 0x000A


def attribute(kind: int, value: bytes, length: int | None = None) -> bytes:
    declared = len(value) if length is None else length
    return (
        struct.pack("!HH", kind & 0xFFFF, declared & 0xFFFF) + value + b"\x00" * (-len(value) % 4)
    )


def message(
    kind: int,
    transaction: bytes,
    attributes: bytes,
    *,
    length: int | None = None,
    magic: int = MAGIC,
) -> bytes:
    declared = len(attributes) if length is None else length
    return struct.pack("!HHI", kind & 0xFFFF, declared & 0xFFFF, magic & 0xFFFFFFFF) + (
        transaction + attributes
    )


def with_integrity(
    kind: int,
    transaction: bytes,
    attributes: bytes,
    key: bytes,
    *,
    fingerprint: bool = True,
    corrupt: bool = False,
) -> bytes:
    """Append MESSAGE-INTEGRITY (and FINGERPRINT) computed over the message as RFC 5389
    §15.4 says: the length field already counts the integrity attribute."""
    head = message(kind, transaction, attributes, length=len(attributes) + 24)
    digest = hmac.new(key, head, hashlib.sha1).digest()
    if corrupt:
        digest = bytes([digest[0] ^ 0xFF]) + digest[1:]
    packet = head + attribute(MESSAGE_INTEGRITY, digest)
    if not fingerprint:
        return packet
    head = message(
        kind,
        transaction,
        attributes + attribute(MESSAGE_INTEGRITY, digest),
        length=len(attributes) + 24 + 8,
    )
    crc = (binascii.crc32(head) ^ 0x5354554E) & 0xFFFFFFFF
    return head + attribute(FINGERPRINT, struct.pack("!I", crc))
