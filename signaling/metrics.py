"""Prometheus view of the control plane, built at scrape time.

Rooms and participants are counted from the rooms' state when Prometheus
scrapes; messages, errors, refusals and join latency come from the plain
counters sessions keep in `SignalingStats`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector

from . import protocol as wire
from .registry import RoomRegistry
from .roles import Role
from .stage.model import StageStatus
from .stats import JOIN_BUCKETS, Buckets, SignalingStats

__all__ = ["SignalingCollector", "TrafficCollector"]

_Family = CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily
_JOIN_KINDS = ("join", "resume")


class SignalingCollector(Collector):
    """Reads `registry` (rooms and sessions' counters); `connections` counts open sockets."""

    def __init__(self, registry: RoomRegistry, *, connections: Callable[[], int]) -> None:
        self._registry = registry
        self._connections = connections

    def collect(self) -> Iterator[_Family]:
        registry = self._registry
        yield from self._rooms(registry)
        yield from TrafficCollector(registry.stats).collect()

    def _rooms(self, registry: RoomRegistry) -> Iterator[_Family]:
        people = {(role, status): 0 for role in Role for status in StageStatus}
        disconnected = hands = 0
        rooms = [room for room in registry.rooms.values() if not room.closed]
        for room in rooms:
            for person in room.state.people.values():
                people[(person.role, person.status)] += 1
                hands += person.hand is not None
            disconnected += sum(1 for m in room.members.values() if not m.connected)

        yield GaugeMetricFamily("stage_sfu_rooms", "Open rooms.", value=len(rooms))
        participants = GaugeMetricFamily(
            "stage_sfu_participants",
            "Participants in rooms, by role and stage status (on_stage, viewer, requested, "
            "invited, queued).",
            labels=["role", "status"],
        )
        for (role, status), count in people.items():
            participants.add_metric([role.value, status.value], count)
        yield participants
        yield GaugeMetricFamily(
            "stage_sfu_participants_disconnected",
            "Participants whose connection dropped and who may still resume (reconnect grace).",
            value=disconnected,
        )
        yield GaugeMetricFamily("stage_sfu_raised_hands", "Raised hands.", value=hands)
        yield GaugeMetricFamily(
            "stage_sfu_connections", "Open signaling (WebSocket) connections.",
            value=self._connections(),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "stage_sfu_postman_queued",
            "Messages waiting for a later turn of the event loop (signaling/postman.py): a "
            "broadcast to a large room goes out at most 100 deliveries per turn.",
            value=len(registry.postman),
        )
        yield CounterMetricFamily(
            "stage_sfu_postman_deferred",
            "Deliveries that waited for a later turn of the event loop instead of going out "
            "at once (large broadcasts, spread so media is read in between).",
            value=registry.postman.deferred,
        )
        yield GaugeMetricFamily(
            "stage_sfu_accepting_joins",
            "1 while the server accepts joins, 0 once it is draining for shutdown.",
            value=1 if registry.accepting else 0,
        )



class TrafficCollector(Collector):
    """Messages, errors, refusals and join latency from one `SignalingStats` (a worker's
    sessions, or the front's answers to connections that have not joined)."""

    def __init__(self, stats: SignalingStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[_Family]:
        stats = self._stats
        messages = CounterMetricFamily(
            "stage_sfu_signaling_messages_total",
            "Signaling messages by direction (in: from clients, out: to clients) and type.",
            labels=["direction", "type"],
        )
        for direction, counts in (("in", stats.messages_received), ("out", stats.messages_sent)):
            for kind, count in sorted(counts.items()):
                messages.add_metric([direction, kind], count)
        yield messages

        errors = CounterMetricFamily(
            "stage_sfu_signaling_errors_total",
            "Error replies sent to clients, by wire error code (docs/protocol.md).",
            labels=["code"],
        )
        for code in wire.ErrorCode:
            errors.add_metric([code.value], stats.errors.get(code.value, 0))
        yield errors

        rejected = CounterMetricFamily(
            "stage_sfu_commands_rejected_total",
            "Well-formed client commands the server refused, by command and reason (the error "
            "code: forbidden, conflict, stage_full, rate_limited, ...).",
            labels=["command", "reason"],
        )
        for (command, reason), count in sorted(stats.rejected.items()):
            rejected.add_metric([command, reason], count)
        yield rejected

        coalesced = CounterMetricFamily(
            "stage_sfu_events_coalesced_total",
            "State updates (participant_updated, queues, poll results, speaking, counts, ...) "
            "replaced by a newer one for the same subject before reaching a client, by type.",
            labels=["type"],
        )
        for kind, count in sorted(stats.coalesced.items()):
            coalesced.add_metric([kind], count)
        yield coalesced

        shed = CounterMetricFamily(
            "stage_sfu_room_inbox_shed_total",
            "Work a room that had fallen behind (over its inbox limit) did not queue: "
            "commands refused with rate_limited, and speaking events dropped.",
            labels=["kind"],
        )
        for kind in ("command", "event"):
            shed.add_metric([kind], stats.inbox_shed.get(kind, 0))
        yield shed

        yield CounterMetricFamily(
            "stage_sfu_worker_link_overflows",
            "Links to another media worker closed because it stopped reading (its outbox "
            "of 8192 frames filled); its share of spread rooms fails as if it had died.",
            value=stats.link_overflows,
        )

        joins = HistogramMetricFamily(
            "stage_sfu_join_duration_seconds",
            "Time the server took to admit a join or resume (room entry and media transport).",
            labels=["kind"],
        )
        for kind in _JOIN_KINDS:
            buckets = stats.joins.get(kind) or Buckets(JOIN_BUCKETS)
            joins.add_metric([kind], buckets.cumulative(), sum_value=buckets.total)
        yield joins
