"""A lossy viewer: random loss in the kernel before its socket, and the NACKs and PLIs a
receiver sends about it.

The kernel here has no `netem`, so loss is a classic BPF socket filter (`SO_ATTACH_FILTER`,
as `benchmarks.thin`) on the viewer's UDP socket: every RTP packet is dropped with
probability `rate`, from the kernel's per-packet random number (`SKF_AD_RANDOM`), before
it is queued. STUN, DTLS and RTCP pass (RFC 7983 / RFC 5761 demultiplexing, as in
`benchmarks.thin`): the loss is on the media, and ICE consent and the DTLS session live.
Retransmissions go through the same filter, so they are lost as often.

`NackTracker` is what a receiver does about the gaps (libwebrtc's NackRequester in
miniature): a NACK for each newly missing sequence number as soon as a later one arrives,
again every `retry_interval` while it is still missing, up to `max_retries` times or
`max_age` seconds; then the packet is given up, which for video means the picture is
broken until the next key frame: the viewer asks for one (PLI).
"""

from __future__ import annotations

from dataclasses import dataclass

from .thin import JGE_K, KEEP, LD_B_ABS, MOD_K, RET_K, UDP_HEADER, Instruction

LD_W_ABS = 0x20  # A = big-endian word at k; with k in the ancillary area, a kernel value
SKF_AD_OFF = -0x1000  # linux/filter.h: ancillary data lives at negative offsets
SKF_AD_RANDOM = 56  # a random u32 per packet (prandom_u32)
SCALE = 10_000  # loss resolution: 0.01 %


def program(rate: float, *, payload: int = UDP_HEADER) -> list[Instruction]:
    """Drop RTP with probability `rate` (0..1, at 0.01 % resolution); keep everything else."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError("rate must be within 0..1")
    threshold = round(rate * SCALE)
    random_word = (SKF_AD_OFF + SKF_AD_RANDOM) & 0xFFFFFFFF
    # Jumps count instructions to skip after the current one; 10 = keep, 9 = drop.
    return [
        (LD_B_ABS, 0, 0, payload),  # 0: first byte
        (JGE_K, 0, 8, 128),  # 1: < 128: STUN, DTLS... -> keep
        (JGE_K, 7, 0, 192),  # 2: >= 192: not RTP/RTCP -> keep
        (LD_B_ABS, 0, 0, payload + 1),  # 3: marker bit + payload type
        (JGE_K, 0, 1, 192),  # 4: < 192: RTP -> 6
        (JGE_K, 0, 4, 224),  # 5: 192..223 is RTCP (RFC 5761 §4) -> keep; >= 224: RTP
        (LD_W_ABS, 0, 0, random_word),  # 6: a random number
        (MOD_K, 0, 0, SCALE),  # 7
        (JGE_K, 1, 0, threshold),  # 8: >= threshold: keep, else drop
        (RET_K, 0, 0, 0),  # 9: drop
        (RET_K, 0, 0, KEEP),  # 10: keep
    ]


@dataclass(slots=True)
class _Missing:
    first: float  # when the gap was seen
    last: float  # when it was last NACKed
    retries: int  # NACKs sent for it


class NackTracker:
    """Missing sequence numbers of one RTP stream: what to NACK now, what was given up.

    Time is passed in (seconds, any monotonic origin). A gap wider than `max_missing`
    is given up whole at once (as libwebrtc does past its list size): too late to repair.
    """

    def __init__(
        self,
        *,
        retry_interval: float = 0.03,
        max_retries: int = 10,
        max_age: float = 1.0,
        max_missing: int = 500,
    ) -> None:
        self.retry_interval = retry_interval
        self.max_retries = max_retries
        self.max_age = max_age
        self.max_missing = max_missing
        self.highest: int | None = None  # extended sequence number
        self.missing: dict[int, _Missing] = {}
        self.nacked = 0  # sequence numbers NACKed, retries included
        self.recovered = 0  # missing packets that arrived after all
        self.given_up = 0

    def on_packet(self, seq: int, now: float) -> list[int]:
        """Count one arrival; returns the (16-bit) sequence numbers to NACK at once."""
        if self.highest is None:
            self.highest = seq + 0x10000  # room to go back past 0
            return []
        delta = (seq - self.highest) & 0xFFFF
        ext = self.highest + delta if delta < 0x8000 else self.highest + delta - 0x10000
        if ext <= self.highest:
            if self.missing.pop(ext, None) is not None:
                self.recovered += 1
            return []
        gap = ext - self.highest - 1
        first_new = self.highest + 1
        self.highest = ext
        if gap > self.max_missing:
            self.given_up += gap + len(self.missing)
            self.missing.clear()
            return []
        for s in range(first_new, ext):
            self.missing[s] = _Missing(first=now, last=now, retries=1)
        self.nacked += gap
        self._trim()
        return [s & 0xFFFF for s in range(first_new, ext)]

    def due(self, now: float) -> list[int]:
        """Sequence numbers to NACK again now; gives up those past their retries or age."""
        out = []
        for s, m in list(self.missing.items()):
            if m.retries >= self.max_retries or now - m.first >= self.max_age:
                del self.missing[s]
                self.given_up += 1
            elif now - m.last >= self.retry_interval:
                m.last = now
                m.retries += 1
                out.append(s & 0xFFFF)
        self.nacked += len(out)
        return out

    def _trim(self) -> None:
        while len(self.missing) > self.max_missing:
            del self.missing[min(self.missing)]
            self.given_up += 1
