"""The one module that touches aiortc/aioice: ICE, DTLS and SRTP keys for one peer.

aiortc is a WebRTC endpoint whose receivers always decode; we only borrow its
ORTC objects (RTCIceGatherer -> RTCIceTransport -> RTCDtlsTransport) and own
RTP ourselves through two private seams, pinned to aiortc==1.16.0 and guarded
by tests/contract/test_aiortc_seam.py:

* ingress: `RTCDtlsTransport._handle_rtp_data` / `_handle_rtcp_data` receive
  SRTP-decrypted bytes; we shadow them on the instance and never let aiortc
  parse RTP into RtpPacket objects or start a decoder;
* egress: `RTCDtlsTransport._tx_srtp.protect()` plus a direct, synchronous
  `sendto` on the nominated candidate pair's socket, so sending never awaits
  and a slow peer is handled by dropping (see `send`).

Host candidates are gathered by us, not aioice, so that the bind addresses
and the UDP port range are configurable and loopback is allowed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aioice
import pylibsrtp
from aioice.candidate import candidate_foundation, candidate_priority
from aioice.ice import StunProtocol
from aiortc import (
    RTCCertificate,
    RTCDtlsFingerprint,
    RTCDtlsParameters,
    RTCDtlsTransport,
    RTCIceGatherer,
    RTCIceParameters,
    RTCIceTransport,
)
from OpenSSL import SSL
from OpenSSL.SSL import _ffi as _openssl_ffi  # type: ignore[attr-defined]
from OpenSSL.SSL import _lib as _openssl  # type: ignore[attr-defined]

from . import fastpath
from .errors import InvalidStateError
from .native_types import RtpProtector
from .rtp.rtcp import is_rtcp
from .srtp import SessionKeys, SrtpProfile, SrtpSender
from .udp import LateFilter, bind_in_range

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 30.0  # seconds for ICE and the DTLS handshake together


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalCandidate:
    """A gathered host candidate: `address` is what goes into SDP (maybe announced)."""

    foundation: str
    priority: int
    address: str
    port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoteEndpoint:
    """Everything about the peer that ICE and DTLS need, taken from its SDP."""

    ice_ufrag: str
    ice_pwd: str
    ice_lite: bool
    candidates: Sequence[str]  # a=candidate values, without the "candidate:" prefix
    fingerprints: Sequence[tuple[str, str]]  # (algorithm, value)
    dtls_server: bool  # True when *we* must act as the DTLS server (peer is active)


class _DtlsCertificate(RTCCertificate):
    """aiortc's certificate, with one verify callback for every DTLS context.

    aiortc gives each context its own `lambda *args: True`, which pyOpenSSL wraps in a
    helper that references itself through its C callback: a reference cycle per media
    connection that only the cycle collector frees (and never, in a process that
    freezes its long-lived objects). Accepting any certificate is what aiortc does
    too: the peer is authenticated by the SDP fingerprint after the handshake.
    """

    def _create_ssl_context(self, srtp_profiles: list[Any]) -> SSL.Context:
        context = super()._create_ssl_context(srtp_profiles)
        helper = context._verify_helper
        context.set_verify(_VERIFY_MODE)  # unused yet: drops the helper, NULL callback
        if helper is not None:
            helper.callback = None  # its cycle, broken: freed now, by reference counting
        _openssl.SSL_CTX_set_verify(
            context._context,
            _VERIFY_MODE,
            _ACCEPT_ANY_CERTIFICATE,
        )
        return context


_VERIFY_MODE = SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT
# One callback for the life of the process, so no context can outlive it.
_ACCEPT_ANY_CERTIFICATE = _openssl_ffi.callback(
    "int (*)(int, X509_STORE_CTX *)", lambda ok, store: 1
)


class Certificate:
    """A DTLS certificate shared by all transports of one worker."""

    def __init__(self) -> None:
        generated = RTCCertificate.generateCertificate()
        self._certificate = _DtlsCertificate(key=generated._key, cert=generated._cert)

    @property
    def fingerprints(self) -> list[tuple[str, str]]:
        return [(f.algorithm, f.value) for f in self._certificate.getFingerprints()]


OnPacket = Callable[[bytes], None]
OnStateChange = Callable[[str], None]


class PeerConnection:
    """ICE + DTLS-SRTP to one remote peer, moving raw RTP/RTCP bytes.

    States reported through `on_state`: "connecting", "connected", "failed",
    "closed".
    """

    def __init__(self, certificate: Certificate, *, native_srtp: bool = True) -> None:
        self._native_srtp = native_srtp  # protect RTP in sfu/_fastpath.c when it was built
        self._gatherer = RTCIceGatherer(iceServers=[])  # no STUN: host candidates only
        self._connection: aioice.Connection = self._gatherer._connection
        self._ice = RTCIceTransport(self._gatherer)
        self._ice._role_set = True
        self._dtls = RTCDtlsTransport(self._ice, [certificate._certificate])
        self._certificate = certificate
        # Any: get_write_buffer_size exists on asyncio's and uvloop's UDP transports
        # but is missing from DatagramTransport's stub.
        self._socket_transport: Any = None
        self._remote_address: tuple[str, int] | None = None
        self._protect: Callable[[bytes], bytes] | None = None
        self._protect_rtcp: Callable[[bytes], bytes] | None = None
        self._egress_limit = 0
        self.local_candidates: list[LocalCandidate] = []
        self.on_rtp: OnPacket = _ignore
        self.on_rtcp: OnPacket = _ignore
        self.on_state: OnStateChange = _ignore_state
        self.state = "new"
        self.srtp_profile = ""
        self.dropped_egress = 0
        self.packets_undecryptable = 0
        self._late_filters: list[LateFilter] = []
        self.srtp_keys: SessionKeys | None = None  # ours for sending, once connected
        self.srtp_sender: SrtpSender | None = None  # only when there is no native protector
        self._native_protector: RtpProtector | None = None
        self._media_protocol: _HostProtocol | None = None
        self.closed = False

    @property
    def ice_ufrag(self) -> str:
        return str(self._connection.local_username)

    @property
    def ice_pwd(self) -> str:
        return str(self._connection.local_password)

    @property
    def fingerprints(self) -> list[tuple[str, str]]:
        return self._certificate.fingerprints

    async def gather(
        self,
        addresses: Sequence[str],
        *,
        port_min: int,
        port_max: int,
        announced_address: str | None,
        egress_buffer_limit: int,
        max_ingress_delay: float = 0.0,
    ) -> None:
        """Bind one UDP socket per address inside [port_min, port_max]; RTP that waited
        longer than `max_ingress_delay` in one (0: no limit) is dropped unread."""
        self._egress_limit = egress_buffer_limit
        loop = asyncio.get_running_loop()
        connection = self._connection
        connection._local_candidates_start = True
        for address in addresses:
            transport, protocol = await _bind_in_range(
                loop, lambda: _HostProtocol(connection), address, port_min, port_max
            )
            host, port = transport.get_extra_info("sockname")[:2]
            sock = transport.get_extra_info("socket")
            if max_ingress_delay > 0 and sock is not None and isinstance(protocol, _HostProtocol):
                late = LateFilter(sock.fileno(), max_ingress_delay)
                protocol.late = late
                self._late_filters.append(late)
            candidate = aioice.Candidate(
                foundation=candidate_foundation("host", "udp", host),
                component=1,
                transport="udp",
                priority=candidate_priority(1, "host"),
                host=host,
                port=port,
                type="host",
            )
            protocol.local_candidate = candidate
            connection._protocols.append(protocol)
            connection._local_candidates.append(candidate)
            self.local_candidates.append(
                LocalCandidate(
                    foundation=candidate.foundation,
                    priority=candidate.priority,
                    address=announced_address or host,
                    port=port,
                )
            )
        connection._local_candidates_end = True

    def set_ice_role(self, *, controlling: bool) -> None:
        """The offerer controls ICE (RFC 8445 §6.1.1). Set it as soon as the SDP is
        written, before the peer's first check can arrive and meet the wrong role."""
        self._connection.ice_controlling = controlling

    async def connect(self, remote: RemoteEndpoint, *, timeout: float = CONNECT_TIMEOUT) -> bool:
        """Run ICE then the DTLS handshake; True once SRTP keys are in place.

        Bounded by `timeout`: aiortc's DTLS handshake has no limit of its own.
        The DTLS role comes from a=setup (RFC 5763 §5).
        """
        if self.closed:
            raise InvalidStateError("peer connection is closed")
        try:
            async with asyncio.timeout(timeout):
                return await self._connect(remote)
        except TimeoutError:
            logger.debug("x connect timed out after %.0fs", timeout)
            self._set_state("failed")
            return False

    async def _connect(self, remote: RemoteEndpoint) -> bool:
        self._set_state("connecting")
        try:
            for value in remote.candidates:
                try:
                    candidate = aioice.Candidate.from_sdp(value)
                except (ValueError, IndexError):
                    logger.debug("x ignoring malformed remote candidate %r", value)
                    continue
                if candidate.transport.lower() == "udp":
                    await self._connection.add_remote_candidate(candidate)
            await self._connection.add_remote_candidate(None)
            await self._ice.start(
                RTCIceParameters(
                    usernameFragment=remote.ice_ufrag,
                    password=remote.ice_pwd,
                    iceLite=remote.ice_lite,
                )
            )
            if self._closed_meanwhile():  # closed while ICE ran: nothing more to set up
                return False
            if self._ice.state != "completed":
                self._set_state("failed")
                return False
            self._dtls._set_role("server" if remote.dtls_server else "client")
            self._install_hooks()
            await self._dtls.start(
                RTCDtlsParameters(
                    fingerprints=[
                        RTCDtlsFingerprint(algorithm=a, value=v) for a, v in remote.fingerprints
                    ]
                )
            )
        except (ConnectionError, OSError, ValueError) as exc:
            logger.debug("x connect failed: %s", exc)
            self._set_state("failed")
            return False
        if self._closed_meanwhile():  # during the handshake, after close() unhooked us
            self._unhook()
            return False
        if self._dtls.state != "connected":
            self._set_state("failed")
            return False
        pair = self._connection._nominated.get(1)
        if pair is None:
            self._set_state("failed")
            return False
        self._socket_transport = pair.protocol.transport
        self._remote_address = pair.remote_addr
        ssl: Any = self._dtls._ssl
        profile = ssl.get_selected_srtp_profile()
        self.srtp_profile = profile.decode() if isinstance(profile, bytes) else str(profile)
        # RTP we send is protected with our own keys, so the native fan-out can share
        # them (libsrtp in a session of our own otherwise); RTCP stays with aiortc's.
        keys = SessionKeys.from_master(SrtpProfile(self.srtp_profile), self._export_tx_master(ssl))
        self.srtp_keys = keys
        native = fastpath.rtp_protector(keys) if self._native_srtp else None
        self._native_protector = native
        if native is not None:
            self._protect = native.protect
        else:
            self.srtp_sender = SrtpSender(keys)
            self._protect = self.srtp_sender.protect
        self._protect_rtcp = self._dtls._tx_srtp.protect_rtcp
        if isinstance(pair.protocol, _HostProtocol):
            pair.protocol.media = self._receive_media
            self._media_protocol = pair.protocol
        self._dtls.on("statechange", self._on_dtls_state)
        self._set_state("connected")
        return True

    def _closed_meanwhile(self) -> bool:
        """Whether close() ran while connect() awaited (a method, so the type checker
        does not carry a check from before the await past it)."""
        return self.closed

    def _export_tx_master(self, ssl: Any) -> bytes:
        """Our sending master key || salt (RFC 5764 §4.2), as aiortc derives it."""
        profile = SrtpProfile(self.srtp_profile)
        key, salt = profile.key_length, profile.salt_length
        material = ssl.export_keying_material(b"EXTRACTOR-dtls_srtp", 2 * (key + salt))
        index = 1 if self._dtls._role == "server" else 0
        return bytes(
            material[index * key : index * key + key]
            + material[2 * key + index * salt : 2 * key + index * salt + salt]
        )

    def _receive_media(self, data: bytes, addr: tuple[Any, ...]) -> None:
        # Any source address: the peer may use another valid pair than the one we
        # send on, and SRTP authentication already refuses what it did not send.
        rx = self._dtls._rx_srtp
        try:
            if is_rtcp(data):
                self.on_rtcp(rx.unprotect_rtcp(data))
            else:
                self.on_rtp(rx.unprotect(data))
        except (pylibsrtp.Error, ValueError):  # ValueError: longer than libsrtp's buffer
            self.packets_undecryptable += 1

    @property
    def packets_late(self) -> int:
        """RTP dropped unread because it waited too long in a socket (see LateFilter)."""
        return sum(f.dropped for f in self._late_filters)

    @property
    def socket_fd(self) -> int | None:
        transport = self._socket_transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        return sock.fileno() if sock is not None else None

    @property
    def remote_address(self) -> tuple[str, int] | None:
        return self._remote_address

    @property
    def egress_limit(self) -> int:
        return self._egress_limit

    def detach(self) -> None:
        """Stop calling back into the owner (it closed); packets and states still
        arriving are ignored."""
        self.on_rtp = _ignore
        self.on_rtcp = _ignore
        self.on_state = _ignore_state

    def forget_ssrc(self, ssrc: int) -> None:
        """A stream we sent ended: drop its SRTP packet index (never send it again)."""
        if self.srtp_sender is not None:
            self.srtp_sender.forget(ssrc)
        if self._native_protector is not None:
            self._native_protector.forget(ssrc)

    @property
    def tracked_ssrcs(self) -> int:
        """SSRCs with an SRTP packet index here: bounded by the streams still open."""
        counts = [self.srtp_sender.tracked if self.srtp_sender is not None else 0]
        if self._native_protector is not None:
            counts.append(self._native_protector.tracked())
        return max(counts)

    def send_rtp(self, data: bytes) -> bool:
        """SRTP-protect and send now; False (and counted) when dropped.

        Drops rather than queues once the socket's user-space buffer passes the
        limit: a slow or dead peer must never grow memory or stall the sender.
        """
        protect = self._protect
        transport = self._socket_transport
        if protect is None or transport is None:
            return False
        if transport.get_write_buffer_size() > self._egress_limit:
            self.dropped_egress += 1
            return False
        try:
            transport.sendto(protect(data), self._remote_address)
        except (pylibsrtp.Error, ValueError, OSError):  # ValueError: too long to protect
            self.dropped_egress += 1
            return False
        return True

    def send_rtcp(self, data: bytes) -> bool:
        protect = self._protect_rtcp
        transport = self._socket_transport
        if protect is None or transport is None:
            return False
        try:
            transport.sendto(protect(data), self._remote_address)
        except (pylibsrtp.Error, OSError):
            return False
        return True

    async def close(self) -> None:
        """Stop DTLS (sending close_notify) and ICE; idempotent."""
        if self.closed:
            return
        self.closed = True
        self._protect = self._protect_rtcp = None
        self._socket_transport = None
        try:
            try:
                await self._dtls.stop()
            except Exception:  # teardown must never raise; aiortc may fail half-way
                logger.debug("- dtls stop failed", exc_info=True)
            try:
                await self._ice.stop()
            except Exception:
                logger.debug("- ice stop failed", exc_info=True)
            self._set_state("closed")
        finally:  # also when the close is cancelled (its router closing)
            self._unhook()

    def _unhook(self) -> None:
        """Drop every reference aiortc and aioice hold back to us, so the connection's
        objects (and OpenSSL's memory with them) are freed by reference counting when
        the owner lets go, not at the next full cycle collection."""
        dtls: Any = self._dtls
        dtls.remove_all_listeners()
        dtls._handle_rtp_data = _dropped_rtp
        dtls._handle_rtcp_data = _dropped_rtcp
        if self._media_protocol is not None:
            self._media_protocol.media = None
            self._media_protocol = None
        # aioice's close keeps its candidate pairs, each holding a socket protocol
        # whose receiver is the connection: a cycle through every pair.
        self._connection._check_list.clear()

    def _install_hooks(self) -> None:
        dtls: Any = self._dtls

        async def handle_rtp(data: bytes, arrival_time_ms: int) -> None:
            self.on_rtp(data)

        async def handle_rtcp(data: bytes) -> None:
            self.on_rtcp(data)

        dtls._handle_rtp_data = handle_rtp
        dtls._handle_rtcp_data = handle_rtcp

    def _on_dtls_state(self) -> None:
        state = self._dtls.state
        if state in ("closed", "failed") and self.state == "connected":
            self._protect = self._protect_rtcp = None
            self._set_state("failed" if state == "failed" else "closed")

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.on_state(state)


async def _dropped_rtp(data: bytes, arrival_time_ms: int) -> None:
    pass


async def _dropped_rtcp(data: bytes) -> None:
    pass


class _HostProtocol(StunProtocol):
    """aioice's socket protocol, minus empty datagrams, plus a media fast lane.

    aiortc's DTLS reader indexes `data[0]` of whatever is not STUN, so one
    empty UDP datagram from anyone would end its receive loop and close the
    transport; they carry nothing, so they are dropped here.

    Once connected, SRTP/SRTCP (first byte 128..191, RFC 7983) goes straight
    to `media`, skipping aioice's STUN parse attempt, its queue and aiortc's
    DTLS reader task; STUN (consent) and DTLS still take the normal way.
    """

    media: Callable[[bytes, tuple[Any, ...]], None] | None = None
    late: LateFilter | None = None

    def datagram_received(self, data: bytes | str, addr: tuple[Any, ...]) -> None:
        if not data:
            return
        media = self.media
        if media is not None and 127 < data[0] < 192:  # type: ignore[operator]
            late = self.late
            if late is not None and late.drop(data):  # type: ignore[arg-type]
                return
            media(data, addr)  # type: ignore[arg-type]
            return
        super().datagram_received(data, addr)


async def _bind_in_range(
    loop: asyncio.AbstractEventLoop,
    factory: Callable[[], StunProtocol],
    address: str,
    port_min: int,
    port_max: int,
) -> tuple[asyncio.DatagramTransport, StunProtocol]:
    """Bind to a free port in the range (see sfu/udp.py)."""
    sock = bind_in_range(address, port_min, port_max)
    transport, protocol = await loop.create_datagram_endpoint(factory, sock=sock)
    return transport, protocol


def _ignore(data: bytes) -> None:
    return None


def _ignore_state(state: str) -> None:
    return None
