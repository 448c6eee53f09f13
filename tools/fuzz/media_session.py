"""A real media session to fuzz: a host on stage publishing audio and video with the
project's own client (aiortc), and a viewer receiving it, both on loopback.

For each of the two transports (the publisher's publish connection, the viewer's
subscribe connection) an `Endpoint` exposes what packets need to pass the server's
checks: its media address, the client's own ICE socket, the server's ICE credentials
(for STUN integrity) and an SRTP session keyed like the client's (RFC 5764 §4.2).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import pylibsrtp
from aiortc import RTCPeerConnection
from aiortc.rtcdtlstransport import SRTP_PROFILES

from signaling.client import StageClient
from signaling.roles import Role

from . import accounts, sdp_facts, tracks
from .sdp_facts import SdpFacts

CONNECT_TIMEOUT = 20.0


@dataclass(slots=True)
class Endpoint:
    name: str  # "publish" or "subscribe"
    server_address: tuple[str, int]  # the server's end of the nominated ICE pair
    ice_socket: asyncio.DatagramTransport  # the client's own ICE socket
    server: SdpFacts  # what the server wrote (ICE credentials, its SSRCs on subscribe)
    client: SdpFacts  # what the client wrote (its SSRCs, payload types on publish)
    client_ufrag: str
    srtp: pylibsrtp.Session  # protects as the client does, with a session of our own

    def send_from_client(self, data: bytes) -> None:
        self.ice_socket.sendto(data, self.server_address)

    @property
    def media_ssrcs(self) -> tuple[int, ...]:
        """The SSRCs RTP and RTCP on this transport are about."""
        return self.client.ssrcs if self.name == "publish" else self.server.ssrcs

    @property
    def payload_types(self) -> tuple[int, ...]:
        return self.server.payload_types or self.client.payload_types


class MediaSession:
    """Join, publish, receive; `close()` ends both clients."""

    def __init__(self, publisher: StageClient, viewer: StageClient) -> None:
        self.publisher = publisher
        self.viewer = viewer
        self.forwarded = 0  # RTP packets the viewer received (and decrypted)
        self._count_instead_of_decoding()

    def _count_instead_of_decoding(self) -> None:
        """The viewer counts what the server forwards but never parses or decodes it:
        fuzzed RTP must not break the client and be blamed on the server."""
        dtls: Any = self.viewer.subscriber.getTransceivers()[0].receiver.transport

        async def count(data: bytes, arrival_time_ms: int) -> None:
            self.forwarded += 1

        dtls._handle_rtp_data = count

    @classmethod
    async def open(cls, ws_url: str, room: str) -> MediaSession:
        publisher = await StageClient.connect(
            ws_url, accounts.token(room, f"{room}-publisher", Role.HOST), entry="stage"
        )
        viewer: StageClient | None = None
        try:
            viewer = await StageClient.connect(
                ws_url, accounts.token(room, f"{room}-viewer", Role.PARTICIPANT)
            )
            await publisher.publish(tracks.audio_and_video())
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await viewer.wait_for(lambda: len(viewer.tracks) >= 2, CONNECT_TIMEOUT)
                await _connected(publisher.publisher)
                await _connected(viewer.subscriber)
        except BaseException:
            for client in (publisher, viewer):
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.close()
            raise
        return cls(publisher, viewer)

    @property
    def alive(self) -> bool:
        return not (self.publisher.closed.is_set() or self.viewer.closed.is_set())

    def endpoints(self) -> list[Endpoint]:
        assert self.publisher.publisher is not None
        return [
            _endpoint("publish", self.publisher.publisher),
            _endpoint("subscribe", self.viewer.subscriber),
        ]

    async def round_trip(self, timeout: float) -> bool:
        """A ping on both signaling connections: their worker's event loop is running."""
        try:
            for client in (self.publisher, self.viewer):
                await client.request({"type": "ping"}, timeout=timeout)
        except (Exception, TimeoutError):
            return False
        return True

    def end_reasons(self) -> list[str]:
        return [
            str(e.get("reason"))
            for c in (self.publisher, self.viewer)
            for e in c.events
            if e.get("type") == "bye"
        ]

    async def close(self) -> None:
        for client in (self.publisher, self.viewer):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 10)


async def _connected(pc: RTCPeerConnection | None) -> None:
    assert pc is not None
    while pc.connectionState != "connected":
        if pc.connectionState in ("failed", "closed"):
            raise ConnectionError(f"media connection {pc.connectionState}")
        await asyncio.sleep(0.05)


def _endpoint(name: str, pc: RTCPeerConnection) -> Endpoint:
    transceiver = pc.getTransceivers()[0]
    dtls: Any = (
        transceiver.sender.transport if name == "publish" else transceiver.receiver.transport
    )
    connection: Any = dtls.transport._connection
    pair = connection._nominated[1]
    return Endpoint(
        name=name,
        server_address=tuple(pair.remote_addr),
        ice_socket=pair.protocol.transport,
        server=sdp_facts.read(pc.remoteDescription.sdp),
        client=sdp_facts.read(pc.localDescription.sdp),
        client_ufrag=connection.local_username,
        srtp=_sending_session(dtls),
    )


def _sending_session(dtls: Any) -> pylibsrtp.Session:
    """An SRTP session with the client's sending keys, as aiortc derives them."""
    ssl = dtls._ssl
    selected = ssl.get_selected_srtp_profile()
    profile = next(p for p in SRTP_PROFILES if p.openssl_profile == selected)
    material = ssl.export_keying_material(
        b"EXTRACTOR-dtls_srtp", 2 * (profile.key_length + profile.salt_length)
    )
    key = profile.get_key_and_salt(material, 1 if dtls._role == "server" else 0)
    policy = pylibsrtp.Policy(
        key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile.libsrtp_profile
    )
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return pylibsrtp.Session(policy)
