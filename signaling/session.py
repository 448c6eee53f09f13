"""Session: one per client connection. Decodes frames, dispatches them to the
room, and owns the bounded outbox the room writes to.

This is the one place where exceptions become wire errors; clients never see
a traceback. The transport (WebSocket) is behind the small `Connection`
protocol so this module stays free of the web framework.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Hashable
from typing import Protocol

from sfu.clock import Clock
from sfu.errors import InvalidStateError, NegotiationError

from . import protocol as wire
from .auth import TokenError, verify_token
from .command_table import stage_command
from .media_stats import PendingStats
from .outbox import Outbox
from .registry import RoomRegistry
from .room import Room
from .room_commands import (
    ApplySubscribeAnswer,
    ConnectionLost,
    GetMediaStats,
    JoinRoom,
    LeaveRoom,
    PostChat,
    PublishOffer,
    RateLimited,
    ResumeSession,
    RoomClosed,
    RoomError,
    RunStageCommand,
    ViewTracks,
)
from .settings import Settings
from .stage.model import ParticipantId
from .turn_credentials import ice_servers

logger = logging.getLogger(__name__)

OUTBOX_LIMIT = 256
COALESCE_WINDOW = 0.1  # seconds: at most ~10 updates a second per subject per recipient
ROOM_CLOSED_RETRIES = 3
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN_LATER = 1013


class Connection(Protocol):
    async def send_text(self, data: str) -> None: ...
    async def close(self, code: int, message: str) -> None: ...


class Session:
    def __init__(
        self,
        *,
        connection: Connection,
        registry: RoomRegistry,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self._connection = connection
        self._registry = registry
        self._settings = settings
        self._clock = clock
        self._outbox = Outbox(limit=OUTBOX_LIMIT, window=COALESCE_WINDOW, now=clock.now)
        self._room: Room | None = None
        self._participant_id: ParticipantId | None = None
        self._joining = False
        self._logged_bad_input = False
        self._stats = registry.stats
        self.closed = False
        self.close_code = CLOSE_NORMAL
        self.close_message = ""

    @property
    def participant_id(self) -> ParticipantId | None:
        return self._participant_id

    # -- outbound -----------------------------------------------------------------
    def deliver(self, message: wire.ServerMessage, frame: str | None = None) -> None:
        """Queue a message (`frame`: its encoding, when a broadcast made it once for
        all); a client that cannot keep up is disconnected, not buffered. State updates
        coalesce per recipient (signaling/outbox.py), so only the client's own
        slowness, never another's flood, fills its backlog."""
        if self.closed:
            return
        kind = _message_type(message)
        self._stats.messages_sent[kind] += 1
        coalesced = self._outbox.coalesced
        if frame is None:
            frame = wire.encode(message)
        queued = self._outbox.put(frame, _coalescing_key(message))
        if self._outbox.coalesced != coalesced:
            self._stats.coalesced[kind] += self._outbox.coalesced - coalesced
        if not queued:
            logger.warning("participant=%s - outbox full, disconnecting", self._participant_id,
                           extra=self._log_ids())  # fmt: skip
            # What was queued is moot: the close goes out at once.
            self.disconnect("too slow to receive messages", code=CLOSE_TRY_AGAIN_LATER,
                            discard=True)  # fmt: skip

    def disconnect(self, message: str, *, code: int = CLOSE_POLICY, discard: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_code = code
        self.close_message = message
        self._outbox.finish(discard=discard)

    async def run_writer(self) -> None:
        """Send queued frames until disconnect(); then close the connection."""
        while True:
            frame = await self._outbox.get()
            if frame is None:
                break
            await self._connection.send_text(frame)
        await self._connection.close(self.close_code, self.close_message)

    # -- inbound ------------------------------------------------------------------
    async def handle_frame(self, frame: str | bytes) -> None:
        request_id: str | None = None
        kind: str | None = None
        try:
            wire.check_frame_size(frame, self._settings.server.max_message_bytes)
            message = wire.decode_client(frame)
            request_id = message.id
            kind = _message_type(message)
            self._stats.messages_received[kind] += 1
            if self._participant_id is None:
                answer = wire.answer_unjoined(message)
                if answer is not None:
                    self._answer(kind, answer)
                    return
            reply = await self._dispatch(message)
            if reply is not None:
                self.deliver(reply)
        except Exception as exc:
            error = _error_reply(exc, request_id, log=self._log_once(exc))
            self._stats.errors[error.code.value] += 1
            if kind is not None and error.code is not wire.ErrorCode.INTERNAL:
                self._stats.rejected[(kind, error.code.value)] += 1
            self.deliver(error)

    def _answer(self, kind: str, answer: wire.Answer) -> None:
        for reply in answer.replies:
            if isinstance(reply, wire.Error):
                self._stats.errors[reply.code.value] += 1
                self._stats.rejected[(kind, reply.code.value)] += 1
            self.deliver(reply)
        if answer.close is not None:
            code, reason = answer.close
            self.disconnect(reason, code=code)

    def _log_once(self, exc: Exception) -> bool:
        """Whether to log `exc`: the first bad frame or internal error of a connection
        is logged, later ones only counted, so a client cannot flood the log."""
        if not isinstance(exc, wire.ProtocolError) and _is_expected(exc):
            return False
        first = not self._logged_bad_input
        self._logged_bad_input = True
        return first

    async def _dispatch(self, message: wire.ClientMessage) -> wire.ServerMessage | None:
        match message:
            case wire.Ping(id=request_id):
                return wire.Pong(id=request_id)
            case wire.Join():
                return await self._join(message)
            case wire.Resume():
                return await self._resume(message)
            case wire.Publish(sdp=sdp, sources=sources):
                room, participant_id = self._joined()
                answer = await room.call(
                    PublishOffer(participant_id=participant_id, sdp=sdp, sources=sources)
                )
                return wire.PublishAnswer(id=message.id, sdp=answer)
            case wire.SubscribeAnswer(sdp=sdp):
                room, participant_id = self._joined()
                await room.call(ApplySubscribeAnswer(participant_id=participant_id, sdp=sdp))
                return wire.Ack(id=message.id)
            case wire.ViewTracks(tracks=tracks):
                room, participant_id = self._joined()
                await room.call(ViewTracks(participant_id=participant_id, tracks=tuple(tracks)))
                return wire.Ack(id=message.id)
            case wire.GetMediaStats():
                room, participant_id = self._joined()
                pending: PendingStats = await room.call(
                    GetMediaStats(participant_id=participant_id)
                )
                return await pending.reply(message.id)
            case wire.Chat(text=text):
                room, participant_id = self._joined()
                await room.call(PostChat(participant_id=participant_id, text=text))
                return wire.Ack(id=message.id)
            case wire.Leave():  # a joined connection's; before joining see answer_unjoined
                await self.leave()
                self.deliver(wire.Ack(id=message.id))
                self.deliver(wire.Bye(reason="left"))
                self.disconnect("left", code=CLOSE_NORMAL)
                return None
            case _:
                room, participant_id = self._joined()
                await room.call(
                    RunStageCommand(
                        participant_id=participant_id,
                        request_id=message.id,
                        command=stage_command(message),
                    )
                )
                return wire.Ack(id=message.id)

    async def _join(self, message: wire.Join) -> wire.Joined:
        self._check_can_join()
        auth = self._settings.auth
        grants = verify_token(
            auth.secret,
            message.token,
            room=message.room,
            now=self._clock.wall(),
            leeway=auth.leeway,
        )
        return await self._enter(
            grants.room,
            lambda room: JoinRoom(
                grants=grants,
                entry=message.entry,
                deliver=self.deliver,
                disconnect=self.disconnect,
                viewer_only=message.viewer_only,
                mic=message.mic,
                camera=message.camera,
            ),
            message.id,
        )

    async def _resume(self, message: wire.Resume) -> wire.Joined:
        self._check_can_join()
        if message.room not in self._registry.rooms:
            raise RoomError(wire.ErrorCode.RESUME_FAILED, "unknown or expired resume token")
        return await self._enter(
            message.room,
            lambda room: ResumeSession(
                resume_token=message.resume_token,
                deliver=self.deliver,
                disconnect=self.disconnect,
            ),
            message.id,
        )

    def _check_can_join(self) -> None:
        if self._participant_id is not None or self._joining:
            raise RoomError(wire.ErrorCode.ALREADY_JOINED, "this connection already joined a room")
        if not self._registry.accepting:
            raise RoomError(wire.ErrorCode.SHUTTING_DOWN, "the server is shutting down")

    async def _enter(
        self, name: str, command: Callable[[Room], JoinRoom | ResumeSession], request_id: str | None
    ) -> wire.Joined:
        self._joining = True
        started = self._clock.now()
        try:
            for attempt in range(1, ROOM_CLOSED_RETRIES + 1):
                room = self._registry.get_or_create(name)
                entering = command(room)
                try:
                    joined: wire.Joined = await room.call(entering)
                    break
                except (RoomClosed, InvalidStateError) as exc:
                    # Its last member left while we queued (the registry has already let
                    # go of it, so the next get_or_create makes a fresh room), or the
                    # server is closing rooms under us.
                    if not (isinstance(exc, RoomClosed) or room.closed):
                        raise
                    if not self._registry.accepting:
                        raise RoomError(wire.ErrorCode.SHUTTING_DOWN,
                                        "the server is shutting down") from None  # fmt: skip
                    if isinstance(entering, ResumeSession):
                        raise RoomError(wire.ErrorCode.RESUME_FAILED,
                                        "unknown or expired resume token") from None  # fmt: skip
                    if attempt == ROOM_CLOSED_RETRIES:
                        raise RoomError(wire.ErrorCode.SHUTTING_DOWN,
                                        "the room keeps closing; try again") from None  # fmt: skip
        finally:
            self._joining = False
        kind = "resume" if isinstance(entering, ResumeSession) else "join"
        self._stats.joined(kind, self._clock.now() - started)
        self._room = room
        self._participant_id = ParticipantId(joined.participant_id)
        joined.id = request_id
        # Fresh TURN credentials on every join and resume: a resume renews them.
        joined.ice_servers = ice_servers(
            self._settings.turn, joined.you.identity, now=self._clock.wall()
        )
        return joined

    def _log_ids(self) -> dict[str, str | None]:
        return {
            "room": self._room.name if self._room is not None else None,
            "participant": self._participant_id,
        }

    def _joined(self) -> tuple[Room, ParticipantId]:
        if self._room is None or self._participant_id is None:
            raise RoomError(wire.ErrorCode.NOT_JOINED, wire.NOT_JOINED_MESSAGE)
        return self._room, self._participant_id

    async def leave(self) -> None:
        """Leave the room for good (idempotent)."""
        room, participant_id = self._room, self._participant_id
        self._room = self._participant_id = None
        if room is not None and participant_id is not None and not room.closed:
            with contextlib.suppress(RoomError):
                await room.call(LeaveRoom(participant_id=participant_id))

    async def connection_closed(self) -> None:
        """The connection ended without `leave`: the room keeps the seat for a grace period."""
        room, participant_id = self._room, self._participant_id
        self._room = self._participant_id = None
        if room is not None and participant_id is not None and not room.closed:
            with contextlib.suppress(RoomError):
                await room.call(ConnectionLost(participant_id=participant_id, deliver=self.deliver))


def _coalescing_key(message: wire.ServerMessage) -> Hashable | None:
    """The state a message describes, when a later message about it replaces it."""
    match message:
        case wire.ParticipantUpdated(participant=participant):
            return ("participant_updated", participant.participant_id)
        case wire.Speaking(participant_id=participant_id):
            return ("speaking", participant_id)
        case wire.Poll(poll=poll):
            return ("poll", poll.poll_id)
        case wire.Queues() | wire.CountsChanged() | wire.ActiveSpeaker() | wire.PolicyChanged():
            return type(message)
        case _:
            return None


def _message_type(message: wire.ClientMessage | wire.ServerMessage) -> str:
    return str(type(message).__struct_config__.tag)


def _is_expected(exc: Exception) -> bool:
    """A refusal the protocol defines (not a defect of ours)."""
    return isinstance(exc, (RoomError, TokenError, NegotiationError, InvalidStateError))


def _error_reply(exc: Exception, request_id: str | None, *, log: bool = True) -> wire.Error:
    """Map any exception to a wire error, in exactly one place. `log` says whether a bad
    frame or an internal error is worth a log line (see Session._log_once)."""
    code: wire.ErrorCode
    match exc:
        case wire.ProtocolError():
            code, message = exc.code, exc.message
            request_id = request_id or exc.request_id
            if log:
                logger.info("bad frame (%s: %s); further ones on this connection are not logged",
                            code, message)  # fmt: skip
        case RateLimited():
            return wire.Error(id=request_id, code=exc.code, message=exc.message,
                              retry_after=math.ceil(exc.retry_after * 1000) / 1000)  # fmt: skip
        case RoomError():
            code, message = exc.code, exc.message
        case TokenError():
            code, message = wire.ErrorCode(exc.code.value), exc.message
        case NegotiationError():
            code, message = wire.ErrorCode.INVALID_SDP, str(exc)
        case InvalidStateError():
            code, message = wire.ErrorCode.CONFLICT, str(exc)
        case _:
            if log:
                logger.exception("internal error handling a request")
            else:
                logger.debug("internal error handling a request: %r", exc)
            code, message = wire.ErrorCode.INTERNAL, "internal server error"
    return wire.Error(id=request_id, code=code, message=message)
