"""Pipes between two routers (as between two workers) on real loopback sockets.

The chain under test: a publisher socket -> producer on router A -> pipe A->B ->
mirror producer on router B -> a consumer on B -> a viewer socket; and the
viewer's PLI all the way back to the publisher. The ends are plain pipes too,
so every packet can be read in the clear.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sfu.consumer import Consumer
from sfu.options import MediaOptions, NetworkOptions, WorkerOptions
from sfu.pipe_transport import PipeTransport
from sfu.producer import Producer
from sfu.rtp import rtcp
from sfu.rtp.header import RtpPacketView
from sfu.types import MediaKind
from sfu.udp import SOCKET_BUFFER
from sfu.worker import Worker
from tests.integration.helpers import pipe_pair

PUBLISHER_SSRC = 0x1111
KEY_FRAME = b"\x10\x00\x9d\x01\x2a" + bytes(40)  # RFC 7741: S=1, PID=0, P=0
DELTA_FRAME = b"\x10\x01" + bytes(40)  # P=1


def _packet(seq: int, payload: bytes, ssrc: int = PUBLISHER_SSRC) -> bytes:
    header = bytes([0x80, 0x80 | 96]) + seq.to_bytes(2, "big") + (seq * 3000).to_bytes(4, "big")
    return header + ssrc.to_bytes(4, "big") + payload


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


async def _recv(sock: socket.socket, timeout: float = 5.0) -> bytes:
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        return await loop.sock_recv(sock, 2048)


async def _recv_rtp(sock: socket.socket, timeout: float = 5.0) -> RtpPacketView:
    async with asyncio.timeout(timeout):
        while True:
            data = await _recv(sock)
            if not 191 < data[1] < 224:  # skip RTCP (sender reports)
                view = RtpPacketView.parse(data)
                assert view is not None
                return view


async def _plis_until(sock: socket.socket, media_ssrc: int, total: int, seen: int = 0) -> int:
    """Read PLIs for `media_ssrc` until `total` of them have arrived (bounded by the caller)."""
    while seen < total:
        for packet in rtcp.parse_compound(await _recv(sock)):
            if isinstance(packet, rtcp.PictureLossIndication) and packet.media_ssrc == media_ssrc:
                seen += 1
    return seen


@dataclass
class Chain:
    publisher: socket.socket
    viewer: socket.socket
    source: PipeTransport
    producer: Producer
    edge_pipe: PipeTransport
    mirror: Producer
    out: PipeTransport
    consumer: Consumer

    def publish(self, seq: int, payload: bytes) -> None:
        self.publisher.sendto(_packet(seq, payload), self.source.local_address)


@pytest.fixture(params=[True, False], ids=["native", "python"])
async def chain(request: pytest.FixtureRequest) -> AsyncIterator[Chain]:
    options = WorkerOptions(
        network=NetworkOptions(port_min=35000, port_max=35999),
        # Every key-frame request goes up at once; both fan-outs send on pipes.
        media=MediaOptions(key_frame_min_interval=0.0, native_fastpath=request.param),
    )
    home, edge = Worker(options), Worker(options)
    a, b = home.create_router(on_event=lambda e: None), edge.create_router(on_event=lambda e: None)
    publisher, viewer = _udp(), _udp()
    source = await a.create_pipe_transport()
    source.connect(*publisher.getsockname())
    producer = source.produce(
        kind=MediaKind.VIDEO, codec_name="VP8", clock_rate=90000, channels=None,
        parameters=(), ssrcs=(PUBLISHER_SSRC,), stream_id="stream", track_id="track",
    )  # fmt: skip
    home_pipe, edge_pipe = await pipe_pair(a, b)
    (piped,) = home_pipe.consume(producer)
    mirror = edge_pipe.produce(
        kind=MediaKind.VIDEO, codec_name="VP8", clock_rate=90000, channels=None,
        parameters=(), ssrcs=(piped.ssrc,), stream_id="stream", track_id="track",
        producer_id=producer.id,
    )  # fmt: skip
    out = await b.create_pipe_transport()
    out.connect(*viewer.getsockname())
    (consumer,) = out.consume(mirror)
    try:
        yield Chain(publisher, viewer, source, producer, edge_pipe, mirror, out, consumer)
    finally:
        home.close()
        edge.close()
        await home.wait_closed()
        await edge.wait_closed()
        publisher.close()
        viewer.close()


@pytest.mark.timeout(30)
async def test_a_piped_stream_reaches_the_far_consumer_from_its_first_key_frame(
    chain: Chain,
) -> None:
    chain.publish(1, DELTA_FRAME)  # not forwarded: consumers start on a key frame
    chain.publish(2, KEY_FRAME)
    for seq in range(3, 8):
        chain.publish(seq, DELTA_FRAME)
    first = await _recv_rtp(chain.viewer)
    assert first.ssrc == chain.consumer.ssrc and first.payload_type == 96
    assert first.data[first.payload_start : first.payload_end] == KEY_FRAME
    sequence = [first.sequence_number]
    for _ in range(5):
        packet = await _recv_rtp(chain.viewer)
        assert packet.data[packet.payload_start : packet.payload_end] == DELTA_FRAME
        sequence.append(packet.sequence_number)
    assert sequence == [(sequence[0] + i) & 0xFFFF for i in range(6)]  # gapless
    assert chain.mirror.packets_received == 6  # the delta before the key frame stayed home


@pytest.mark.timeout(30)
async def test_a_far_viewers_key_frame_request_reaches_the_publisher(chain: Chain) -> None:
    chain.publish(1, KEY_FRAME)
    await _recv_rtp(chain.viewer)
    async with asyncio.timeout(10):
        # The start-up requests (consumers starting on a key frame) arrive first.
        before = chain.producer.key_frame_requests_sent
        seen = await _plis_until(chain.publisher, PUBLISHER_SSRC, before)
        pli = rtcp.PictureLossIndication(sender_ssrc=7, media_ssrc=chain.consumer.ssrc)
        chain.viewer.sendto(rtcp.serialize(pli), chain.out.local_address)
        await _plis_until(chain.publisher, PUBLISHER_SSRC, before + 1, seen)
    assert chain.consumer.key_frame_requests_received == 1
    assert chain.producer.key_frame_requests_sent == before + 1


@pytest.mark.timeout(30)
async def test_pausing_the_home_producer_stops_the_far_viewer(chain: Chain) -> None:
    chain.publish(1, KEY_FRAME)
    await _recv_rtp(chain.viewer)
    chain.producer.pause()
    chain.publish(2, KEY_FRAME)
    chain.publish(3, DELTA_FRAME)
    with pytest.raises(TimeoutError):
        await _recv_rtp(chain.viewer, timeout=0.5)
    chain.producer.resume()
    chain.publish(4, DELTA_FRAME)  # held back: the pipe resumes on a key frame
    chain.publish(5, KEY_FRAME)
    resumed = await _recv_rtp(chain.viewer)
    assert resumed.data[resumed.payload_start : resumed.payload_end] == KEY_FRAME


@pytest.mark.timeout(30)
async def test_datagrams_from_anyone_but_the_connected_end_are_dropped(chain: Chain) -> None:
    stranger = _udp()
    try:
        stranger.sendto(_packet(1, KEY_FRAME, ssrc=chain.mirror.ssrc or 0),
                        chain.edge_pipe.local_address)  # fmt: skip
        stranger.sendto(b"", chain.edge_pipe.local_address)
        stranger.sendto(b"\xff garbage", chain.edge_pipe.local_address)
        chain.publish(2, KEY_FRAME)
        forwarded = await _recv_rtp(chain.viewer)
        assert forwarded.data[forwarded.payload_start : forwarded.payload_end] == KEY_FRAME
        assert chain.edge_pipe.packets_from_strangers >= 2  # the empty one may never arrive
        assert chain.mirror.packets_received == 1
    finally:
        stranger.close()


@pytest.mark.timeout(30)
async def test_pipes_buffer_bursts_like_every_media_socket(chain: Chain) -> None:
    # A busy receiving worker must not lose piped packets in a default-sized buffer.
    limit = int(Path("/proc/sys/net/core/rmem_max").read_text())  # noqa: ASYNC240 - procfs
    expected = 2 * min(SOCKET_BUFFER, limit)  # the kernel doubles what it grants
    for pipe in (chain.source, chain.edge_pipe, chain.out):
        sock = pipe._socket
        assert sock is not None
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == expected


@pytest.mark.timeout(30)
async def test_packets_that_waited_too_long_in_the_socket_are_dropped_unread(
    chain: Chain,
) -> None:
    chain.publish(1, KEY_FRAME)
    await _recv_rtp(chain.viewer)
    for seq in range(2, 6):
        chain.publish(seq, DELTA_FRAME)
    time.sleep(0.7)  # noqa: ASYNC251 - the point: a worker too busy to read its sockets
    chain.publish(6, KEY_FRAME)
    fresh = await _recv_rtp(chain.viewer)
    # The four that queued past media.max_ingress_delay (0.5 s) were never forwarded.
    assert fresh.data[fresh.payload_start : fresh.payload_end] == KEY_FRAME
    assert chain.source.packets_late == 4
    assert chain.producer.packets_received == 2


async def _sender_report(sock: socket.socket, ssrc: int) -> rtcp.SenderReport:
    """The next sender report about `ssrc` (bounded by the caller); RTP is skipped."""
    while True:
        data = await _recv(sock)
        if 191 < data[1] < 224:
            for packet in rtcp.parse_compound(data):
                if isinstance(packet, rtcp.SenderReport) and packet.ssrc == ssrc:
                    return packet


@pytest.mark.timeout(30)
async def test_the_publishers_sender_report_reaches_the_far_viewer_as_a_true_pair(
    chain: Chain,
) -> None:
    chain.publish(2, KEY_FRAME)
    first = await _recv_rtp(chain.viewer)
    offset = (first.timestamp - 2 * 3000) & 0xFFFF_FFFF  # both hops' timeline offsets
    ntp, rtp_timestamp = rtcp.ntp_from_unix(time.time()), 6000 + 90_000
    report = rtcp.SenderReport(
        ssrc=PUBLISHER_SSRC, ntp_timestamp=ntp, rtp_timestamp=rtp_timestamp,
        packet_count=1, octet_count=45,
    )  # fmt: skip
    chain.publisher.sendto(rtcp.serialize(report), chain.source.local_address)

    async with asyncio.timeout(10):  # one hop per second at most, each at its own phase
        ours = await _sender_report(chain.viewer, chain.consumer.ssrc)

    # Carried forward on both clocks: as much time on the RTP clock as on the NTP one
    # (to within the pipe's transit, which neither hop counts).
    elapsed = ((ours.ntp_timestamp - ntp) & 0xFFFF_FFFF_FFFF_FFFF) / 0x1_0000_0000
    assert 0 <= elapsed < 3
    carried = (ours.rtp_timestamp - offset - rtp_timestamp) & 0xFFFF_FFFF
    assert abs(carried / 90_000 - elapsed) < 0.005
    assert ours.packet_count == 1
