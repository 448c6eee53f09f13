"""Mutated SDP offers and answers: lines dropped, repeated, reordered and rewritten."""

from __future__ import annotations

import random
import re

from . import sdp_sample

_NUMBER = re.compile(r"\d+")
_ODD_NUMBERS = (
    "0",
    "-1",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "99999999999999999999",
    "128",
    "255",
    "256",
    "15",
    "16",
)
_ODD_LINES = (
    "a=extmap:0 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:15 urn:x",
    "a=extmap:256 urn:x",
    "a=extmap:14 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:1/sendonly urn:x",
    "a=rtpmap:96 opus/0/2",
    "a=rtpmap:127 VP8/90000",
    "a=rtpmap:96",
    "a=fmtp:98 apt=98",
    "a=fmtp:100 apt=1000",
    "a=ssrc:0 cname:x",
    "a=ssrc-group:FID 1",
    "a=ssrc-group:SIM 1 2 3",
    "a=simulcast:send a;b",
    "a=rid:a send",
    "a=mid:",
    "a=mid:" + "m" * 300,
    "a=msid:",
    "a=candidate:1 1 udp 1 999.1.1.1 9 typ host",
    "a=candidate:",
    "a=candidate:x 1 tcp 1 a b",
    "a=fingerprint:md5 00",
    "a=fingerprint:sha-256",
    "a=setup:holdconn",
    "a=ice-ufrag:",
    "a=ice-pwd:" + "p" * 300,
    "a=group:BUNDLE 0 0 0",
    "a=group:BUNDLE",
    "m=application 9 x",
    "m=video 0 UDP/TLS/RTP/SAVPF 97",
    "m=audio 9 RTP/AVP",
    "m=",
    "c=IN IP6 ::1",
    "a=inactive",
    "a=recvonly",
    "a=sendrecv",
    "a=rtcp-fb:* nack",
    "a=rtcp-fb:97 ccm fir",
    "a=ice-lite",
    "a=end-of-candidates",
    "\x00",
    "a=" + "x" * 5000,
    "b=AS:99999999999",
)


def mutated_sdp(rng: random.Random) -> tuple[str, str]:
    """(SDP text, what was done to it)."""
    lines = list(sdp_sample.OFFER_LINES)
    done: list[str] = []
    for _ in range(rng.choice([1, 1, 2, 3, 8])):
        index = rng.randrange(len(lines))
        action = rng.randrange(8)
        if action == 0:
            del lines[index]
            done.append("drop")
        elif action == 1:
            lines.insert(index, lines[index])
            done.append("repeat")
        elif action == 2:
            lines.insert(index, rng.choice(_ODD_LINES))
            done.append("insert")
        elif action == 3:
            lines[index] = _NUMBER.sub(lambda _: rng.choice(_ODD_NUMBERS), lines[index], count=1)
            done.append("number")
        elif action == 4:
            rng.shuffle(lines)
            done.append("shuffle")
        elif action == 5:
            start = (
                next(i for i, line in enumerate(lines) if line.startswith("m="))
                if any(line.startswith("m=") for line in lines)
                else 0
            )
            lines.extend(lines[start:] * rng.choice([2, 20]))
            done.append("many-sections")
        elif action == 6:
            cut = rng.randrange(len(lines[index]) + 1)
            lines[index] = lines[index][:cut]
            done.append("truncate")
        else:
            lines[index] = lines[index].replace(":", rng.choice(["", "::", " ", "\t"]), 1)
            done.append("separator")
    separator = rng.choice(["\r\n", "\r\n", "\n", "\r", ""])
    return separator.join(lines) + separator, "+".join(done)
