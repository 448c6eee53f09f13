"""Thin viewers: a classic BPF socket filter that lets the kernel drop most RTP.

A viewer bot costs about as much CPU per packet as the server (the receive path and the
wake-ups), so on a small machine the bots, not the server, would set the ceiling. With
`--thin-viewers N` each viewer's UDP socket keeps only RTP packets whose (clear) sequence
number is a multiple of N, plus everything that is not RTP: STUN (ICE consent), DTLS,
RTCP (RFC 7983 demultiplexing by the first byte, RFC 5761 for RTCP vs RTP) except sender
reports, which a viewer receives for every stream every second and a bot has no use for
(publishers never receive any; their PLIs, NACKs and receiver reports stay). Dropped
packets never reach the socket's queue, so the bot is neither woken nor charged for them.

Offsets: for a UDP socket the filter sees the datagram from the UDP header on (the
kernel runs it in `udp_queue_rcv_skb` with the header still in front), so the payload
starts at byte 8. `tests/benchmarks/test_thin_filter.py` proves that with real sockets.
"""

from __future__ import annotations

import ctypes
import socket
import struct

SO_ATTACH_FILTER = 26  # asm-generic/socket.h
UDP_HEADER = 8  # the filter's offset 0 is the UDP header, not the payload (see the tests)

# Classic BPF opcodes (linux/filter.h, linux/bpf_common.h).
LD_B_ABS = 0x30  # A = byte at k
LD_H_ABS = 0x28  # A = big-endian half-word at k
JGE_K = 0x35  # if A >= k
JEQ_K = 0x15  # if A == k
MOD_K = 0x94  # A %= k
RET_K = 0x06  # keep k bytes (0 drops)

KEEP = 0xFFFFFFFF
RTCP_SENDER_REPORT = 200  # RFC 3550 §6.4.1 packet type
_INSTRUCTION = struct.Struct("@HBBI")
_PROGRAM = struct.Struct("@HP")  # struct sock_fprog: length, pointer to the instructions

Instruction = tuple[int, int, int, int]  # code, jump if true, jump if false, k


def program(every: int, *, payload: int = UDP_HEADER) -> list[Instruction]:
    """Keep non-RTP, RTCP but sender reports, and RTP with sequence number % `every` == 0."""
    if every < 1:
        raise ValueError("every must be >= 1")
    # Jumps count instructions to skip after the current one; 11 = keep, 10 = drop.
    return [
        (LD_B_ABS, 0, 0, payload),  # 0: first byte
        (JGE_K, 0, 9, 128),  # 1: < 128: STUN, DTLS, TURN channels... -> keep
        (JGE_K, 8, 0, 192),  # 2: >= 192: not RTP/RTCP -> keep
        (LD_B_ABS, 0, 0, payload + 1),  # 3: marker bit + payload type
        (JGE_K, 0, 2, 192),  # 4: < 192: RTP -> 7
        (JGE_K, 1, 0, 224),  # 5: >= 224: RTP -> 7; 192..223 is RTCP (RFC 5761 §4)
        (JEQ_K, 3, 4, RTCP_SENDER_REPORT),  # 6: RTCP that starts with an SR -> drop, else keep
        (LD_H_ABS, 0, 0, payload + 2),  # 7: sequence number
        (MOD_K, 0, 0, every),  # 8
        (JEQ_K, 1, 0, 0),  # 9: a multiple of `every` -> keep
        (RET_K, 0, 0, 0),  # 10: drop
        (RET_K, 0, 0, KEEP),  # 11: keep
    ]


def attach(sock: socket.socket | int, instructions: list[Instruction]) -> None:
    """SO_ATTACH_FILTER: the kernel copies the program, so the buffer may go afterwards."""
    code = ctypes.create_string_buffer(b"".join(_INSTRUCTION.pack(*i) for i in instructions))
    fprog = _PROGRAM.pack(len(instructions), ctypes.addressof(code))
    if isinstance(sock, int):
        # A socket object around a borrowed descriptor; detach so closing it closes nothing.
        borrowed = socket.socket(fileno=sock)
        try:
            borrowed.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        finally:
            borrowed.detach()
    else:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def thin(sock: socket.socket | int, every: int) -> None:
    """Attach the thin-viewer filter for one packet in `every` to a UDP socket."""
    attach(sock, program(every))
