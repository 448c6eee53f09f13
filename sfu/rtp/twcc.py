"""Transport-wide congestion control feedback: the FCI of an RTPFB FMT=15 packet.

draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1. The receiver reports,
for a run of transport-wide sequence numbers, which packets arrived and when:
a header (base sequence number, packet status count, 24-bit reference time in
64 ms units, feedback packet count), packet status chunks (§3.1.3 run length,
§3.1.4 status vector of 14 one-bit or 7 two-bit symbols), then one receive delta
per received packet (§3.1.5: 250 µs units, one unsigned octet when "small",
two signed octets when "large or negative"), each relative to the previous
packet's arrival, the first one to the reference time.

`parse_feedback` never raises: anything malformed or truncated is None, as is a
status count above `MAX_STATUS_COUNT` (no receiver reports that many packets at
once; a larger count is garbage that would only cost time). `build_feedback`
writes the same format, for tests and test clients.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

MAX_STATUS_COUNT = 8192
# Receive deltas count 250 µs ticks; the reference time counts 64 ms = 256 ticks.
TICKS_PER_SECOND = 4000
_TICKS_PER_REFERENCE = 256
_REFERENCE_BITS = 24
# Chromium writes the reference time modulo 2**24 units (libwebrtc SetBase), so its
# value wraps every 2**24 * 64 ms (about 12.4 days); readers unwrap across packets.
REFERENCE_TIME_PERIOD = (1 << _REFERENCE_BITS) * _TICKS_PER_REFERENCE / TICKS_PER_SECOND

# Status symbols (§3.1.1).
_NOT_RECEIVED, _SMALL_DELTA, _LARGE_DELTA, _RESERVED = 0, 1, 2, 3
_RUN_LENGTH_MAX = 0x1FFF
_ONE_BIT_SYMBOLS, _TWO_BIT_SYMBOLS = 14, 7

_HEAD = struct.Struct("!HHI")
_U16 = struct.Struct("!H")
_I16 = struct.Struct("!h")


@dataclass(frozen=True, slots=True)
class TransportFeedback:
    """One feedback packet's report, in sequence order.

    `packets` holds (16-bit transport-wide sequence number, arrival time) for
    every packet the report covers: the arrival time in seconds on the
    receiver's clock (reference time plus the accumulated receive deltas;
    comparable across feedback packets of one receiver until the reference time
    wraps), or None for a packet reported as not received.
    """

    base_sequence: int
    feedback_count: int
    packets: tuple[tuple[int, float | None], ...]


def parse_feedback(fci: bytes) -> TransportFeedback | None:
    """The report in `fci` (the bytes after the sender and media SSRCs), or None.

    Bytes after the last receive delta (zero padding) are ignored. A reserved
    status symbol, a chunk or delta missing, a status count of 0 or above
    `MAX_STATUS_COUNT` all make the packet malformed.
    """
    size = len(fci)
    if size < _HEAD.size:
        return None
    base, count, reference_word = _HEAD.unpack_from(fci)
    if not 0 < count <= MAX_STATUS_COUNT:
        return None
    reference = reference_word >> 8
    if reference & 0x800000:  # signed 24-bit (§3.1)
        reference -= 1 << _REFERENCE_BITS
    read = _read_symbols(fci, count)
    if read is None:
        return None
    symbols, pos = read
    ticks = reference * _TICKS_PER_REFERENCE
    packets: list[tuple[int, float | None]] = []
    for index, symbol in enumerate(symbols):
        seq = (base + index) & 0xFFFF
        if symbol == _NOT_RECEIVED:
            packets.append((seq, None))
            continue
        if symbol == _SMALL_DELTA:
            if pos >= size:
                return None
            ticks += fci[pos]
            pos += 1
        else:
            if pos + 2 > size:
                return None
            ticks += _I16.unpack_from(fci, pos)[0]
            pos += 2
        packets.append((seq, ticks / TICKS_PER_SECOND))
    return TransportFeedback(base, reference_word & 0xFF, tuple(packets))


def _read_symbols(fci: bytes, count: int) -> tuple[bytearray, int] | None:
    """`count` status symbols from the chunks after the header, and where the receive
    deltas start; None when the chunks end early or carry the reserved symbol. The
    last chunk may describe more packets than remain: the surplus is ignored."""
    symbols = bytearray()
    pos = _HEAD.size
    size = len(fci)
    while len(symbols) < count:
        if pos + 2 > size:
            return None
        chunk = _U16.unpack_from(fci, pos)[0]
        pos += 2
        left = count - len(symbols)
        if not chunk & 0x8000:  # §3.1.3 run length: T=0, 2-bit symbol, 13-bit length
            symbols += bytes([chunk >> 13 & 3]) * min(chunk & _RUN_LENGTH_MAX, left)
        elif not chunk & 0x4000:  # §3.1.4 status vector, S=0: 14 one-bit symbols
            for i in range(min(_ONE_BIT_SYMBOLS, left)):
                symbols.append(chunk >> (13 - i) & 1)
        else:  # S=1: 7 two-bit symbols
            for i in range(min(_TWO_BIT_SYMBOLS, left)):
                symbols.append(chunk >> (12 - 2 * i) & 3)
    if _RESERVED in symbols:
        return None
    return symbols, pos


def build_feedback(
    base_sequence: int,
    reference_time: int,
    arrivals: Sequence[float | None],
    *,
    feedback_count: int = 0,
) -> bytes:
    """The FCI reporting `arrivals` (seconds on the receiver's clock, None for a packet
    not received) for the sequence numbers from `base_sequence` on.

    `reference_time` is the header field: a signed 24-bit count of 64 ms. Arrival
    times are rounded to 250 µs. Packets may be reported in any arrival order (a
    negative delta takes two octets). ValueError when a field does not fit: an
    empty or over-long report, or an arrival more than about 8 s from the previous
    one (or, for the first, from the reference time). The result is not padded to
    32 bits: RTCP serialization (`sfu.rtp.rtcp.serialize`) pads the packet.
    """
    if not 0 <= base_sequence <= 0xFFFF:
        raise ValueError("base_sequence must be in 0..65535")
    if not -(1 << 23) <= reference_time < 1 << 23:
        raise ValueError("reference_time must be a signed 24-bit value")
    if not 0 <= feedback_count <= 0xFF:
        raise ValueError("feedback_count must be in 0..255")
    if not 0 < len(arrivals) <= MAX_STATUS_COUNT:
        raise ValueError(f"a report covers 1..{MAX_STATUS_COUNT} packets")
    symbols: list[int] = []
    deltas = bytearray()
    last = reference_time * _TICKS_PER_REFERENCE
    for arrival in arrivals:
        if arrival is None:
            symbols.append(_NOT_RECEIVED)
            continue
        ticks = round(arrival * TICKS_PER_SECOND)
        delta, last = ticks - last, ticks
        if 0 <= delta <= 0xFF:
            symbols.append(_SMALL_DELTA)
            deltas.append(delta)
        elif -0x8000 <= delta <= 0x7FFF:
            symbols.append(_LARGE_DELTA)
            deltas += _I16.pack(delta)
        else:
            raise ValueError("an arrival is too far from the previous one for a 16-bit delta")
    head = _HEAD.pack(
        base_sequence,
        len(symbols),
        (reference_time & 0xFFFFFF) << 8 | feedback_count,
    )
    return head + _encode_chunks(symbols) + bytes(deltas)


def _encode_chunks(symbols: list[int]) -> bytes:
    """Greedy chunking: a run length chunk for a run of 14 or more (or for all that is
    left), else a one-bit vector when the next 14 need no large delta, else a two-bit
    vector. Vectors past the end are padded with "not received", which the status
    count excludes."""
    out = bytearray()
    i, total = 0, len(symbols)
    while i < total:
        symbol = symbols[i]
        run = 1
        while i + run < total and run < _RUN_LENGTH_MAX and symbols[i + run] == symbol:
            run += 1
        if run >= _ONE_BIT_SYMBOLS or i + run == total:
            out += _U16.pack(symbol << 13 | run)
            i += run
            continue
        ahead = symbols[i : i + _ONE_BIT_SYMBOLS]
        if _LARGE_DELTA not in ahead:
            chunk = 0x8000
            for k, s in enumerate(ahead):
                chunk |= s << (13 - k)
            i += _ONE_BIT_SYMBOLS
        else:
            chunk = 0xC000
            for k, s in enumerate(symbols[i : i + _TWO_BIT_SYMBOLS]):
                chunk |= s << (12 - 2 * k)
            i += _TWO_BIT_SYMBOLS
        out += _U16.pack(chunk)
    return bytes(out)
