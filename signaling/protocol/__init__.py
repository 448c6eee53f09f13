"""The WebSocket protocol: typed messages, their JSON codec and the error codes.

Every frame is one JSON object with a "type". Requests may carry an "id"
(any string up to 64 characters) that the reply or error echoes, so clients
can match answers to requests. See docs/protocol.md for examples.
"""

from .client import *  # noqa: F403 - the message types are the module's API
from .client import ClientMessage, Entry, Source, StageRequest
from .codec import CLIENT_TYPES, PROTOCOL_VERSION, decode_client, encode
from .errors import ErrorCode, ProtocolError
from .server import *  # noqa: F403
from .server import ServerMessage
from .unjoined import NOT_JOINED_MESSAGE, Answer, answer_unjoined, check_frame_size

__all__ = [
    "CLIENT_TYPES",
    "NOT_JOINED_MESSAGE",
    "PROTOCOL_VERSION",
    "Answer",
    "ClientMessage",
    "Entry",
    "ErrorCode",
    "ProtocolError",
    "ServerMessage",
    "Source",
    "StageRequest",
    "answer_unjoined",
    "check_frame_size",
    "decode_client",
    "encode",
]
