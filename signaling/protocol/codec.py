"""JSON codec for the protocol: strict decoding of client frames, one encoder."""

from __future__ import annotations

import typing

import msgspec

from .client import ClientMessage
from .errors import ErrorCode, ProtocolError
from .server import ServerMessage

PROTOCOL_VERSION = 2

CLIENT_TYPES = frozenset(member.__struct_config__.tag for member in typing.get_args(ClientMessage))


class _Envelope(msgspec.Struct):
    type: str = ""
    id: object = None


_envelope = msgspec.json.Decoder(_Envelope)
_client = msgspec.json.Decoder(ClientMessage)
_encoder = msgspec.json.Encoder()


def decode_client(frame: str | bytes) -> ClientMessage:
    """Parse one client frame or raise ProtocolError with a precise message."""
    try:
        envelope = _envelope.decode(frame)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, f"not a JSON object: {exc}") from None
    request_id = envelope.id if isinstance(envelope.id, str) and len(envelope.id) <= 64 else None
    if envelope.type not in CLIENT_TYPES:
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE, f"unknown message type {envelope.type[:40]!r}", request_id
        )
    try:
        message: ClientMessage = _client.decode(frame)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, str(exc), request_id) from None
    return message


def encode(message: ServerMessage) -> str:
    return _encoder.encode(message).decode()
