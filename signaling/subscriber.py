"""Subscriber: what a room needs from a viewer's subscribe connection.

The connection lives on this worker (a `sfu.webrtc_transport.WebRtcTransport`)
or, in a spread room, on another one (`spread.home.RemoteSubscriber`, which
forwards each call over the link). The room drives both the same way: consume
the producers the viewer may see, offer, take the answer, close.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol

from sfu.layer_report import ReceiveReport
from sfu.producer import Producer
from sfu.types import TransportId


class SubscribedConsumer(Protocol):
    """One producer forwarded to one subscriber."""

    @property
    def closed(self) -> bool: ...

    def close(self) -> None: ...

    def set_view(self, *, visible: bool, height: int) -> None:
        """How the viewer shows it (sfu.consumer.Consumer.set_view)."""
        ...


class Subscriber(Protocol):
    @property
    def id(self) -> TransportId:
        """The id the media plane's events about this connection carry."""
        ...

    @property
    def closed(self) -> bool: ...

    @property
    def offer_pending(self) -> bool:
        """An offer went out and its answer has not been applied yet."""
        ...

    def consume(self, producer: Producer) -> SubscribedConsumer:
        """Forward `producer`; it flows once an offer carrying it is answered."""
        ...

    def create_offer(self) -> str | None:
        """An offer describing every consumer, for the viewer's client; None when the
        worker holding the connection makes it, and it arrives later as a
        `spread.home.RemoteOffer` event."""
        ...

    async def apply_answer(self, sdp: str) -> None:
        """Complete the pending offer. Raises NegotiationError, and nothing changes,
        for an answer that cannot be applied."""
        ...

    def receive_report(self) -> ReceiveReport | Awaitable[ReceiveReport]:
        """What the connection forwards now and why no more (sfu.layer_report): at once,
        or, from another worker holding it, to be awaited (raising spread.home.LinkError
        when that worker does not answer)."""
        ...

    def close(self) -> None:
        """Close the connection and its consumers; idempotent."""
        ...
