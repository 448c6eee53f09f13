"""A simulcast producer piped to another worker: every encoding crosses the pipe as a
stream of its own, so viewers there can be given any of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from sfu.consumer import Consumer
from sfu.options import MediaOptions, NetworkOptions, WorkerOptions
from sfu.producer import Producer
from sfu.router import Router
from sfu.rtp import rtcp
from sfu.rtp.header import RtpPacketView
from sfu.rtp_parameters import CodecParameters, ReceiveParameters
from sfu.types import MediaKind, Mid
from sfu.upstream_rate import HOLD, WARM_UP
from sfu.worker import Worker
from tests.integration.helpers import pipe_pair

pytestmark = pytest.mark.integration

SSRCS = (0x1000, 0x2000, 0x3000)  # the publisher's encodings, lowest first
VP8 = CodecParameters(kind=MediaKind.VIDEO, name="VP8", payload_type=96, clock_rate=90000)
KEY_FRAME = b"\x10\x00\x9d\x01\x2a" + bytes(40)  # RFC 7741: S=1, PID=0, P=0; then a layer tag


@dataclass
class Rooms:
    publisher_send: Callable[[bytes], None]
    producer: Producer
    mirror: Producer
    edge: Router
    copies: tuple[Consumer, ...]  # the home worker's pipe consumers, one per encoding
    upstream: list[bytes]  # the RTCP the publisher gets


@pytest.fixture(params=[True, False], ids=["native", "python"])
async def rooms(request: pytest.FixtureRequest) -> AsyncIterator[Rooms]:
    options = WorkerOptions(
        network=NetworkOptions(port_min=36000, port_max=36999),
        media=MediaOptions(key_frame_min_interval=0.0, native_fastpath=request.param),
    )
    home, far = Worker(options), Worker(options)
    a, b = home.create_router(on_event=lambda e: None), far.create_router(on_event=lambda e: None)
    upstream: list[bytes] = []
    publisher = a.create_direct_transport(on_rtp=lambda data: None, on_rtcp=upstream.append)
    producer = publisher.produce(
        ReceiveParameters(mid=Mid("0"), codec=VP8, ssrc=SSRCS[0], encoding_ssrcs=SSRCS)
    )
    home_pipe, edge_pipe = await pipe_pair(a, b)
    piped = home_pipe.consume(producer)
    mirror = edge_pipe.produce(
        kind=MediaKind.VIDEO, codec_name="VP8", clock_rate=90000, channels=None,
        parameters=(), ssrcs=tuple(c.ssrc for c in piped), stream_id="s", track_id="t",
        producer_id=producer.id,
    )  # fmt: skip
    try:
        yield Rooms(publisher.send_rtp, producer, mirror, b, piped, upstream)
    finally:
        home.close()
        far.close()
        await home.wait_closed()
        await far.wait_closed()


def _packet(layer: int, seq: int) -> bytes:
    header = bytes([0x80, 96]) + seq.to_bytes(2, "big") + (seq * 3000).to_bytes(4, "big")
    return header + SSRCS[layer].to_bytes(4, "big") + KEY_FRAME + bytes([layer])


async def _publish_until(rooms: Rooms, done: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Send a key frame on every encoding every 20 ms until `done()` (bounded)."""
    seq = 100
    async with asyncio.timeout(timeout):
        while not done():
            for layer in range(3):
                rooms.publisher_send(_packet(layer, seq))
            seq += 1
            await asyncio.sleep(0.02)


async def test_every_encoding_crosses_the_pipe_and_a_far_viewer_takes_the_one_it_needs(
    rooms: Rooms,
) -> None:
    assert rooms.mirror.simulcast and len(rooms.mirror.streams) == 3
    received: list[int] = []

    def deliver(data: bytes) -> None:
        view = RtpPacketView.parse(data)
        if view is not None and view.payload_end > view.payload_start:
            received.append(view.data[view.payload_end - 1])  # the layer tag

    viewer = rooms.edge.create_direct_transport(on_rtp=deliver)
    consumer = viewer.consume(rooms.mirror)
    await _publish_until(rooms, lambda: 2 in received)  # the top one by default
    consumer.set_preferred_layer(0)
    await _publish_until(rooms, lambda: received[-1:] == [0])
    received.clear()
    await _publish_until(rooms, lambda: len(received) >= 20)
    assert set(received) == {0}
    consumer.set_preferred_layer(1)
    await _publish_until(rooms, lambda: received[-1:] == [1])
    # Each encoding arrived on its own mirrored stream, counted there.
    assert all(stream.packets_received > 0 for stream in rooms.mirror.streams)


def _last_remb(rooms: Rooms) -> rtcp.Remb | None:
    """The publisher's last REMB."""
    rembs = [p for data in rooms.upstream for p in rtcp.parse_compound(data)]
    return next((p for p in reversed(rembs) if isinstance(p, rtcp.Remb)), None)


def _asks_for(rooms: Rooms, ssrcs: tuple[int, ...], *, below: int | None = None) -> bool:
    """Whether the publisher's last REMB names `ssrcs`, for less than `below` bit/s."""
    remb = _last_remb(rooms)
    return remb is not None and remb.ssrcs == ssrcs and remb.bitrate_bps < (below or 2**32)


async def test_the_far_viewers_need_reaches_the_publisher_through_the_pipe(
    rooms: Rooms,
) -> None:
    viewer = rooms.edge.create_direct_transport(on_rtp=lambda data: None)
    consumer = viewer.consume(rooms.mirror)
    consumer.set_preferred_layer(0)  # a thumbnail on the far worker

    def wanted() -> list[bool]:
        return [copy.wanted_downstream for copy in rooms.copies]

    # The mirror's REMB names the lowest encoding only: the copies of the others stop
    # counting at home, and once the rates are measured and the hold is over the
    # publisher is asked for the lowest encoding only.
    await _publish_until(rooms, lambda: wanted() == [True, False, False])
    ceiling = MediaOptions().publisher_max_bitrate
    await _publish_until(
        rooms, lambda: _asks_for(rooms, SSRCS[:1], below=ceiling), timeout=WARM_UP + HOLD + 5.0
    )

    consumer.set_preferred_layer(2)  # the far viewer enlarges its tile: up at once
    await _publish_until(rooms, lambda: wanted() == [True] * 3 and _asks_for(rooms, SSRCS))
    remb = _last_remb(rooms)
    assert remb is not None and remb.bitrate_bps == ceiling
    assert rooms.producer.remb_raises == 1  # on the change, not at the next report
