"""Load bots: many participants per OS process, real signaling, real ICE/DTLS/SRTP, no codecs.

Run by the scenario runner as `python -m benchmarks.bots CONFIG_JSON`. The process reads
commands from stdin, one JSON object per line, and answers each on stdout:

* `{"cmd": "stats"}` -> cumulative counters, plus the latency samples and join times
  collected since the previous `stats`;
* `{"cmd": "stop"}` -> every bot leaves; the process answers `{"stopped": true}` and exits.

It also stops by itself at `max_seconds` or when stdin closes, so it never outlives
the runner. A bot joins over the WebSocket protocol (`join`), and if it is a
publisher, `publish`es an offer built with `sfu.sdp` and replays cached media
(`benchmarks.sender`), its video as one encoding or, with `simulcast`, as three
(160x90, 320x180 and 640x360, rids q, h and f), in VP8 or, with `video_codec` "H264",
in H.264 (`benchmarks.h264_clips`; one encoding is its 640x360 one). Every bot answers
`subscribe_offer`s and counts what it receives from the clear RTP header
(`benchmarks.receiver`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import random
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import uvloop

from sfu import sdp
from sfu.aiortc_bridge import Certificate, PeerConnection
from sfu.rtp import rtcp
from signaling.auth import issue_token
from signaling.roles import Role

from . import thin
from .h264_clips import load_h264_simulcast_clips
from .media import load_clip, load_simulcast_clips
from .negotiation import (
    SIMULCAST_RIDS,
    SendStreams,
    publish_offer,
    remote_endpoint,
    subscribe_answer,
)
from .receiver import Receiver
from .send_clock import SendClock
from .sender import Encoding, Publisher

logger = logging.getLogger("benchmarks.bots")

_EGRESS_LIMIT = 1 << 20
_REPORT_INTERVAL = 1.0
_CLOSE_TIMEOUT = 3.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BotConfig:
    url: str
    room: str = "bench"  # the room's name, or with `rooms` > 1 the prefix of "bench-<n>"
    rooms: int = 1  # bot `index` joins room index % rooms
    secret: str = ""
    publish_audio: bool = False
    publish_video: bool = False
    first_media: str = "video"  # the kind whose first packet ends a viewer's join
    indexes: tuple[int, ...] = ()
    start_at: float = 0.0  # time.monotonic() of index 0's join
    join_rate: float = 20.0  # joins per second, across all processes
    join_timeout: float = 30.0
    max_seconds: float = 120.0
    media_seconds: float = 120.0  # how long publishers replay
    port_min: int = 50000
    port_max: int = 59999
    stamp: bool = True  # append the send time to payloads (off for the decoding relay)
    sample_every: int = 16
    nice: int = 0  # added to this process's niceness, so the server under test comes first
    thin_every: int = 0  # > 0: bots receive one RTP packet in this many (benchmarks.thin)
    pacing_factor: float = 0.0  # publishers pace video at this x the clip's bitrate; 0 = burst
    chat_rate: float = 0.0  # chat lines a second in each room, posted by this process's bots
    simulcast: bool = False  # publishers send video as three encodings (q, h, f)
    video_codec: str = "VP8"  # or "H264" (negotiation.VIDEO_CODECS)
    # A viewer (index i) tells the server it shows each video it receives in a tile
    # view_heights[i % len] device pixels tall (`view_tracks`; 0 = no limit).
    view_heights: tuple[int, ...] = ()
    transport_cc: bool = True  # subscribe answers keep transport-cc (a browser's do)

    def room_of(self, index: int) -> str:
        return self.room if self.rooms <= 1 else f"{self.room}-{index % self.rooms}"


@dataclass(slots=True)
class ProcessStats:
    latency_us: list[int] = field(default_factory=list)
    app_latency_us: list[int] = field(default_factory=list)
    join_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(text)


class Bot:
    def __init__(
        self,
        index: int,
        config: BotConfig,
        *,
        http: aiohttp.ClientSession,
        certificate: Certificate,
        stats: ProcessStats,
        send_clock: SendClock,
    ) -> None:
        self.index = index
        self.config = config
        self.publishes = config.publish_audio or config.publish_video
        self.name = f"{'speaker' if self.publishes else 'viewer'}{index}"
        self.room = config.room_of(index)
        # Publishers receive each other too: with many on stage that is no small load.
        self.thin_every = config.thin_every
        self._http = http
        self._certificate = certificate
        self._stats = stats
        self._send_clock = send_clock
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._subscriber = PeerConnection(certificate)
        self._publisher_peer: PeerConnection | None = None
        self.publisher: Publisher | None = None
        self.receiver = Receiver(
            sample_every=config.sample_every,
            samples=stats.latency_us,
            app_samples=stats.app_latency_us,
            on_first_media=self._first_media,
            every=max(1, self.thin_every),
        )
        self.receiver.first_media_kind = config.first_media
        self._subscriber.on_rtp = self.receiver.on_rtp
        self._tasks: set[asyncio.Task[Any]] = set()
        self._requests = 0
        self.chat_sent = 0
        self.chat_received = 0
        self._join_sent_ns = 0
        self._rtcp_ssrc = random.getrandbits(32) or 1
        self._streams = SendStreams(audio_ssrc=None, video_ssrc=None, cname=self.name)
        self._encoding_ssrcs: tuple[int, ...] = ()
        self._viewed: set[str] = set()  # video track ids already described to the server
        self._first_offer = ""
        self.participant_id = ""  # the server's, once joined
        self.joined = False
        self.failed = False
        self.published = False
        self.connected = False
        self.thinned = False  # the socket filter is on
        self.has_media = False
        self.done = False

    # -- lifecycle ----------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self._run()
        except (aiohttp.ClientError, OSError, ValueError, TimeoutError) as exc:
            self._fail(f"{self.name}: {type(exc).__name__}: {exc}")
        finally:
            self.done = True

    async def _run(self) -> None:
        config = self.config
        await self._gather(self._subscriber)
        if self.publishes:
            self._publisher_peer = PeerConnection(self._certificate)
            await self._gather(self._publisher_peer)
            # The offerer controls ICE (RFC 8445 §6.1.1). Say so before the answer goes
            # out: a check from the SFU arriving before connect() would otherwise start an
            # aioice role conflict that can leave both sides waiting for a nomination.
            self._publisher_peer.set_ice_role(controlling=True)
        self._ws = ws = await self._http.ws_connect(config.url, max_msg_size=1 << 22)
        self._join_sent_ns = time.monotonic_ns()
        await self._send(
            {
                "type": "join",
                "id": "join",
                "token": self._token(),
                "entry": "stage" if self.publishes else "viewer",
            }
        )
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            await self._dispatch(json.loads(message.data))
            if self.failed:
                break

    async def _gather(self, peer: PeerConnection) -> None:
        await peer.gather(
            ["127.0.0.1"],
            port_min=self.config.port_min,
            port_max=self.config.port_max,
            announced_address=None,
            egress_buffer_limit=_EGRESS_LIMIT,
        )

    def _token(self) -> str:
        if not self.config.secret:
            return "unused"
        return issue_token(
            self.config.secret,
            room=self.room,
            identity=self.name,
            name=self.name,
            role=Role.PARTICIPANT,
            ttl=3600,
            now=time.time(),
        )

    @property
    def publisher_peer(self) -> PeerConnection | None:
        """The publish connection (None for a viewer)."""
        return self._publisher_peer

    async def stop(self) -> None:
        """Leave (bounded), close the socket and both peer connections."""
        if self.publisher is not None:
            self.publisher.stop()
        ws = self._ws
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                if ws is not None and not ws.closed:
                    await self._send({"type": "leave", "id": "leave"})
                    await ws.close()
        for task in self._tasks:
            task.cancel()
        for peer in (self._subscriber, self._publisher_peer):
            if peer is not None:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(_CLOSE_TIMEOUT):
                        await peer.close()

    # -- signaling ----------------------------------------------------------------
    async def _send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_str(json.dumps(message))

    def post_chat(self) -> bool:
        """One chat line to the room (a broadcast to every member); False if not in it."""
        ws = self._ws
        if not self.joined or self.failed or ws is None or ws.closed:
            return False
        self.chat_sent += 1
        line = f"{self.name} says {self.chat_sent}"
        self._spawn(self._send({"type": "chat", "id": f"c{self.chat_sent}", "text": line}))
        return True

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "joined":
            self.joined = True
            self.participant_id = str(message.get("participant_id", ""))
            if self.publishes:
                await self._publish()
        elif kind == "publish_answer":
            self._spawn(self._start_publishing(message["sdp"]))
        elif kind == "subscribe_offer":
            await self._answer(message["sdp"])
        elif kind == "ack" and message.get("id") == "s1":
            # Only once the SFU applied our first answer (and so took the controlling ICE
            # role): checks sent earlier can meet an SFU transport that still has aioice's
            # default role and make both sides controlling (see README, "ICE roles").
            self._spawn(self._connect_subscriber(self._first_offer))
        elif kind == "chat":
            self.chat_received += 1
        elif kind == "error":
            text = f"{self.name}: {message.get('code')}: {message.get('message')}"
            if message.get("id") in ("join", "publish"):
                self._fail(text)
            else:
                self._stats.error(text)
        elif kind == "bye":
            self._fail(f"{self.name}: bye {message.get('reason')}")

    async def _publish(self) -> None:
        peer = self._publisher_peer
        assert peer is not None
        simulcast = self.config.simulcast and self.config.publish_video
        streams = SendStreams(
            audio_ssrc=(random.getrandbits(32) or 1) if self.config.publish_audio else None,
            video_ssrc=(random.getrandbits(32) or 2)
            if self.config.publish_video and not simulcast
            else None,
            cname=self.name,
            video_rids=SIMULCAST_RIDS if simulcast else (),
            video_codec=self.config.video_codec,
        )
        self._streams = streams
        # Not in the offer (as from Chromium): the SFU learns them by rid.
        self._encoding_ssrcs = tuple(random.getrandbits(32) or 3 for _ in streams.video_rids)
        offer = publish_offer(peer, streams, session_id=random.getrandbits(62))
        sources = {}
        if streams.audio_ssrc is not None:
            sources["0"] = "microphone"
        if streams.publishes_video:
            sources["1"] = "camera"
        await self._send({"type": "publish", "id": "publish", "sdp": offer, "sources": sources})

    async def _start_publishing(self, answer: str) -> None:
        peer = self._publisher_peer
        assert peer is not None
        ok = await self._connect(peer, answer, we_answered=False)
        if not ok:
            self._fail(f"{self.name}: publish connection failed")
            return
        self.published = True
        rids = self._streams.video_rids
        if self._streams.video_codec == "H264":
            ladder = load_h264_simulcast_clips(create=False)
        else:  # only what will be sent: one encoding needs no ladder
            ladder = load_simulcast_clips(create=False) if rids else (load_clip(create=False),)
        clip = ladder[-1]  # the full-size encoding, and the audio
        encodings = tuple(
            Encoding(rid=rid, ssrc=ssrc, clip=encoded)
            for rid, ssrc, encoded in zip(
                rids, self._encoding_ssrcs, ladder if rids else (), strict=True
            )
        )
        video_bitrate = (
            sum(e.clip.video_bitrate for e in encodings) if encodings else clip.video_bitrate
        )
        self.publisher = Publisher(
            peer,
            clip,
            audio_ssrc=self._streams.audio_ssrc,
            video_ssrc=self._streams.video_ssrc,
            stamp=self.config.stamp,
            deadline=time.monotonic() + self.config.media_seconds,
            pacing_rate=self.config.pacing_factor * video_bitrate,
            encodings=encodings,
        )
        await self.publisher.run(self._send_clock)

    async def _answer(self, offer: str) -> None:
        answer, kinds, payload_kinds = subscribe_answer(
            offer,
            self._subscriber,
            session_id=random.getrandbits(62),
            transport_cc=self.config.transport_cc,
        )
        self.receiver.kinds.update(kinds)
        self.receiver.payload_kinds.update(payload_kinds)
        self._requests += 1
        if self._requests == 1:
            self._first_offer = offer
        await self._send({"type": "subscribe_answer", "id": f"s{self._requests}", "sdp": answer})
        if self.config.view_heights:
            await self._view(offer)

    async def _view(self, offer: str) -> None:
        """Tell the server the tile height of each video track new in `offer`."""
        heights = self.config.view_heights
        height = heights[self.index % len(heights)]
        tracks = []
        for section in sdp.parse(offer).media:
            if section.kind != "video" or section.rejected or section.msid is None:
                continue
            track_id = section.msid.split()[-1]
            if track_id not in self._viewed:
                self._viewed.add(track_id)
                tracks.append({"track_id": track_id, "height": height})
        for at in range(0, len(tracks), 64):  # at most 64 a message (docs/protocol.md)
            batch = tracks[at : at + 64]
            await self._send({"type": "view_tracks", "id": f"v{self._requests}", "tracks": batch})

    async def _connect_subscriber(self, offer: str) -> None:
        peer = self._subscriber
        ok = await self._connect(peer, offer, we_answered=True)
        if not ok:
            self._fail(f"{self.name}: subscribe connection failed")
            return
        self.connected = True
        # From now on count from the clear header instead of decrypting every packet.
        pair = peer._connection._nominated.get(1)
        if pair is not None and hasattr(pair.protocol, "media"):
            self.receiver.unprotect = peer._dtls._rx_srtp.unprotect
            fd = peer.socket_fd
            if fd is not None:
                self.receiver.use_socket(fd)
                if self.thin_every:
                    thin.thin(fd, self.thin_every)
                    self.thinned = True
            elif self.thin_every:
                self._fail(f"{self.name}: no socket to thin")
            pair.protocol.media = self.receiver.on_datagram

    async def _connect(self, peer: PeerConnection, remote: str, *, we_answered: bool) -> bool:
        """ICE + DTLS, bounded: aiortc's DTLS handshake has no timeout of its own."""
        endpoint = remote_endpoint(remote, we_answered=we_answered)
        try:
            peer.set_ice_role(controlling=not we_answered)
            async with asyncio.timeout(self.config.join_timeout):
                return await peer.connect(endpoint)
        except TimeoutError:
            self._fail(f"{self.name}: connect timed out: {_ice_state(peer)}")
            return False

    def _first_media(self) -> None:
        self.has_media = True
        if self._join_sent_ns:
            self._stats.join_ms.append((time.monotonic_ns() - self._join_sent_ns) / 1e6)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._fail(f"{self.name}: {type(task.exception()).__name__}: {task.exception()}")

    def _fail(self, text: str) -> None:
        if not self.failed:
            self.failed = True
            self._stats.error(text)

    @property
    def state(self) -> str:
        """Where a bot without media is stuck, for the run's error report."""
        return (
            f"{self.name}: joined={self.joined} offers={self._requests} "
            f"connected={self.connected} subscriber={self._subscriber.state} "
            f"streams={len(self.receiver.streams)} done={self.done} published={self.published} "
            f"publisher={self._publisher_peer.state if self._publisher_peer else None} "
            f"{_ice_state(self._publisher_peer or self._subscriber)}"
        )

    # -- feedback -----------------------------------------------------------------
    def send_receiver_report(self) -> None:
        """One RR per connected subscribe connection, about once a second, as browsers do."""
        if not self.connected:
            return
        blocks = tuple(
            rtcp.ReportBlock(
                ssrc=ssrc,
                fraction_lost=0,
                packets_lost=max(0, s.expected - s.received),
                highest_sequence=s.highest & 0xFFFFFFFF,
                jitter=0,
                last_sr=0,
                delay_since_last_sr=0,
            )
            for ssrc, s in list(self.receiver.streams.items())[:31]
        )
        if blocks:
            self._subscriber.send_rtcp(
                rtcp.serialize(rtcp.ReceiverReport(ssrc=self._rtcp_ssrc, reports=blocks))
            )


class BotProcess:
    bot_class: type[Bot] = Bot  # the participants this process runs

    def __init__(self, config: BotConfig) -> None:
        self.config = config
        self.stats = ProcessStats()
        self.send_clock = SendClock()  # one timer for all of this process's publishers
        self.bots: list[Bot] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        config = self.config
        deadline = time.monotonic() + config.max_seconds
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        certificate = Certificate()
        commands = asyncio.get_running_loop().create_task(self._read_commands())
        reports = asyncio.get_running_loop().create_task(self._report_loop())
        chat = asyncio.get_running_loop().create_task(self._chat_loop())
        try:
            for index in config.indexes:
                at = config.start_at + index / config.join_rate
                while not self._stopping.is_set() and time.monotonic() < at:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), at - time.monotonic())
                if self._stopping.is_set():
                    break
                bot = self.bot_class(
                    index,
                    config,
                    http=http,
                    certificate=certificate,
                    stats=self.stats,
                    send_clock=self.send_clock,
                )
                self.bots.append(bot)
                self._tasks.append(asyncio.get_running_loop().create_task(bot.run()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), max(0.0, deadline - time.monotonic()))
        finally:
            reports.cancel()
            chat.cancel()
            await asyncio.gather(*(bot.stop() for bot in self.bots), return_exceptions=True)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await http.close()
            _reply({"stopped": True})
            commands.cancel()

    async def _read_commands(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:  # the runner went away
                self._stopping.set()
                return
            command = json.loads(line).get("cmd")
            if command == "stats":
                _reply(self.snapshot())
            elif command == "stop":
                self._stopping.set()
                return

    async def _report_loop(self) -> None:
        """Every bot's RR once per interval, one at a time across it: independent
        browsers' reports arrive spread out (RFC 3550 §6.3.5 randomises each interval),
        not as one burst from a hundred viewers that would queue the media behind it."""
        while True:
            bots = list(self.bots)
            if not bots:
                await asyncio.sleep(_REPORT_INTERVAL)
                continue
            pause = _REPORT_INTERVAL / len(bots)
            for bot in bots:
                await asyncio.sleep(pause)
                bot.send_receiver_report()

    async def _chat_loop(self) -> None:
        """`chat_rate` lines a second per room, posted by the bots in turn."""
        if self.config.chat_rate <= 0:
            return
        pause = 1.0 / (self.config.chat_rate * max(1, self.config.rooms))
        turn = 0
        while True:
            await asyncio.sleep(pause)
            bots = self.bots
            for _ in range(len(bots)):
                turn = (turn + 1) % len(bots)
                if bots[turn].post_chat():
                    break

    def snapshot(self) -> dict[str, Any]:
        totals = [0] * 6
        rtcp_packets = off_sample = 0
        for bot in self.bots:
            for i, value in enumerate(bot.receiver.totals()):
                totals[i] += value
            rtcp_packets += bot.receiver.rtcp_packets
            off_sample += bot.receiver.off_sample
        received, expected, size, dupes, frames, videos = totals
        publishers = [bot.publisher for bot in self.bots if bot.publisher is not None]
        out = {
            "started": len(self.bots),
            "joined": sum(bot.joined for bot in self.bots),
            "connected": sum(bot.connected for bot in self.bots),
            "with_media": sum(bot.has_media for bot in self.bots),
            "published": sum(bot.published for bot in self.bots),
            "failed": sum(bot.failed for bot in self.bots),
            "received": received,
            "expected": expected,
            "bytes": size,
            "duplicates": dupes,
            "video_frames": frames,
            "video_streams": videos,
            "rtcp_received": rtcp_packets,
            "off_sample": off_sample,
            "thin_connections": sum(bot.thinned for bot in self.bots),
            "sent": sum(p.packets_sent for p in publishers),
            "chat_sent": sum(bot.chat_sent for bot in self.bots),
            "chat_received": sum(bot.chat_received for bot in self.bots),
            "key_frame_requests": sum(p.key_frame_requests for p in publishers),
            "key_frames_sent": sum(p.key_frames_sent for p in publishers),
            # Maxima over the run so far: the pacer's largest burst and longest queueing.
            "video_max_burst": max((p.pacer.max_burst for p in publishers), default=0),
            "pacer_max_delay_us": round(
                max((p.pacer.max_delay for p in publishers), default=0.0) * 1e6
            ),
            "latency_us": self.stats.latency_us[:],
            "app_latency_us": self.stats.app_latency_us[:],
            "join_ms": self.stats.join_ms[:],
            "errors": self.stats.errors[:],
            "waiting": [bot.state for bot in self.bots if not bot.has_media and not bot.failed][:5],
        }
        self.stats.latency_us.clear()
        self.stats.app_latency_us.clear()
        self.stats.join_ms.clear()
        return out


def _ice_state(peer: PeerConnection) -> str:
    connection = peer._connection
    checks = [(c.state.name, c.nominated) for c in connection._check_list]
    return (
        f"ice={peer._ice.state} dtls={peer._dtls.state} checks={checks} "
        f"nominated={list(connection._nominated)} controlling={connection.ice_controlling}"
    )


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    raw = json.loads(args[0])
    raw["indexes"] = tuple(raw.get("indexes", ()))
    raw["view_heights"] = tuple(raw.get("view_heights", ()))
    config = BotConfig(**raw)
    if config.nice:
        # Viewers stand in for remote browsers: they take the CPU the server leaves. Lower
        # priority, and SCHED_BATCH so their wake-ups (one per packet the server sends)
        # never preempt the server in the middle of a fan-out.
        os.nice(config.nice)
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # Bots live for a bounded run, so their cycle collector stays off: a collection
    # pause in a publisher (50 ms and more were measured) would release its paced
    # packets as one burst, which no independent browser does to the server.
    gc.collect()
    gc.freeze()
    gc.disable()
    uvloop.run(BotProcess(config).run())


if __name__ == "__main__":
    main()
