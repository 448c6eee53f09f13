"""Messages between workers about spread rooms (never seen by clients).

The home worker (which holds the room) drives; an edge worker (which holds
some of its viewers' media) executes and reports. Messages travel in order on
one connection per pair of workers; a request carries an `id` and gets one
`Reply` with the same id. `room` is the home's key for the room, unique
across workers.
"""

from __future__ import annotations

import msgspec

from sfu.layer_report import ReceiveReport


class _Message(msgspec.Struct, kw_only=True, tag_field="type"):
    room: str


# -- home -> edge ---------------------------------------------------------------------
class OpenRoom(_Message, tag="open_room"):
    """Request: create the room's router and pipe here, connected to the home's pipe."""

    id: int
    pipe_host: str
    pipe_port: int


class CloseRoom(_Message, tag="close_room"):
    pass


class Produce(_Message, tag="produce"):
    """A stream the home now pipes here, one SSRC per encoding (lowest first); mirrored
    with the same producer id."""

    producer_id: str
    kind: str
    codec: str
    clock_rate: int
    ssrcs: list[int]
    stream_id: str
    track_id: str
    channels: int | None = None
    parameters: list[tuple[str, str]] = []
    priority: int = 1  # the home producer's, for viewers' downlinks


class CloseProducer(_Message, tag="close_producer"):
    producer_id: str


class RankProducer(_Message, tag="rank_producer"):
    """The home changed a producer's priority (its owner became the active speaker)."""

    producer_id: str
    priority: int


class OpenSubscriber(_Message, tag="open_subscriber"):
    """Request: a WebRTC transport for one viewer's subscribe connection."""

    id: int
    subscriber: str


class CloseSubscriber(_Message, tag="close_subscriber"):
    subscriber: str


class Consume(_Message, tag="consume"):
    subscriber: str
    producer_id: str


class CloseConsumer(_Message, tag="close_consumer"):
    subscriber: str
    producer_id: str


class ViewConsumer(_Message, tag="view_consumer"):
    subscriber: str
    producer_id: str
    visible: bool
    height: int


class MakeOffer(_Message, tag="make_offer"):
    """Request: the subscriber's next offer (Reply.sdp)."""

    id: int
    subscriber: str


class ApplyAnswer(_Message, tag="apply_answer"):
    """Request: complete the last offer; Reply.error says why an answer was refused."""

    id: int
    subscriber: str
    sdp: str


class ReportSubscriber(_Message, tag="report_subscriber"):
    """Request: what the subscriber's connection forwards now (Reply.report)."""

    id: int
    subscriber: str


ToEdge = (
    OpenRoom
    | CloseRoom
    | Produce
    | CloseProducer
    | RankProducer
    | OpenSubscriber
    | CloseSubscriber
    | Consume
    | CloseConsumer
    | ViewConsumer
    | MakeOffer
    | ApplyAnswer
    | ReportSubscriber
)


# -- edge -> home ---------------------------------------------------------------------
class Reply(_Message, tag="reply"):
    id: int
    error: str | None = None
    pipe_host: str = ""
    pipe_port: int = 0
    sdp: str = ""
    report: ReceiveReport | None = None


class SubscriberClosed(_Message, tag="subscriber_closed"):
    subscriber: str
    reason: str


class ConsumerClosed(_Message, tag="consumer_closed"):
    subscriber: str
    producer_id: str
    reason: str


ToHome = Reply | SubscriberClosed | ConsumerClosed

_encoder = msgspec.json.Encoder()
to_edge = msgspec.json.Decoder(ToEdge)
to_home = msgspec.json.Decoder(ToHome)


def encode(message: ToEdge | ToHome) -> bytes:
    return _encoder.encode(message)
