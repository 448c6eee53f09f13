"""The private aiortc/aioice seam sfu/aiortc_bridge.py relies on.

aiortc is pinned (pyproject.toml); an upgrade that moves any of this must fail
here first, with a message saying what moved, not deep inside a media test.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import aioice
import aioice.ice
import pytest
from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport


def test_the_pinned_versions_are_installed() -> None:
    assert version("aiortc") == "1.16.0"
    assert version("aioice") == "0.13.0"


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("_handle_rtp_data", ["self", "data", "arrival_time_ms"]),
        ("_handle_rtcp_data", ["self", "data"]),
        ("_set_role", ["self", "role"]),
        ("start", ["self", "remoteParameters"]),
        ("stop", ["self"]),
    ],
)
def test_dtls_transport_methods_keep_their_shape(name: str, parameters: list[str]) -> None:
    method = getattr(RTCDtlsTransport, name)
    assert list(inspect.signature(method).parameters) == parameters


def test_dtls_ingress_calls_the_hooks_we_shadow() -> None:
    # Decrypted packets must reach _handle_rtp_data/_handle_rtcp_data through
    # attribute lookup on the instance, which is what lets us shadow them.
    source = inspect.getsource(RTCDtlsTransport._recv_next)
    assert "await self._handle_rtp_data(data, arrival_time_ms=arrival_time_ms)" in source
    assert "await self._handle_rtcp_data(data)" in source
    assert "self._rx_srtp.unprotect(data)" in source
    assert "await self.transport._recv()" in source


def test_srtp_sessions_and_ssl_are_where_we_read_them() -> None:
    setup = inspect.getsource(RTCDtlsTransport._setup_srtp)
    assert "self._tx_srtp = Session(tx_policy)" in setup
    assert "tx_policy.allow_repeat_tx = True" in setup  # retransmissions reuse indexes
    assert "get_selected_srtp_profile()" in setup


async def test_ice_objects_expose_the_connection_we_drive() -> None:
    gatherer = RTCIceGatherer(iceServers=[])
    connection = gatherer._connection
    assert isinstance(connection, aioice.Connection)
    for attribute in (
        "_local_candidates",
        "_protocols",
        "_nominated",
        "_check_list",
        "_local_candidates_start",
        "_local_candidates_end",
        "ice_controlling",
        "local_username",
        "local_password",
    ):
        assert hasattr(connection, attribute), attribute
    transport = RTCIceTransport(gatherer)
    assert transport._connection is connection
    dtls = RTCDtlsTransport(transport, [RTCCertificate.generateCertificate()])
    assert dtls.transport is transport
    await transport.stop()


def test_aioice_pieces_we_construct_are_unchanged() -> None:
    assert list(inspect.signature(aioice.ice.StunProtocol.__init__).parameters) == [
        "self",
        "receiver",
    ]
    pair = inspect.signature(aioice.ice.CandidatePair.__init__).parameters
    assert list(pair) == ["self", "protocol", "remote_candidate"]
    assert "remote_addr" in dir(aioice.ice.CandidatePair)
    assert "transport" in aioice.ice.StunProtocol.__annotations__
    assert "self._connection.connect()" in inspect.getsource(RTCIceTransport.start)


def test_dtls_contexts_come_from_the_certificate_we_subclass() -> None:
    # sfu.aiortc_bridge._DtlsCertificate replaces the per-context verify callback
    # (a reference cycle in pyOpenSSL) with one shared callback.
    start = inspect.getsource(RTCDtlsTransport.start)
    assert "._create_ssl_context(" in start
    create = inspect.getsource(RTCCertificate._create_ssl_context)
    assert "ctx.set_verify(" in create
    from OpenSSL import SSL

    context = SSL.Context(SSL.DTLS_METHOD)
    context.set_verify(SSL.VERIFY_PEER, lambda *args: True)
    assert context._verify_helper is not None
    assert hasattr(context, "_context")
