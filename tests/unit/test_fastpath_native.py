"""The native fan-out on real sockets: what leaves decrypts to the right packet,
queues go out in one batch per peer, and bad input is refused, not crashed on."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pylibsrtp
import pytest

from sfu import fastpath
from sfu.native_types import NativeEgress
from sfu.srtp import SessionKeys, SrtpProfile
from tests import native_lifecycle
from tests.packets import make_rtp, parse_rtp

PROFILE = SrtpProfile.AEAD_AES_128_GCM


@pytest.fixture
def link() -> Iterator[tuple[socket.socket, socket.socket]]:
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2)
    yield sender, receiver
    sender.close()
    receiver.close()


def _keys() -> tuple[bytes, SessionKeys]:
    master = os.urandom(PROFILE.key_length + PROFILE.salt_length)
    return master, SessionKeys.from_master(PROFILE, master)


def _egress(keys: SessionKeys, fd: int, address: tuple[str, int]) -> NativeEgress:
    return fastpath.native_egress(
        profile=str(PROFILE), key=keys.rtp_key, salt=keys.rtp_salt, auth_key=keys.rtp_auth,
        fd=fd, address=address,
    )  # fmt: skip


def _active_audio_fan_out(egress: NativeEgress) -> fastpath.NativeFanOut:
    """A fan-out with one active audio slot sending through `egress`."""
    fan = fastpath.NativeFanOut(history=0, max_age=2.0)
    spec = fastpath.FanOutSlotSpec(
        ssrc=1, payload_type=111, mid_element=b"", clock_rate=48000,
        initial_sequence=0, initial_timestamp=0,
    )  # fmt: skip
    fan.add_slot(spec, egress).activate(wait_for_key_frame=False)
    return fan


def _receiver_session(master: bytes) -> pylibsrtp.Session:
    policy = pylibsrtp.Policy(
        key=master,
        ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
        srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    )
    return pylibsrtp.Session(policy)


def test_packets_sent_on_a_socket_decrypt_to_the_rewritten_copy(
    link: tuple[socket.socket, socket.socket],
) -> None:
    sender, receiver = link
    master, keys = _keys()
    fan = fastpath.NativeFanOut(history=16, max_age=2.0)
    slot = fan.add_slot(
        fastpath.FanOutSlotSpec(
            ssrc=0xCAFE,
            payload_type=100,
            mid_element=b"\x40" + b"7",
            clock_rate=90000,
            initial_sequence=10,
            initial_timestamp=5000,
        ),
        _egress(keys, sender.fileno(), receiver.getsockname()),
    )
    slot.activate(wait_for_key_frame=False)
    data = make_rtp(400, 90000, 0x1111, pt=96, payload=b"hello world")
    fan.native.forward(data, 12, b"", False, 1.0)
    fastpath._native.flush_all()  # type: ignore[union-attr]
    plain = _receiver_session(master).unprotect(receiver.recv(2048))
    view = parse_rtp(plain)
    assert (view.ssrc, view.payload_type, view.sequence_number, view.timestamp) == (
        0xCAFE, 100, 10, 5000,
    )  # fmt: skip
    assert view.extension(4) == b"7"
    assert view.payload == b"hello world"


def test_queued_packets_leave_in_one_flush_in_order(
    link: tuple[socket.socket, socket.socket],
) -> None:
    sender, receiver = link
    master, keys = _keys()
    egress = _egress(keys, sender.fileno(), receiver.getsockname())
    fan = _active_audio_fan_out(egress)
    for seq in range(20):
        fan.native.forward(make_rtp(seq, seq * 960, 1, pt=111), 12, b"", False, 1.0)
    receiver.setblocking(False)
    with pytest.raises(BlockingIOError):
        receiver.recv(2048)  # nothing went out before the flush
    fastpath._native.flush_all()  # type: ignore[union-attr]
    receiver.setblocking(True)
    session = _receiver_session(master)
    seqs = [parse_rtp(session.unprotect(receiver.recv(2048))).sequence_number for _ in range(20)]
    assert seqs == list(range(20))
    sent, _, dropped = egress.stats()
    assert (sent, dropped) == (20, 0)


def test_an_egress_marked_first_leaves_before_those_queued_earlier(
    link: tuple[socket.socket, socket.socket],
) -> None:
    sender, receiver = link
    address = receiver.getsockname()
    plain = {"profile": "NONE", "key": b"", "salt": b"", "auth_key": b"", "fd": sender.fileno()}
    viewer = fastpath.native_egress(**plain, address=address)  # type: ignore[arg-type]
    pipe = fastpath.native_egress(**plain, address=address, first=True)  # type: ignore[arg-type]
    for egress, payload in ((viewer, b"to a viewer"), (pipe, b"down the pipe")):
        fan = _active_audio_fan_out(egress)
        fan.native.forward(make_rtp(7, 960, 1, pt=111, payload=payload), 12, b"", False, 1.0)
    assert fastpath._native.pending() == 2  # type: ignore[union-attr]

    assert fastpath._native.flush_all() == 2  # type: ignore[union-attr]

    arrivals = [parse_rtp(receiver.recv(2048)).payload for _ in range(2)]
    assert arrivals == [b"down the pipe", b"to a viewer"]
    assert fastpath._native.pending() == 0  # type: ignore[union-attr]


def test_a_send_that_fails_is_counted_as_dropped_not_raised() -> None:
    _, keys = _keys()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ipv4:
        egress = _egress(keys, ipv4.fileno(), ("::1", 9))  # sendmmsg: EAFNOSUPPORT
    fan = _active_audio_fan_out(egress)
    fan.native.forward(make_rtp(1, 0, 1, pt=111), 12, b"", False, 1.0)
    fastpath._native.flush_all()  # type: ignore[union-attr]
    assert egress.stats()[2] == 1


@pytest.mark.parametrize(
    ("data", "payload_start"),
    [(b"", 0), (b"\x80" * 11, 12), (b"\x80" * 20, 30), (b"\x80" * 20, 4), (b"\x80" * 4000, 12)],
)
def test_malformed_packets_are_refused(data: bytes, payload_start: int) -> None:
    fan = fastpath.NativeFanOut(history=8, max_age=2.0)
    with pytest.raises(ValueError, match="bad packet"):
        fan.native.forward(data, payload_start, b"", False, 1.0)


def test_bad_parameters_are_refused() -> None:
    _, keys = _keys()
    with pytest.raises(ValueError, match="unsupported SRTP profile"):
        fastpath.native_egress(profile="NULL", key=b"", salt=b"", auth_key=b"", fd=-1,
                               address=("", 0))  # fmt: skip
    with pytest.raises(ValueError, match="bad key sizes"):
        fastpath.native_egress(profile=str(PROFILE), key=b"short", salt=keys.rtp_salt,
                               auth_key=b"", fd=-1, address=("", 0))  # fmt: skip
    fan = fastpath.NativeFanOut(history=8, max_age=2.0)
    with pytest.raises(ValueError, match="bad sink parameters"):
        fan.add_slot(
            fastpath.FanOutSlotSpec(
                ssrc=1,
                payload_type=200,
                mid_element=b"",
                clock_rate=90000,
                initial_sequence=0,
                initial_timestamp=0,
            ),
            _egress(keys, -1, ("", 0)),
        )
    with pytest.raises(KeyError):
        fan.native.activate(99, False)


def test_an_egress_closed_with_packets_queued_drops_them_and_later_ones_without_crashing() -> None:
    (sent, _, dropped), refused = native_lifecycle.close_with_packets_queued()

    assert (sent, dropped) == (0, 5)  # what was queued when it closed
    assert refused == 7  # later copies are the slot's drops


def test_slots_beyond_the_first_allocation_can_be_removed_and_added_again() -> None:
    captured = native_lifecycle.many_slots_removed_and_added_again(20)

    assert captured == [9] * 10 + [3] * 10  # survivors got all 9 packets, newcomers 3


def test_a_socket_closed_under_a_live_egress_never_lends_its_number_to_another() -> None:
    sources, newcomer_port = native_lifecycle.socket_closed_under_a_live_egress()

    assert newcomer_port not in sources
    assert len(sources) == 1  # every packet left from the transport's own socket


def test_forgotten_ssrcs_leave_the_egress_table_and_the_rest_keep_sending() -> None:
    after_forgetting, after_sending = native_lifecycle.ssrcs_forgotten_while_sending(20)

    assert after_forgetting == 10  # the removed slots' SSRCs are gone
    assert after_sending == 10  # and nobody brought them back
