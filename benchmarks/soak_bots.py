"""The soak's moving parts: a host running polls, people hopping on and off the stage,
viewers coming and going, chat. One process, driven like `benchmarks.bots`.

Run by `benchmarks.soak` as `python -m benchmarks.soak_bots CONFIG_JSON`; it answers
`{"cmd": "stats"}` with cumulative counters and `{"cmd": "stop"}` by leaving and exiting,
and stops by itself at `max_seconds` or when stdin closes. Every participant is a
`benchmarks.bots.Bot` (real signaling, real ICE/DTLS/SRTP, media counted not decoded):

* the **host** (role host, a viewer) creates a poll every `poll_seconds`, closing the one
  before; everyone in this process votes in each poll once;
* **hoppers** join straight onto the stage and publish A/V; after `stage_seconds` they
  `leave_stage` (their tracks end), sit in the audience for `off_stage_seconds`, then
  `join_stage` and `publish` a new offer from the same connection, as the protocol says
  a client returning to the stage does; and so on. Each return brings two new tracks,
  which take the m-sections the ended ones leave in everyone's subscribe SDP;
* **quiet hoppers** enter as viewers and take the stage with microphone and camera off
  (`join_stage`) for `quiet_stage_seconds`, then `leave_stage` for
  `quiet_off_stage_seconds`, and so on: stage changes without new tracks;
* **churn viewers**: one joins every `churn_every` seconds and `leave`s after
  `viewer_lifetime` seconds (each a new identity, each with its own media connection);
* **chat**: `chat_rate` lines a second from the members of this process, in turn.

Unlike the measuring bots, this process keeps its cycle collector on: it creates and
drops participants for as long as the soak lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import uvloop

from sfu.aiortc_bridge import Certificate
from signaling.auth import issue_token
from signaling.roles import Role

from .bots import Bot, BotConfig, ProcessStats
from .media import load_clip
from .send_clock import SendClock
from .sender import Publisher

logger = logging.getLogger("benchmarks.soak_bots")

HOST_INDEX = 900_000
HOPPER_INDEX = 910_000
QUIET_INDEX = 920_000
CHURN_INDEX = 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class SoakConfig:
    bots: dict[str, Any]  # a BotConfig's fields (url, room, secret, ports, max_seconds...)
    hoppers: int = 1
    stage_seconds: float = 100.0
    off_stage_seconds: float = 40.0
    quiet_hoppers: int = 2
    quiet_stage_seconds: float = 20.0
    quiet_off_stage_seconds: float = 10.0
    churn_every: float = 8.0
    viewer_lifetime: float = 40.0
    churn_identities: int = 0  # > 0: churn viewers cycle through this many identities
    chat_rate: float = 1.0
    poll_seconds: float = 60.0
    max_seconds: float = 700.0


@dataclass(slots=True)
class Counters:
    viewer_joins: int = 0
    viewer_leaves: int = 0
    viewer_failures: int = 0
    stage_joins: int = 0  # join_stage commands acknowledged (the first entry not counted)
    stage_leaves: int = 0
    republished: int = 0  # publish answers after a return to the stage
    polls_created: int = 0
    polls_closed: int = 0
    votes: int = 0
    chat_sent: int = 0
    chat_received: int = 0
    errors_seen: int = 0


class SoakBot(Bot):
    """A Bot with a role, that votes in every open poll and can hop on and off stage."""

    def __init__(
        self, index: int, config: BotConfig, *, role: Role, counters: Counters, **kwargs: Any
    ) -> None:
        super().__init__(index, config, **kwargs)
        self.role = role
        self.counters = counters
        self.leaving = False
        self.quiet = False  # takes the stage with microphone and camera off, never publishes
        self.on_stage = False
        self.open_poll: str | None = None
        self._voted: set[str] = set()
        self._commands = 0
        if role is Role.HOST:
            self.name = f"host{index}"

    def _token(self) -> str:
        return issue_token(
            self.config.secret,
            room=self.room,
            identity=self.name,
            name=self.name,
            role=self.role,
            ttl=24 * 3600,
            now=time.time(),
        )

    def command(self, kind: str, **fields: Any) -> bool:
        """Send a command (fire and forget; errors come back as `error`); False if not in."""
        ws = self._ws
        if not self.joined or self.failed or self.leaving or ws is None or ws.closed:
            return False
        self._commands += 1
        self._spawn(self._send({"type": kind, "id": f"{kind}-{self._commands}", **fields}))
        return True

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "bye" and self.leaving:
            return
        if kind == "poll":
            poll = message.get("poll") or {}
            poll_id = poll.get("poll_id")
            if poll_id and not poll.get("closed"):
                self.open_poll = poll_id
                if poll_id not in self._voted:
                    self._voted.add(poll_id)
                    if self.command("vote", poll_id=poll_id, option=random.randrange(2)):
                        self.counters.votes += 1
            elif poll_id == self.open_poll:
                self.open_poll = None
            return
        if kind == "chat":
            self.counters.chat_received += 1
        if kind == "error":
            self.counters.errors_seen += 1
        if kind == "ack":
            ident = str(message.get("id", ""))
            if ident.startswith("join_stage-"):
                self.counters.stage_joins += 1
                self.on_stage = True
                if not self.quiet:
                    await self._publish()
                return
            if ident.startswith("leave_stage-"):
                self.counters.stage_leaves += 1
        if kind == "publish_answer" and self.published:
            # Back on stage: the same connection, a new offer; only the sending restarts.
            self.counters.republished += 1
            self._spawn(self._publish_again())
            return
        await super()._dispatch(message)

    async def _publish_again(self) -> None:
        peer = self._publisher_peer
        assert peer is not None
        clip = load_clip(create=False)
        self.publisher = Publisher(
            peer,
            clip,
            audio_ssrc=self._streams.audio_ssrc,
            video_ssrc=self._streams.video_ssrc,
            stamp=self.config.stamp,
            deadline=time.monotonic() + self.config.media_seconds,
            pacing_rate=self.config.pacing_factor * clip.video_bitrate,
        )
        await self.publisher.run(self._send_clock)

    def leave_stage(self) -> bool:
        if not self.command("leave_stage"):
            return False
        self.on_stage = False
        if self.publisher is not None:
            self.publisher.stop()
        return True

    async def leave(self) -> None:
        self.leaving = True
        await self.stop()


class SoakProcess:
    def __init__(self, config: SoakConfig) -> None:
        self.config = config
        self.counters = Counters()
        self.stats = ProcessStats()
        self.send_clock = SendClock()
        self.members: list[SoakBot] = []  # everyone currently in the room from here
        self.started = 0
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._http: aiohttp.ClientSession | None = None
        self._certificate: Certificate | None = None
        self._viewer_config = BotConfig(**(config.bots | {"publish_audio": False}))
        self._stage_config = BotConfig(
            **(config.bots | {"publish_audio": True, "publish_video": True})
        )

    async def run(self) -> None:
        config = self.config
        deadline = time.monotonic() + config.max_seconds
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self._certificate = Certificate()
        loop = asyncio.get_running_loop()
        commands = loop.create_task(self._read_commands())
        loops = [
            loop.create_task(self._host_loop()),
            loop.create_task(self._churn_loop()),
            loop.create_task(self._chat_loop()),
            loop.create_task(self._report_loop()),
            *(loop.create_task(self._hopper_loop(i)) for i in range(config.hoppers)),
            *(loop.create_task(self._quiet_loop(i)) for i in range(config.quiet_hoppers)),
        ]
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), max(0.0, deadline - time.monotonic()))
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await asyncio.gather(*(bot.leave() for bot in self.members), return_exceptions=True)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._http.close()
            _reply({"stopped": True})
            commands.cancel()

    def _new_bot(self, index: int, *, role: Role, stage: bool) -> SoakBot:
        assert self._http is not None and self._certificate is not None
        bot = SoakBot(
            index,
            self._stage_config if stage else self._viewer_config,
            role=role,
            counters=self.counters,
            http=self._http,
            certificate=self._certificate,
            stats=self.stats,
            send_clock=self.send_clock,
        )
        self.started += 1
        self.members.append(bot)
        task = asyncio.get_running_loop().create_task(bot.run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return bot

    async def _remove(self, bot: SoakBot) -> None:
        with contextlib.suppress(ValueError):
            self.members.remove(bot)
        await bot.leave()

    async def _joined(self, bot: SoakBot, timeout: float = 30.0) -> bool:
        end = time.monotonic() + timeout
        while not (bot.joined and (bot.published or not bot.publishes)) and not bot.failed:
            if time.monotonic() > end:
                return False
            await asyncio.sleep(0.2)
        return not bot.failed

    async def _host_loop(self) -> None:
        """The host joins, then opens a poll every `poll_seconds`, closing the previous."""
        host = self._new_bot(HOST_INDEX, role=Role.HOST, stage=False)
        if not await self._joined(host):
            return
        while True:
            if host.failed or host.done:  # rejoin: the soak goes on without a host otherwise
                await self._remove(host)
                host = self._new_bot(HOST_INDEX + self.started, role=Role.HOST, stage=False)
                await self._joined(host)
            if host.open_poll is not None:
                if host.command("close_poll", poll_id=host.open_poll):
                    self.counters.polls_closed += 1
                await asyncio.sleep(1.0)
            if host.command(
                "create_poll", question="Which topic next?", options=["Roadmap", "Q&A"]
            ):
                self.counters.polls_created += 1
            await asyncio.sleep(self.config.poll_seconds)

    async def _hopper_loop(self, i: int) -> None:
        """On stage for `stage_seconds`, off for `off_stage_seconds`, again and again."""
        await asyncio.sleep(2.0 + 3.0 * i)  # one publish at a time (see README)
        bot = self._new_bot(HOPPER_INDEX + i, role=Role.PARTICIPANT, stage=True)
        generation = 0
        while True:
            if not await self._joined(bot) or bot.done:
                # Failed: a new identity takes its place, so the load stays.
                self.counters.viewer_failures += 1
                await self._remove(bot)
                generation += 1
                await asyncio.sleep(5.0)
                bot = self._new_bot(
                    HOPPER_INDEX + i + 100 * generation, role=Role.PARTICIPANT, stage=True
                )
                continue
            await asyncio.sleep(self.config.stage_seconds)
            bot.leave_stage()
            await asyncio.sleep(self.config.off_stage_seconds)
            bot.command("join_stage")
            await asyncio.sleep(2.0)

    async def _quiet_loop(self, i: int) -> None:
        """A viewer who takes the stage with microphone and camera off for
        `quiet_stage_seconds`, goes back for `quiet_off_stage_seconds`, and so on: the
        stage changes for everyone, and no track is added."""
        await asyncio.sleep(1.0 + i)
        generation = 0
        bot = self._new_bot(QUIET_INDEX + i, role=Role.PARTICIPANT, stage=False)
        bot.quiet = True
        while True:
            if not await self._joined(bot) or bot.done:
                self.counters.viewer_failures += 1
                await self._remove(bot)
                generation += 1
                await asyncio.sleep(5.0)
                index = QUIET_INDEX + i + 100 * generation
                bot = self._new_bot(index, role=Role.PARTICIPANT, stage=False)
                bot.quiet = True
                continue
            bot.command("join_stage", mic=False, camera=False)
            await asyncio.sleep(self.config.quiet_stage_seconds)
            bot.leave_stage()
            await asyncio.sleep(self.config.quiet_off_stage_seconds)

    async def _churn_loop(self) -> None:
        """A viewer every `churn_every` seconds, each leaving after `viewer_lifetime`."""
        visits = 0
        while True:
            visits += 1
            identities = self.config.churn_identities
            index = CHURN_INDEX + (visits % identities if identities > 0 else visits)
            self._tasks.add(task := asyncio.get_running_loop().create_task(self._visit(index)))
            task.add_done_callback(self._tasks.discard)
            await asyncio.sleep(self.config.churn_every)

    async def _visit(self, index: int) -> None:
        bot = self._new_bot(index, role=Role.PARTICIPANT, stage=False)
        self.counters.viewer_joins += 1
        try:
            lifetime = self.config.viewer_lifetime * random.uniform(0.75, 1.25)
            await asyncio.sleep(lifetime)
            if bot.failed or not bot.has_media:
                self.counters.viewer_failures += 1
        finally:
            self.counters.viewer_leaves += 1
            await self._remove(bot)

    async def _chat_loop(self) -> None:
        if self.config.chat_rate <= 0:
            return
        while True:
            await asyncio.sleep(1.0 / self.config.chat_rate)
            members = [bot for bot in self.members if bot.joined and not bot.leaving]
            if members and random.choice(members).post_chat():
                self.counters.chat_sent += 1

    async def _report_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for bot in list(self.members):
                bot.send_receiver_report()

    async def _read_commands(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:
                self._stopping.set()
                return
            command = json.loads(line).get("cmd")
            if command == "stats":
                _reply(self.snapshot())
            elif command == "stop":
                self._stopping.set()
                return

    def snapshot(self) -> dict[str, Any]:
        received = expected = 0
        for bot in self.members:
            r, e, *_ = bot.receiver.totals()
            received += r
            expected += e
        out = {
            **{name: getattr(self.counters, name) for name in Counters.__dataclass_fields__},
            "started": self.started,
            "members": len(self.members),
            "on_stage": sum(bot.on_stage for bot in self.members),
            "with_media": sum(bot.has_media for bot in self.members),
            "received_now": received,  # of the members present now (not cumulative)
            "expected_now": expected,
            "tasks": len(asyncio.all_tasks()),
            "errors": self.stats.errors[:],
        }
        self.stats.latency_us.clear()
        self.stats.app_latency_us.clear()
        self.stats.join_ms.clear()
        return out


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    raw = json.loads(args[0])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    uvloop.run(SoakProcess(SoakConfig(**raw)).run())


if __name__ == "__main__":
    main()
