"""`get_media_stats`: what a participant receives now, and why at that quality (the web
client's "stats for nerds"). Only the requester's own connection is described.

The room answers in its own turn what it holds: whose each received track is and what
its publisher sends (the producers are the room's). The viewer's side (the encoding each
consumer forwards, what holds it back, the downlink estimate) is the subscribe
connection's, read by the session after the room's turn: on this worker at once, from
another worker over the link, so that round trip never holds up the room. A track that
ended in between is left out.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import get_args

from sfu.layer_report import Limit, ReceiveReport
from sfu.producer import Producer
from sfu.types import MediaKind, ProducerId

from . import protocol as wire
from .room_commands import RoomError
from .spread.home import LinkError
from .stage.model import ParticipantId
from .subscriber import Subscriber

if set(get_args(wire.LimitedBy)) != {limit.value for limit in Limit}:
    raise TypeError("the wire's limited_by values must be sfu.layer_report.Limit's")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivedTrack:
    """A received track as the room knows it: whose it is and what its publisher sends."""

    track_id: str
    participant_id: ParticipantId
    kind: MediaKind
    encodings: list[wire.EncodingStats]


def received_track(producer: Producer, owner: ParticipantId) -> ReceivedTrack:
    active = set(producer.active_layers())
    video = producer.kind == MediaKind.VIDEO
    encodings = [
        wire.EncodingStats(
            rid=stream.rid,
            active=stream.layer in active,
            bitrate=stream.bitrate,
            frame_rate=round(stream.frame_rate, 1) if video else None,
            width=stream.width or None,
            height=stream.height or None,
            temporal_layers=len(stream.temporal_bitrates),
        )
        for stream in producer.streams
    ]
    return ReceivedTrack(track_id=producer.track_id, participant_id=owner, kind=producer.kind,
                         encodings=encodings)  # fmt: skip


class PendingStats:
    """The room's part of the answer, and the connection to ask for the rest (None: no
    subscribe connection right now, as while a resume sets up a new one)."""

    def __init__(
        self, tracks: Mapping[ProducerId, ReceivedTrack], subscriber: Subscriber | None
    ) -> None:
        self._tracks = tracks
        self._subscriber = subscriber

    async def reply(self, request_id: str | None) -> wire.MediaStats:
        """The `media_stats` reply. Raises RoomError when the worker holding the
        connection does not answer."""
        subscriber = self._subscriber
        if subscriber is None or subscriber.closed:
            return wire.MediaStats(id=request_id, downlink_bps=None, tracks=[])
        report = subscriber.receive_report()
        if inspect.isawaitable(report):
            try:
                report = await report
            except LinkError:
                raise RoomError(wire.ErrorCode.CONFLICT, "the media worker holding your "
                                "connection did not answer; try again") from None  # fmt: skip
        assert isinstance(report, ReceiveReport)
        return wire.MediaStats(
            id=request_id,
            downlink_bps=report.downlink_bps,
            tracks=list(_tracks(report, self._tracks)),
        )


def _tracks(
    report: ReceiveReport, known: Mapping[ProducerId, ReceivedTrack]
) -> Iterable[wire.TrackStats]:
    """Consumers whose track the room still knows (one that ended meanwhile is left out)."""
    for consumer in report.consumers:
        track = known.get(consumer.producer_id)
        if track is None:
            continue
        yield wire.TrackStats(
            track_id=track.track_id,
            participant_id=track.participant_id,
            kind=track.kind.value,
            layer=consumer.layer,
            target_layer=consumer.target_layer,
            temporal_layer=consumer.temporal_layer,
            limited_by=consumer.limit.value if consumer.limit is not None else None,
            layer_switches=consumer.layer_switches,
            encodings=track.encodings,
        )
