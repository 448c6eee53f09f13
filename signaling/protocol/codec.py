"""JSON codec for the protocol: strict decoding of client frames, one encoder."""

from __future__ import annotations

import json
import re
import typing

import msgspec

from .client import ClientMessage
from .errors import ErrorCode, ProtocolError
from .server import ServerMessage

PROTOCOL_VERSION = 2
MAX_REQUEST_ID = 64

CLIENT_TYPES = frozenset(member.__struct_config__.tag for member in typing.get_args(ClientMessage))


class _Envelope(msgspec.Struct):
    type: object = ""
    id: object = None


_envelope = msgspec.json.Decoder(_Envelope)
_client = msgspec.json.Decoder(ClientMessage)
_encoder = msgspec.json.Encoder()


def decode_client(frame: str | bytes) -> ClientMessage:
    """Parse one client frame or raise ProtocolError with a precise message.

    The request id is echoed in the error whenever the frame is an object with a
    usable `id`, whatever else is wrong with it (a non-string `type`, unknown fields,
    nesting too deep for the decoder).
    """
    try:
        envelope = _envelope.decode(frame)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"not a JSON object: {exc}") from None
    except RecursionError:
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE, "nested too deeply", _leading_request_id(frame)
        ) from None
    request_id = _usable_id(envelope.id)
    kind = envelope.type
    if not isinstance(kind, str):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "`type` must be a string", request_id)
    if kind not in CLIENT_TYPES:
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}", request_id
        )
    try:
        message: ClientMessage = _client.decode(frame)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, str(exc), request_id) from None
    except RecursionError:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "nested too deeply", request_id) from None
    return message


def encode(message: ServerMessage) -> str:
    return _encoder.encode(message).decode()


def _usable_id(value: object) -> str | None:
    return value if isinstance(value, str) and len(value) <= MAX_REQUEST_ID else None


# JSON's structural tokens; strings whole, so brackets inside them do not count.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}:,]')
_SCAN_DEPTH = 32  # give up once this deep: a top-level `id` after a deep nest is lost


def _leading_request_id(frame: str | bytes) -> str | None:
    """The top-level `id` of an object too deeply nested to decode, if it comes before
    the deep part. A bounded scan of the frame's structural tokens: no recursion."""
    data = frame.encode("utf-8", "replace") if isinstance(frame, str) else frame
    depth = 0
    previous: bytes = b""
    key: bytes | None = None
    for match in _TOKEN.finditer(data):
        token = match.group()
        if token in (b"{", b"["):
            depth += 1
            if depth > _SCAN_DEPTH:
                return None
        elif token in (b"}", b"]"):
            depth -= 1
        elif token == b":":
            key = previous if depth == 1 else None
        elif token.startswith(b'"') and key == b'"id"' and previous == b":":
            try:
                value = json.loads(token)
            except ValueError:
                return None
            return _usable_id(value)
        previous = token
    return None
