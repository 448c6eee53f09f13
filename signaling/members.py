"""Member: one participant's connection and media in a room (their stage state
lives in the stage machine's `Person`)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from sfu.producer import Producer
from sfu.types import ProducerId
from sfu.webrtc_transport import WebRtcTransport

from . import protocol as wire
from .postman import Postman
from .stage.model import ParticipantId
from .subscriber import SubscribedConsumer, Subscriber

# The message, and its frame when already encoded (one encoding for a whole broadcast).
Deliver = Callable[[wire.ServerMessage, str | None], None]


class Disconnect(Protocol):
    """Close the client's connection after what is queued for it, with a WebSocket
    close code (a policy close, 1008, unless told otherwise)."""

    def __call__(self, message: str, *, code: int = ...) -> None: ...


CLOSE_NORMAL = 1000  # the session ended as it should: `leave`, or the room ended
CLOSE_POLICY = 1008

REPLY_MEMORY = 64  # request ids remembered per participant, so retries apply once


@dataclass(eq=False, kw_only=True)
class Member:
    participant_id: ParticipantId
    identity: str
    resume_token: str
    deliver: Deliver | None  # None while disconnected (in the reconnect grace period)
    disconnect: Disconnect | None
    postman: Postman  # the worker's: every message to anyone goes out in order
    recv_transport: Subscriber | None = None
    send_transport: WebRtcTransport | None = None
    producers: dict[ProducerId, Producer] = field(default_factory=dict)
    sources: dict[ProducerId, wire.Source] = field(default_factory=dict)
    consumers: dict[ProducerId, SubscribedConsumer] = field(default_factory=dict)
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
            self.postman.post(self.deliver, message, frame)

    def dismiss(
        self,
        reason: wire.ByeReason,
        why: str,
        *,
        code: int = CLOSE_POLICY,
        bye: tuple[wire.Bye, str] | None = None,
    ) -> None:
        """Send `bye` and close the connection with `code`, after whatever is already on
        its way to it; the member is disconnected from now on (a resume may reconnect
        it). `bye`: the message and its frame, when one is sent to many."""
        deliver, disconnect = self.deliver, self.disconnect
        self.deliver = self.disconnect = None
        if deliver is not None:
            message, frame = bye if bye is not None else (wire.Bye(reason=reason), None)
            self.postman.post(deliver, message, frame)
        if disconnect is not None:
            self.postman.post(partial(disconnect, why, code=code))

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


def dismiss_all(bye: wire.Bye, why: str, members: Iterable[Member], *, code: int) -> None:
    """Say goodbye to many with one message (encoded once) and close them all."""
    encoded = (bye, wire.encode(bye))
    for member in members:
        member.dismiss(bye.reason, why, code=code, bye=encoded)


def broadcast(message: wire.ServerMessage, members: Iterable[Member]) -> None:
    """Send one message to many: encoded once (lazily: not at all for nobody), and the
    same frame posted to every connected recipient (spread over loop turns by the
    postman when they are many)."""
    frame: str | None = None
    for member in members:
        if member.deliver is not None:
            if frame is None:
                frame = wire.encode(message)
            member.postman.post(member.deliver, message, frame)
