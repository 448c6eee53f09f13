"""Publishing: what each member sends, held to what the stage grants, at the SFU.

Grants are derived from the stage state, never stored: mic and camera while
on stage, content (screen) when the role or a permission allows it. A publish
offer is answered with only granted sources; a producer whose source is no
longer granted is closed; one whose device is off, muted or locked is paused at
the SFU, so nothing reaches viewers whatever the client does.

The media plane's events name producers and transports by id only, so this is
also where their owners are known: which member a producer, or a send
connection, belongs to.
"""

from __future__ import annotations

from sfu.errors import NegotiationError
from sfu.observers.audio_level import AudioLevelObserver
from sfu.producer import Producer
from sfu.router import Router
from sfu.types import MediaKind, Mid, ProducerId, TransportId

from . import permissions as may
from . import protocol as wire
from .members import Member
from .room_commands import PublishOffer, RoomError
from .stage.model import ParticipantId, Person

_STAGE_SOURCES = frozenset({wire.Source.MICROPHONE, wire.Source.CAMERA})
_CONTENT_SOURCES = frozenset({wire.Source.SCREEN, wire.Source.SCREEN_AUDIO})


# A viewer whose downlink is short keeps shared content, then the active speaker's
# camera, before the other cameras (sfu/downlink.py).
SHARED_CONTENT_PRIORITY = 3
SPEAKER_PRIORITY = 2
CAMERA_PRIORITY = 1


def default_source(kind: MediaKind) -> wire.Source:
    """What a track is when the client did not say: its microphone or its camera."""
    return wire.Source.MICROPHONE if kind is MediaKind.AUDIO else wire.Source.CAMERA


def kind_of(source: wire.Source) -> MediaKind:
    audio = source in (wire.Source.MICROPHONE, wire.Source.SCREEN_AUDIO)
    return MediaKind.AUDIO if audio else MediaKind.VIDEO


def grants(person: Person) -> frozenset[wire.Source]:
    allowed: set[wire.Source] = set()
    if person.on_stage:
        allowed |= _STAGE_SOURCES
    if may.may_present(person):
        allowed |= _CONTENT_SOURCES
    return frozenset(allowed)


def flows(person: Person, source: wire.Source) -> bool:
    """Whether a granted source may flow now (devices can be off, muted or locked)."""
    if source is wire.Source.MICROPHONE:
        return person.mic.live
    if source is wire.Source.CAMERA:
        return person.camera.live
    return True


class Publishing:
    """The room's producers: admitted by grant, enforced after each stage change,
    and each one's owner. Used only from the room's task (no locks)."""

    def __init__(self, *, router: Router, levels: AudioLevelObserver) -> None:
        self._router = router
        self._levels = levels  # microphones feed the speaking detection
        self._owners: dict[ProducerId, Member] = {}  # in publishing order
        self._senders: dict[TransportId, Member] = {}  # send connection -> its member

    async def publish(
        self, member: Member, person: Person, command: PublishOffer
    ) -> tuple[str, list[Producer], list[ProducerId]]:
        """Answer a publish offer; returns the SDP answer and the producers it added and
        removed. Raises RoomError, and nothing changes, for a source the stage does not
        grant."""
        allowed = grants(person)
        if not allowed:
            raise RoomError(
                wire.ErrorCode.FORBIDDEN, "viewers cannot publish; join the stage first"
            )
        sources = dict(command.sources or {})

        def admit(mid: Mid, kind: MediaKind) -> None:
            source = sources.get(mid) or default_source(kind)
            if kind_of(source) is not kind:
                raise NegotiationError(f"m-section {mid}: {source} is not {kind}")
            if source not in allowed:
                raise RoomError(wire.ErrorCode.FORBIDDEN, f"you may not publish {source} now")

        if member.send_transport is None:
            transport = await self._router.create_webrtc_transport(stream_id=member.participant_id)
            member.send_transport = transport
            self._senders[transport.id] = member
        try:
            result = member.send_transport.apply_offer(command.sdp, admit=admit)
        except NegotiationError as exc:
            raise RoomError(wire.ErrorCode.INVALID_SDP, str(exc)) from None
        for producer in result.added:
            source = sources.get(producer.parameters.mid) or default_source(producer.kind)
            member.producers[producer.id] = producer
            member.sources[producer.id] = source
            self._owners[producer.id] = member
            if source is wire.Source.MICROPHONE:
                self._levels.add_producer(producer)
            if source is wire.Source.SCREEN:
                producer.priority = SHARED_CONTENT_PRIORITY
        for producer_id in result.removed:
            member.producers.pop(producer_id, None)
            member.sources.pop(producer_id, None)
        self.enforce(member, person)  # e.g. muted at publish time: paused at once
        added = [p for p in result.added if not p.closed]
        return result.answer, added, list(result.removed)

    def enforce(self, member: Member, person: Person) -> list[ProducerId]:
        """Close what is no longer granted, pause what is off; returns the producers
        closed (every subscriber must then stop receiving them)."""
        allowed = grants(person)
        closed: list[ProducerId] = []
        for producer_id, source in list(member.sources.items()):
            producer = member.producers.get(producer_id)
            if producer is None or producer.closed:
                continue
            if source not in allowed:
                # Forgotten before it closes: the stage change that caused this is
                # announced once, with the tracks already gone.
                del member.producers[producer_id], member.sources[producer_id]
                producer.close()
                closed.append(producer_id)
            elif flows(person, source):
                if producer.paused:
                    producer.resume()
            elif not producer.paused:
                producer.pause()
        return closed

    def live(self) -> list[tuple[Member, Producer]]:
        """Every producer still flowing, with its owner, in publishing order."""
        live = []
        for producer_id, owner in self._owners.items():
            producer = owner.producers.get(producer_id)
            if producer is not None and not producer.closed:
                live.append((owner, producer))
        return live

    def publishers(self) -> set[ParticipantId]:
        return {owner.participant_id for owner, _ in self.live()}

    def owner(self, producer_id: ProducerId) -> Member | None:
        return self._owners.get(producer_id)

    def rank_cameras(self, speaker: Member | None) -> list[Producer]:
        """The active speaker's camera ranks above the others on short downlinks; the
        producers whose priority changed (the old speaker's, the new one's)."""
        changed = []
        for member in {*self._owners.values()}:
            wanted = SPEAKER_PRIORITY if member is speaker else CAMERA_PRIORITY
            for producer_id, source in member.sources.items():
                producer = member.producers.get(producer_id)
                camera = source is wire.Source.CAMERA and producer is not None
                if camera and producer is not None and producer.priority != wanted:
                    producer.priority = wanted
                    changed.append(producer)
        return changed

    def producer_closed(self, producer_id: ProducerId) -> Member | None:
        """The media plane closed a producer: its owner, if the member still had it
        (one `enforce` closed is already forgotten, and announced with its change)."""
        owner = self._owners.pop(producer_id, None)
        if owner is None or owner.producers.pop(producer_id, None) is None:
            return None
        owner.sources.pop(producer_id, None)
        return owner

    def transport_closed(self, transport_id: TransportId) -> Member | None:
        """Whose send connection closed, if it was one."""
        return self._senders.pop(transport_id, None)

    def forget(self, member: Member) -> None:
        """A member left: its producers are no longer anyone's."""
        for producer_id in [p for p, owner in self._owners.items() if owner is member]:
            del self._owners[producer_id]  # the stage's producers: a handful

    def clear(self) -> None:
        self._owners.clear()
        self._senders.clear()
