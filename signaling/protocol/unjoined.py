"""The protocol before `join`: what a connection that has not joined a room gets for
each message. One definition, used by a worker's session and by the front that relays
to the workers, so the answers are the same with one worker or many."""

from __future__ import annotations

from dataclasses import dataclass

from .client import ClientMessage, Join, Leave, Ping, Resume
from .errors import ErrorCode, ProtocolError
from .server import Ack, Bye, Error, Pong, ServerMessage

NOT_JOINED_MESSAGE = "join a room first"
CLOSE_NORMAL = 1000


@dataclass(frozen=True, slots=True)
class Answer:
    """Replies, in order; then, when `close` is set, the connection closes with it."""

    replies: tuple[ServerMessage, ...]
    close: tuple[int, str] | None = None


def answer_unjoined(message: ClientMessage) -> Answer | None:
    """The answer to `message` from a connection that has not joined; None for `join`
    and `resume`, which go to the room."""
    match message:
        case Join() | Resume():
            return None
        case Ping(id=request_id):
            return Answer((Pong(id=request_id),))
        case Leave(id=request_id):
            return Answer((Ack(id=request_id), Bye(reason="left")), (CLOSE_NORMAL, "left"))
        case _:
            return Answer((Error(id=message.id, code=ErrorCode.NOT_JOINED,
                                 message=NOT_JOINED_MESSAGE),))  # fmt: skip


def check_frame_size(frame: str | bytes, limit: int) -> None:
    """Raise `message_too_large` for a frame over `limit` bytes (UTF-8 for text)."""
    size = len(frame) if isinstance(frame, bytes) else len(frame.encode("utf-8", "replace"))
    if size > limit:
        raise ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, f"frames are limited to {limit} bytes")
