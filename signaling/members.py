"""Member: one participant's connection and media in a room (their stage state
lives in the stage machine's `Person`)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sfu.consumer import Consumer
from sfu.producer import Producer
from sfu.types import ProducerId
from sfu.webrtc_transport import WebRtcTransport

from . import protocol as wire
from .spread.home import RemoteConsumer, RemoteSubscriber
from .stage.model import ParticipantId

# A subscribe connection lives on this worker or, in a spread room, on another.
Subscriber = WebRtcTransport | RemoteSubscriber

# The message, and its frame when already encoded (one encoding for a whole broadcast).
Deliver = Callable[[wire.ServerMessage, str | None], None]
Disconnect = Callable[[str], None]

REPLY_MEMORY = 64  # request ids remembered per participant, so retries apply once


@dataclass(eq=False, kw_only=True)
class Member:
    participant_id: ParticipantId
    identity: str
    resume_token: str
    deliver: Deliver | None  # None while disconnected (in the reconnect grace period)
    disconnect: Disconnect | None
    recv_transport: Subscriber | None = None
    send_transport: WebRtcTransport | None = None
    producers: dict[ProducerId, Producer] = field(default_factory=dict)
    sources: dict[ProducerId, wire.Source] = field(default_factory=dict)
    consumers: dict[ProducerId, Consumer | RemoteConsumer] = field(default_factory=dict)
    refused: set[ProducerId] = field(default_factory=set)  # producers its client rejected
    needs_offer: bool = False
    speaking: bool = False
    full_view: bool = False  # receives every participant's changes, not just the stage's
    grace_until: float | None = None
    replies: OrderedDict[str, tuple[bool, Any]] = field(default_factory=OrderedDict)

    @property
    def connected(self) -> bool:
        return self.deliver is not None

    def send(self, message: wire.ServerMessage, frame: str | None = None) -> None:
        if self.deliver is not None:
            self.deliver(message, frame)

    def remember(self, request_id: str, ok: bool, outcome: Any) -> None:
        self.replies[request_id] = (ok, outcome)
        while len(self.replies) > REPLY_MEMORY:
            self.replies.popitem(last=False)

    def drop_media(self) -> None:
        """Close both transports (their producers and consumers close with them)."""
        for transport in (self.send_transport, self.recv_transport):
            if transport is not None:
                transport.close()
        self.send_transport = self.recv_transport = None
        self.producers.clear()
        self.sources.clear()
        self.consumers.clear()
        self.refused.clear()
        self.needs_offer = False
        self.speaking = False


def broadcast(message: wire.ServerMessage, members: Iterable[Member]) -> None:
    """Send one message to many: encoded once (lazily: not at all for nobody), and the
    same frame queued for every connected recipient."""
    frame: str | None = None
    for member in members:
        if member.deliver is not None:
            if frame is None:
                frame = wire.encode(message)
            member.deliver(message, frame)
