"""A publish offer as aiortc writes it (audio + video, sendonly), the seed of SDP mutations.

Fixed text rather than a fresh offer, so a seed reproduces the same frames. Its
candidates point at the discard port: the server tries ICE and gives up, as it would
with a peer that vanished.
"""

from __future__ import annotations

_FINGERPRINT = (
    "3D:50:8B:54:34:F0:3E:91:6B:7C:DC:F5:49:0E:47:"
    "E8:96:85:1B:91:69:18:6C:A4:4D:66:58:01:52:C9:EA:21"
)

OFFER_LINES: tuple[str, ...] = (
    "v=0",
    "o=- 4005628551 4005628551 IN IP4 0.0.0.0",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0 1",
    "a=msid-semantic:WMS *",
    "m=audio 9 UDP/TLS/RTP/SAVPF 96 9 0 8",
    "c=IN IP4 127.0.0.1",
    "a=sendonly",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=mid:0",
    "a=msid:93d8aa07-25d7-4d40-a41f-72b48fe69518 8037f61a-c75a-4028-86d4-3e53ac2da584",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=rtcp-mux",
    "a=ssrc:699220218 cname:84b43ec4-c655-4de0-a46f-1a039e2109f2",
    "a=rtpmap:96 opus/48000/2",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=candidate:16572de626da4e5384a0ce2d0d93678a 1 udp 2130706431 127.0.0.1 9 typ host",
    "a=end-of-candidates",
    "a=ice-ufrag:HYrb",
    "a=ice-pwd:2CLbXZ9pEZwGEpcDyjnNwe",
    f"a=fingerprint:sha-256 {_FINGERPRINT}",
    "a=setup:actpass",
    "m=video 9 UDP/TLS/RTP/SAVPF 97 98 99 100",
    "c=IN IP4 127.0.0.1",
    "a=sendonly",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=mid:1",
    "a=msid:93d8aa07-25d7-4d40-a41f-72b48fe69518 eb496047-6c03-45df-a639-b48a0830f587",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=rtcp-mux",
    "a=ssrc-group:FID 4157530117 985073140",
    "a=ssrc:4157530117 cname:84b43ec4-c655-4de0-a46f-1a039e2109f2",
    "a=ssrc:985073140 cname:84b43ec4-c655-4de0-a46f-1a039e2109f2",
    "a=rtpmap:97 VP8/90000",
    "a=rtcp-fb:97 nack",
    "a=rtcp-fb:97 nack pli",
    "a=rtcp-fb:97 goog-remb",
    "a=rtpmap:98 rtx/90000",
    "a=fmtp:98 apt=97",
    "a=rtpmap:99 H264/90000",
    "a=rtcp-fb:99 nack pli",
    "a=fmtp:99 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
    "a=rtpmap:100 rtx/90000",
    "a=fmtp:100 apt=99",
    "a=candidate:16572de626da4e5384a0ce2d0d93678a 1 udp 2130706431 127.0.0.1 9 typ host",
    "a=end-of-candidates",
    "a=ice-ufrag:HYrb",
    "a=ice-pwd:2CLbXZ9pEZwGEpcDyjnNwe",
    f"a=fingerprint:sha-256 {_FINGERPRINT}",
    "a=setup:actpass",
)


def offer() -> str:
    return "\r\n".join(OFFER_LINES) + "\r\n"
