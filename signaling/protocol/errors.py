"""Wire error codes and the exception that carries one."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    BAD_MESSAGE = "bad_message"  # not JSON, or fields missing/of the wrong type
    UNKNOWN_TYPE = "unknown_type"
    MESSAGE_TOO_LARGE = "message_too_large"
    NOT_JOINED = "not_joined"
    ALREADY_JOINED = "already_joined"
    TOKEN_MISSING = "token_missing"
    TOKEN_INVALID = "token_invalid"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_WRONG_ROOM = "token_wrong_room"
    RESUME_FAILED = "resume_failed"  # unknown, used or expired resume token
    BANNED = "banned"  # removed from this room; no token lets them back in
    INVALID_SDP = "invalid_sdp"
    INVALID_ARGUMENT = "invalid_argument"
    FORBIDDEN = "forbidden"  # the role, label or room policy does not allow it
    CONFLICT = "conflict"  # the command does not fit the current state (or revision)
    NOT_FOUND = "not_found"
    STAGE_FULL = "stage_full"
    RATE_LIMITED = "rate_limited"
    SHUTTING_DOWN = "shutting_down"
    INTERNAL = "internal"


class ProtocolError(Exception):
    """A frame we cannot act on; carries the wire error code and the request id."""

    def __init__(self, code: ErrorCode, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id
