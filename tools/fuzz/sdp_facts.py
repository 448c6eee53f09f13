"""Facts read out of negotiated SDP: ICE credentials, candidates, SSRCs, payload types
and header extension ids (RFC 8866 attribute lines)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SdpFacts:
    ice_ufrag: str
    ice_pwd: str
    candidates: tuple[tuple[str, int], ...]  # UDP host candidates (address, port)
    ssrcs: tuple[int, ...]
    payload_types: tuple[int, ...]
    extension_ids: tuple[int, ...]


def read(sdp: str) -> SdpFacts:
    ufrag = pwd = ""
    candidates: list[tuple[str, int]] = []
    ssrcs: list[int] = []
    pts: list[int] = []
    ext_ids: list[int] = []
    for line in sdp.splitlines():
        if line.startswith("a=ice-ufrag:"):
            ufrag = line.split(":", 1)[1]
        elif line.startswith("a=ice-pwd:"):
            pwd = line.split(":", 1)[1]
        elif line.startswith("a=candidate:"):
            parts = line.split()
            if len(parts) >= 6 and parts[2].lower() == "udp":
                candidates.append((parts[4], int(parts[5])))
        elif line.startswith("a=ssrc:"):
            ssrcs.append(int(line[7:].split()[0]))
        elif line.startswith("a=rtpmap:"):
            pts.append(int(line[9:].split()[0]))
        elif line.startswith("a=extmap:"):
            ext_ids.append(int(line[9:].split()[0].split("/")[0]))
    return SdpFacts(
        ufrag,
        pwd,
        tuple(dict.fromkeys(candidates)),
        tuple(dict.fromkeys(ssrcs)),
        tuple(dict.fromkeys(pts)),
        tuple(dict.fromkeys(ext_ids)),
    )
