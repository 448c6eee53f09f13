"""Simulcast end to end with real peers: the benchmarks' publisher bot sends three VP8
or H.264 encodings (160x90, 320x180, 640x360; rids q, h, f) through the real
signaling, ICE, DTLS and SRTP; viewers are the Python client (aiortc), which decodes
what it gets (H.264 with FFmpeg's decoder through PyAV)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import av
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from benchmarks.bots import Bot, BotConfig, ProcessStats
from benchmarks.h264_clips import load_h264_simulcast_clips
from benchmarks.media import load_simulcast_clips
from benchmarks.negotiation import RID_EXTENSION_ID, VIDEO_MID
from benchmarks.send_clock import SendClock
from benchmarks.sender import Publisher
from sfu.aiortc_bridge import Certificate, PeerConnection
from sfu.consumer import Consumer
from sfu.ortc import EXTENSION_IDS, PAYLOAD_TYPES
from sfu.producer import Producer
from sfu.rtp.seq import SequenceExtender
from sfu.rtp_parameters import URI_MID
from signaling.client import StageClient
from signaling.settings import load_settings
from tests.impaired_client import ReceivedRtp, observe_rtp
from tests.integration.front import front, worker_samples
from tests.integration.helpers import member, poll_until, remote_track, wait_for_tracks
from tests.server import Endpoint, FrontServer, RunningServer, running_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SIZES = [(160, 90), (320, 180), (640, 360)]
WAIT = 10.0
CODECS = ["VP8", "H264"]
FRAME_TICKS = 90000 // 30
_H264_IDR, _H264_NON_IDR = 5, 1


@pytest.fixture(scope="module", autouse=True)
def _clips() -> None:
    load_simulcast_clips()  # encoded once (a few seconds), then cached for every run
    load_h264_simulcast_clips()


# -- the cast -------------------------------------------------------------------------------
@dataclass(eq=False)
class SimulcastPublisher:
    """The benchmarks' simulcast bot on stage, run in the test's loop."""

    bot: Bot
    stats: ProcessStats

    @property
    def participant_id(self) -> str:
        return self.bot.participant_id

    @property
    def publisher(self) -> Publisher:
        assert self.bot.publisher is not None
        return self.bot.publisher

    @property
    def peer(self) -> PeerConnection:
        assert self.bot.publisher_peer is not None
        return self.bot.publisher_peer


@asynccontextmanager
async def simulcast_publisher(
    server: Endpoint, codec: str = "VP8"
) -> AsyncIterator[SimulcastPublisher]:
    config = BotConfig(
        url=server.ws_url,
        room="demo",
        secret=server.settings.auth.secret,
        publish_audio=True,
        publish_video=True,
        simulcast=True,
        video_codec=codec,
        stamp=False,  # the viewers decode: no send-time stamp after the video data
        indexes=(0,),
        max_seconds=120,
        media_seconds=120,
    )
    stats = ProcessStats()
    async with aiohttp.ClientSession() as http:
        bot = Bot(
            0, config, http=http, certificate=Certificate(), stats=stats, send_clock=SendClock()
        )
        task = asyncio.get_running_loop().create_task(bot.run())
        try:
            await poll_until(lambda: bot.publisher is not None or bot.done, timeout=WAIT)
            assert bot.publisher is not None, f"the publisher bot stopped: {stats.errors}"
            yield SimulcastPublisher(bot=bot, stats=stats)
            assert not stats.errors, stats.errors
        finally:
            await bot.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class DecodedFrames:
    """Everything a received video track decodes to, as it arrives."""

    def __init__(self, track: MediaStreamTrack) -> None:
        self.sizes: list[tuple[int, int]] = []
        self._task = asyncio.get_running_loop().create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.VideoFrame)
                self.sizes.append((frame.width, frame.height))

    async def until(self, size: tuple[int, int], count: int = 5, timeout: float = WAIT) -> None:
        """Wait until `count` frames in a row of this size were decoded."""
        await poll_until(lambda: self.sizes[-count:] == [size] * count, timeout=timeout)

    async def more(self, count: int = 5, timeout: float = WAIT) -> None:
        """Wait until `count` more frames were decoded."""
        target = len(self.sizes) + count
        await poll_until(lambda: len(self.sizes) >= target, timeout=timeout)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@dataclass(eq=False)
class Viewer:
    client: StageClient
    track_id: str
    frames: DecodedFrames
    rtp: ReceivedRtp


@asynccontextmanager
async def simulcast_stage(
    server: Endpoint, viewers: int = 1, codec: str = "VP8"
) -> AsyncIterator[tuple[SimulcastPublisher, list[Viewer]]]:
    """The simulcast bot on stage, and viewers decoding its video, from the start."""
    clients: list[StageClient] = []
    watching: list[Viewer] = []
    try:
        async with simulcast_publisher(server, codec) as publisher:
            for i in range(viewers):
                client = await StageClient.connect(server.ws_url, server.token(f"viewer{i}"))
                clients.append(client)
                await wait_for_tracks(client, publisher.participant_id)
                video = remote_track(client, publisher.participant_id, "video")
                rtp = observe_rtp(client, video)
                watching.append(Viewer(client, video.track_id, DecodedFrames(video.track), rtp))
            yield publisher, watching
    finally:
        for viewer in watching:
            await viewer.frames.close()
        for client in clients:
            await client.close()


@pytest.fixture
def decode_errors(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """aiortc's decoder failures so far (it logs them and asks for a key frame)."""
    caplog.set_level(logging.WARNING, logger="aiortc.rtcrtpreceiver")

    def errors() -> list[str]:
        return [r.getMessage() for r in caplog.records if "failed to decode" in r.getMessage()]

    return errors


# -- the server's view -----------------------------------------------------------------------
def video_producer(server: RunningServer, publisher: SimulcastPublisher) -> Producer:
    producers = member(server, publisher.participant_id).producers.values()
    return next(p for p in producers if p.kind == "video")


def video_consumer(server: RunningServer, viewer: Viewer, producer: Producer) -> Consumer:
    consumer = member(server, viewer.client.participant_id).consumers[producer.id]
    assert isinstance(consumer, Consumer)  # on this worker's media plane
    return consumer


# -- what the viewer's RTP must look like ----------------------------------------------------
def assert_one_continuous_stream(rtp: ReceivedRtp) -> None:
    """Sequence numbers without a gap, timestamps that never go back, every frame ended
    by its marker and (VP8) PictureIDs one apart from picture to picture: what a decoder
    needs to take several encodings for one stream."""
    extender = SequenceExtender()
    by_number = {extender.extend(p.sequence_number): p for p in rtp.packets}  # NACKed: once
    packets = sorted(by_number.items())
    assert len(packets) > 50
    numbers = [n for n, _ in packets]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "a sequence gap"
    vp8 = any(p.picture_id >= 0 for _, p in packets)
    for (_, before), (_, after) in itertools.pairwise(packets):
        step = (after.timestamp - before.timestamp) & 0xFFFFFFFF
        assert step < 1 << 31, f"timestamp went back at seq {after.sequence_number}"
        picture_step = (after.picture_id - before.picture_id) & 0x7FFF
        if step == 0:
            assert not vp8 or picture_step == 0, f"PictureID changed inside a frame at {after}"
        else:
            assert before.marker, f"a frame ended without its marker before {after}"
            assert not vp8 or picture_step == 1, (
                f"PictureID {before.picture_id} -> {after.picture_id}"
            )


def switch_points(rtp: ReceivedRtp) -> list[int]:
    """Where the viewer's stream changed encoding: the indexes of the key frames whose
    picture size differs from the one before."""
    points: list[int] = []
    size = None
    for index, packet in enumerate(rtp.packets):
        if packet.key_frame_size is not None:
            if size is not None and packet.key_frame_size != size:
                points.append(index)
            size = packet.key_frame_size
    return points


def assert_switched_at_key_frames(rtp: ReceivedRtp, *, aligned: bool = True) -> None:
    """Every switch starts a new frame with the target encoding's key frame: after the
    old encoding's last frame ended (marker), later in time; when the encodings'
    timestamps are `aligned` (their sender reports are in), one frame later (or, for the
    same instant's picture of the new encoding, one tick later). For H.264 the switch is
    at the packet carrying the SPS, and the IDR access unit it starts (parameter sets,
    then IDR slices, no other slice first), and every IDR the viewer gets comes after its
    parameter sets, in its access unit (a switch at an IDR slice's packet would not)."""
    packets = rtp.packets
    extender = SequenceExtender()
    in_order = dict(sorted({extender.extend(p.sequence_number): p for p in packets}.items()))
    for timestamp, group in itertools.groupby(in_order.values(), key=lambda p: p.timestamp):
        types = [t for p in group for t in p.nal_types]
        if _H264_IDR in types:
            first_idr = types.index(_H264_IDR)
            assert types[0] == 7 and 8 in types[:first_idr], f"an IDR alone at {timestamp}"
    for index in switch_points(rtp):
        before, after = packets[index - 1], packets[index]
        assert after.key_frame, f"switched at {after}, not at a key frame's start"
        assert before.marker, f"switched inside a frame, after {before}"
        step = (after.timestamp - before.timestamp) & 0xFFFFFFFF
        steps = (1, FRAME_TICKS) if aligned else range(1, 1 << 31)
        assert step in steps, f"timestamp step {step} at the switch to {after}"
        if after.nal_types:  # H.264
            frame = [p for p in packets[index:] if p.timestamp == after.timestamp]
            types = [t for p in frame for t in p.nal_types]
            slices = [t for t in types if t in (_H264_IDR, _H264_NON_IDR)]
            assert types[0] == 7 and 8 in types, f"no SPS and PPS first at {after}: {types}"
            assert slices and set(slices) == {_H264_IDR}, f"not an IDR at {after}: {types}"


def key_frame_sizes(rtp: ReceivedRtp, start: int = 0) -> list[tuple[int, int]]:
    return [p.key_frame_size for p in rtp.packets[start:] if p.key_frame_size is not None]


# -- the tests ------------------------------------------------------------------------------
@pytest.mark.parametrize("codec", CODECS)
async def test_a_simulcast_publisher_is_received_as_three_encodings_and_viewed_at_the_top(
    server: RunningServer, decode_errors: Callable[[], list[str]], codec: str
) -> None:
    async with simulcast_stage(server, codec=codec) as (publisher, (viewer,)):
        producer = video_producer(server, publisher)
        ssrcs = publisher.publisher.video_ssrcs

        def measured() -> bool:
            return all(s.bitrate > 0 and s.height > 0 for s in producer.streams)

        await poll_until(measured, timeout=WAIT)

        assert producer.simulcast
        assert producer.parameters.codec.name == codec
        assert [s.rid for s in producer.streams] == ["q", "h", "f"]
        assert [s.ssrc for s in producer.streams] == [ssrcs["q"], ssrcs["h"], ssrcs["f"]]
        assert [(s.width, s.height) for s in producer.streams] == SIZES
        q, h, f = (s.bitrate for s in producer.streams)
        assert 0 < q < h < f
        assert producer.active_layers() == (0, 1, 2)
        await viewer.frames.until((640, 360), count=10)
        assert video_consumer(server, viewer, producer).layer == 2
        assert not decode_errors()


@pytest.fixture(params=[True, False], ids=["native", "python"])
async def either_fanout(request: pytest.FixtureRequest) -> AsyncIterator[RunningServer]:
    """A server forwarding with the native fan-out, or with the Python reference (the
    fallback where the extension is not built): the viewer must not tell them apart."""
    async with running_server({"media.native_fastpath": request.param}) as running:
        yield running


@pytest.mark.parametrize("codec", CODECS)
async def test_a_viewer_switched_down_and_up_gets_one_continuous_stream(
    either_fanout: RunningServer, decode_errors: Callable[[], list[str]], codec: str
) -> None:
    server = either_fanout
    async with simulcast_stage(server, codec=codec) as (publisher, (viewer,)):
        producer = video_producer(server, publisher)
        consumer = video_consumer(server, viewer, producer)
        await viewer.frames.until((640, 360))
        # Once every encoding's sender report is in, the encodings' timestamps are
        # aligned: a switch continues the timeline instead of guessing from the clock.
        await poll_until(lambda: all(s.sender_report for s in producer.streams), timeout=WAIT)

        switched_at = len(viewer.rtp.packets)
        consumer.set_preferred_layer(0)
        await viewer.frames.until((160, 90))
        assert consumer.layer == consumer.target_layer == 0
        down = next(
            i
            for i, p in enumerate(viewer.rtp.packets[switched_at:], switched_at)
            if p.key_frame_size == (160, 90)
        )
        before, after = viewer.rtp.packets[down - 1 : down + 1]
        assert (after.timestamp - before.timestamp) & 0xFFFFFFFF == FRAME_TICKS  # next frame
        consumer.set_preferred_layer(2)
        await viewer.frames.until((640, 360))
        await viewer.frames.more(10)

        assert consumer.layer == 2
        assert consumer.layer_switches == 2
        # The switches happened at key frames of the encoding switched to.
        assert key_frame_sizes(viewer.rtp)[-2:] == [(160, 90), (640, 360)]
        assert len(switch_points(viewer.rtp)) == 2
        assert_switched_at_key_frames(viewer.rtp)
        assert_one_continuous_stream(viewer.rtp)
        assert not decode_errors()


@pytest.mark.parametrize("codec", CODECS)
async def test_view_tracks_gets_a_viewer_the_smallest_encoding_that_fills_its_tile(
    any_server: Endpoint, decode_errors: Callable[[], list[str]], codec: str
) -> None:
    async with simulcast_stage(any_server, codec=codec) as (publisher, (viewer,)):
        await viewer.frames.until((640, 360))

        await _view(viewer, height=90)
        await viewer.frames.until((160, 90))
        if isinstance(any_server, RunningServer):
            producer = video_producer(any_server, publisher)
            assert video_consumer(any_server, viewer, producer).layer == 0
        await _view(viewer, height=200)  # 180 is within the upscaling slack: h
        await viewer.frames.until((320, 180))
        await _view(viewer, height=0)  # no limit
        await viewer.frames.until((640, 360))

        assert_switched_at_key_frames(viewer.rtp, aligned=False)  # maybe before the SRs
        assert_one_continuous_stream(viewer.rtp)
        assert not decode_errors()


@pytest.mark.parametrize("codec", CODECS)
async def test_a_hidden_track_gets_no_video_until_shown_again_from_a_key_frame(
    any_server: Endpoint, decode_errors: Callable[[], list[str]], codec: str
) -> None:
    async with simulcast_stage(any_server, codec=codec) as (publisher, (viewer,)):
        await viewer.frames.until((640, 360))

        await _view(viewer, visible=False)  # applied when acknowledged
        # What was on its way has arrived once the publisher sent a few more packets;
        # from then on nothing may come.
        await _publisher_sends(publisher, 30)
        hidden_at = len(viewer.rtp.packets)
        await _publisher_sends(publisher, 150)  # ~0.7 s of all three encodings and audio
        assert len(viewer.rtp.packets) == hidden_at

        await _view(viewer, visible=True)
        await viewer.frames.more(10)
        resumed = viewer.rtp.packets[hidden_at]
        assert resumed.key_frame and resumed.key_frame_size == (640, 360)
        before = viewer.rtp.packets[hidden_at - 1]
        assert before.marker  # the last frame before hiding ended whole
        if codec == "H264":  # an IDR access unit: its parameter sets, then IDR slices
            assert resumed.nal_types[:2] == (7, 8)
        assert_one_continuous_stream(viewer.rtp)
        assert not decode_errors()


async def _view(viewer: Viewer, *, visible: bool = True, height: int = 0) -> None:
    view = {"track_id": viewer.track_id, "visible": visible, "height": height}
    await viewer.client.request({"type": "view_tracks", "tracks": [view]})


async def _publisher_sends(publisher: SimulcastPublisher, packets: int) -> None:
    target = publisher.publisher.packets_sent + packets
    await poll_until(lambda: publisher.publisher.packets_sent >= target, timeout=WAIT)


async def test_a_top_layer_viewer_moves_to_h_while_the_publisher_stops_sending_f(
    server: RunningServer, decode_errors: Callable[[], list[str]]
) -> None:
    async with simulcast_stage(server) as (publisher, (viewer,)):
        producer = video_producer(server, publisher)
        consumer = video_consumer(server, viewer, producer)
        await viewer.frames.until((640, 360))

        publisher.publisher.set_sending("f", False)

        await poll_until(lambda: consumer.layer == 1, timeout=5.0)
        assert producer.active_layers() == (0, 1)
        await viewer.frames.until((320, 180))

        publisher.publisher.set_sending("f", True)  # still preferred: back to it
        await poll_until(lambda: consumer.layer == 2, timeout=5.0)
        await viewer.frames.until((640, 360))
        assert_one_continuous_stream(viewer.rtp)
        assert not decode_errors()


async def test_a_packet_with_an_unknown_rid_is_dropped_and_counted(
    server: RunningServer, decode_errors: Callable[[], list[str]]
) -> None:
    async with simulcast_stage(server) as (publisher, (viewer,)):
        producer = video_producer(server, publisher)
        transport = member(server, publisher.participant_id).send_transport
        assert transport is not None
        await poll_until(lambda: all(s.ssrc is not None for s in producer.streams), timeout=WAIT)
        await viewer.frames.until((640, 360))
        ssrcs = [s.ssrc for s in producer.streams]
        unknown, discarded = transport.packets_unknown_ssrc, producer.packets_discarded
        stranger = random.getrandbits(32) | 1

        for seq in range(5):
            publisher.peer.send_rtp(_packet_with_rid(b"x", stranger, seq))

        await poll_until(lambda: transport.packets_unknown_ssrc == unknown + 5, timeout=WAIT)
        assert producer.packets_discarded == discarded
        assert [s.ssrc for s in producer.streams] == ssrcs
        assert stranger not in producer.ssrcs
        await viewer.frames.more(10)
        assert viewer.frames.sizes[-1] == (640, 360)
        assert not decode_errors()


def _packet_with_rid(rid: bytes, ssrc: int, seq: int) -> bytes:
    """A VP8 packet on the video MID whose rid the offer did not name."""
    mid = VIDEO_MID.encode()
    body = bytes([(EXTENSION_IDS[URI_MID] << 4) | (len(mid) - 1)]) + mid
    body += bytes([(RID_EXTENSION_ID << 4) | (len(rid) - 1)]) + rid
    body += b"\x00" * (-len(body) % 4)
    header = struct.pack("!BBHII", 0x90, PAYLOAD_TYPES["VP8"], seq, 1000 + seq * 3000, ssrc)
    extension = struct.pack("!HH", 0xBEDE, len(body) // 4) + body
    return header + extension + b"\x90\x80\x80\x01" + b"\x01" * 100  # an inter frame


@pytest.mark.timeout(120)
async def test_viewers_on_the_far_worker_of_a_spread_room_get_the_encoding_their_tile_needs(
    decode_errors: Callable[[], list[str]],
) -> None:
    # Spread from the first viewer: viewers alternate between the two workers, and the
    # publisher's encodings are piped, each as a stream of its own, to the far one.
    async with front(2, {"STAGE_SFU_ROOMS_SPREAD_AFTER": "0"}) as (port, _):
        server = FrontServer(
            settings=load_settings(overrides={"server.port": port}, env={}), port=port, workers=2
        )
        async with simulcast_stage(server, viewers=4) as (_, viewers):
            for viewer in viewers:
                await viewer.frames.until((640, 360))
            for viewer in viewers:
                await _view(viewer, height=90)
            for viewer in viewers:
                await viewer.frames.until((160, 90))
            for viewer in viewers:
                await _view(viewer, height=200)
            for viewer in viewers:
                await viewer.frames.until((320, 180))
                assert_one_continuous_stream(viewer.rtp)
            transports = await worker_samples(port, "stage_sfu_transports")
            per_worker = {worker: value for (worker, _), value in transports.items()}
            assert len(per_worker) == 2 and all(per_worker.values()), f"not spread: {per_worker}"
        assert not decode_errors()
