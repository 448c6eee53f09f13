"""RoomRegistry: rooms by name on this process's media worker."""

from __future__ import annotations

import asyncio
import logging

from sfu.clock import Clock
from sfu.tasks import TaskSet
from sfu.worker import Worker

from .postman import Postman
from .room import Room
from .room_commands import RoomOptions
from .spread import messages as spread_messages
from .spread.home import Cluster
from .stats import SignalingStats

logger = logging.getLogger(__name__)


class RoomRegistry:
    """Creates rooms on first join and closes them when the last member leaves."""

    def __init__(
        self,
        worker: Worker,
        *,
        options: RoomOptions,
        clock: Clock,
        cluster: Cluster | None = None,
        stats: SignalingStats | None = None,
    ) -> None:
        self._worker = worker
        self._cluster = cluster
        self._options = options
        self._clock = clock
        self._rooms: dict[str, Room] = {}
        self._tasks = TaskSet()
        self.accepting = True
        self.postman = Postman()  # one queue for all rooms' messages (postman.py)
        # Counted by sessions, rooms and links to other workers; read at scrape time.
        self.stats = stats if stats is not None else SignalingStats()

    @property
    def rooms(self) -> dict[str, Room]:
        return self._rooms

    def get_or_create(self, name: str) -> Room:
        room = self._rooms.get(name)
        if room is None or room.closed:
            room = Room(
                name=name,
                worker=self._worker,
                options=self._options,
                clock=self._clock,
                on_empty=self._room_empty,
                stats=self.stats,
                cluster=self._cluster,
                postman=self.postman,
            )
            self._rooms[name] = room
        return room

    def spread_message(self, message: spread_messages.ToHome) -> None:
        """A report from another worker about one of our spread rooms."""
        _, _, name = message.room.partition(":")
        room = self._rooms.get(name)
        if room is not None and room.spread_key == message.room:
            room.post(message)

    def link_lost(self, index: int) -> None:
        """Another worker went away: its share of every spread room failed."""
        for room in self._rooms.values():
            room.link_lost(index)

    def _room_empty(self, room: Room) -> None:
        if self._rooms.get(room.name) is room:
            del self._rooms[room.name]
        self._tasks.spawn(room.close(), name=f"close-room-{room.name}")

    async def close(self) -> None:
        """Stop accepting joins and close every room (members get `bye`)."""
        self.accepting = False
        rooms = list(self._rooms.values())
        self._rooms.clear()
        await asyncio.gather(*(room.close() for room in rooms))
        await self._tasks.wait(5.0)
        await self.postman.close()
