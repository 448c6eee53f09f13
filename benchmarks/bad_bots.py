"""Viewers that misbehave: one that stops reading its socket, one behind random loss.

Run as `python -m benchmarks.bad_bots CONFIG_JSON` and driven like `benchmarks.bots`
(`stats`, `stop`). The config is a `BotConfig`'s fields plus `mode`:

* `"stalled"`: once its subscribe connection has received media for `stall_after`
  seconds, the viewer stops reading its UDP socket (the transport's `pause_reading`:
  the socket stays open, its receive buffer fills and the kernel drops what arrives
  after that, ICE consent requests included). Its WebSocket keeps working. This process
  runs on asyncio's own loop, whose datagram transports can pause (uvloop's cannot).
* `"lossy"`: a kernel filter drops `loss` (0.3) of the RTP sent to it
  (`benchmarks.loss.program`); the viewer NACKs the missing video packets and asks for
  a key frame (PLI, at most one per `pli_interval`) when one is given up, as a real
  receiver does (`benchmarks.loss.NackTracker`).

Every other behaviour (joining, answering offers, receiver reports, counting) is the
normal viewer's (`benchmarks.bots.Bot`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

from sfu.rtp import rtcp

from . import loss, thin
from .bots import Bot, BotConfig, BotProcess

logger = logging.getLogger("benchmarks.bad_bots")

_NACK_TICK = 0.01


class BadBot(Bot):
    mode = "stalled"
    stall_after = 1.0
    loss_rate = 0.3
    pli_interval = 0.5

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stalled = False
        self.filtered = False
        self.trackers: dict[int, loss.NackTracker] = {}
        self.nacks_sent = 0  # RTCP NACK packets
        self.plis_sent = 0
        self._last_pli = 0.0
        self._media = asyncio.Event()
        self.stalled_at = 0.0
        self.bye_reason: str | None = None
        self.bye_after_stall: float | None = None  # seconds from the stall to the server's bye

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") == "bye" and self.bye_reason is None:
            self.bye_reason = str(message.get("reason"))
            if self.stalled:
                self.bye_after_stall = round(time.monotonic() - self.stalled_at, 1)
        await super()._dispatch(message)

    def _first_media(self) -> None:
        super()._first_media()
        self._media.set()

    async def _connect_subscriber(self, offer: str) -> None:
        await super()._connect_subscriber(offer)
        if not self.connected:
            return
        if self.mode == "stalled":
            self._spawn(self._stall())
            return
        fd = self._subscriber.socket_fd
        pair = self._subscriber._connection._nominated.get(1)
        if fd is None or pair is None or not hasattr(pair.protocol, "media"):
            self._fail(f"{self.name}: no socket to make lossy")
            return
        thin.attach(fd, loss.program(self.loss_rate))
        self.filtered = True
        count = pair.protocol.media  # the receiver's counting hook, installed above
        media_ssrc_kinds = self.receiver.kinds

        def on_datagram(data: bytes, addr: Any = None) -> None:
            count(data, addr)
            if 191 < data[1] < 224 or len(data) < 12:  # RTCP
                return
            ssrc = int.from_bytes(data[8:12], "big")
            if media_ssrc_kinds.get(ssrc) != "video":
                return  # audio: browsers do not NACK Opus
            tracker = self.trackers.get(ssrc)
            if tracker is None:
                tracker = self.trackers[ssrc] = loss.NackTracker()
            lost = tracker.on_packet((data[2] << 8) | data[3], time.monotonic())
            if lost:
                self._nack(ssrc, lost)

        pair.protocol.media = on_datagram
        self._spawn(self._retry_loop())

    async def _stall(self) -> None:
        await self._media.wait()
        await asyncio.sleep(self.stall_after)
        transport = self._subscriber._socket_transport
        if transport is None:
            self._fail(f"{self.name}: no transport to stall")
            return
        transport.pause_reading()
        self.stalled = True
        self.stalled_at = time.monotonic()

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(_NACK_TICK)
            now = time.monotonic()
            for ssrc, tracker in self.trackers.items():
                given_up = tracker.given_up
                again = tracker.due(now)
                if again:
                    self._nack(ssrc, again)
                if tracker.given_up > given_up and now - self._last_pli >= self.pli_interval:
                    self._last_pli = now
                    self.plis_sent += 1
                    self._subscriber.send_rtcp(
                        rtcp.serialize(
                            rtcp.PictureLossIndication(sender_ssrc=self._rtcp_ssrc, media_ssrc=ssrc)
                        )
                    )

    def _nack(self, ssrc: int, lost: list[int]) -> None:
        self.nacks_sent += 1
        packet = rtcp.GenericNack(sender_ssrc=self._rtcp_ssrc, media_ssrc=ssrc, lost=tuple(lost))
        self._subscriber.send_rtcp(rtcp.serialize(packet))


class BadBotProcess(BotProcess):
    bot_class = BadBot

    def snapshot(self) -> dict[str, Any]:
        out = super().snapshot()
        bots = [b for b in self.bots if isinstance(b, BadBot)]
        trackers = [t for b in bots for t in b.trackers.values()]
        by_kind = {"audio": [0, 0], "video": [0, 0]}
        for bot in bots:
            for stream in bot.receiver.streams.values():
                counts = by_kind.setdefault(stream.kind, [0, 0])
                counts[0] += stream.received
                counts[1] += stream.expected
        out |= {
            "mode": BadBot.mode,
            "by_kind": by_kind,  # kind -> [received, expected], cumulative
            "bye_reason": next((b.bye_reason for b in bots if b.bye_reason), None),
            "bye_after_stall_s": next(
                (b.bye_after_stall for b in bots if b.bye_after_stall is not None), None
            ),
            "stalled": sum(b.stalled for b in bots),
            "filtered": sum(b.filtered for b in bots),
            "nacks_sent": sum(b.nacks_sent for b in bots),
            "nacked_packets": sum(t.nacked for t in trackers),
            "recovered_packets": sum(t.recovered for t in trackers),
            "given_up_packets": sum(t.given_up for t in trackers),
            "plis_sent": sum(b.plis_sent for b in bots),
            "still_connected": sum(b.connected and not b.failed for b in bots),
        }
        return out


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    raw = json.loads(args[0])
    BadBot.mode = raw.pop("mode", "stalled")
    BadBot.stall_after = float(raw.pop("stall_after", BadBot.stall_after))
    BadBot.loss_rate = float(raw.pop("loss", BadBot.loss_rate))
    BadBot.pli_interval = float(raw.pop("pli_interval", BadBot.pli_interval))
    raw["indexes"] = tuple(raw.get("indexes", ()))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(BadBotProcess(BotConfig(**raw)).run())


if __name__ == "__main__":
    main()
