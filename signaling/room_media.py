"""Media consequences of the stage, enforced at the SFU.

Grants are derived from the stage state, never stored: mic and camera while
on stage, content (screen) when the role or a permission allows it. A producer
whose source is not granted is closed; a producer whose device is off, muted or
locked is paused at the SFU, so nothing reaches viewers whatever the client does.
"""

from __future__ import annotations

from collections.abc import Iterable

from sfu.producer import Producer
from sfu.types import MediaKind, ProducerId

from . import permissions as may
from . import protocol as wire
from .members import Member
from .stage.model import Person

_STAGE_SOURCES = frozenset({wire.Source.MICROPHONE, wire.Source.CAMERA})
_CONTENT_SOURCES = frozenset({wire.Source.SCREEN, wire.Source.SCREEN_AUDIO})


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


def live(person: Person, source: wire.Source) -> bool:
    """Whether a granted source may flow now (devices can be off, muted or locked)."""
    if source is wire.Source.MICROPHONE:
        return person.mic.live
    if source is wire.Source.CAMERA:
        return person.camera.live
    return True


def enforce(member: Member, person: Person) -> list[ProducerId]:
    """Close what is no longer granted, pause what is off; returns the producers closed
    (every subscriber must then stop receiving them)."""
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
        elif live(person, source):
            if producer.paused:
                producer.resume()
        elif not producer.paused:
            producer.pause()
    return closed


def subscribe(member: Member, live: Iterable[tuple[Member, Producer]]) -> bool:
    """Bring one member's consumers in line with the room's `live` producers (in
    publishing order, so the offer lists tracks as they were added): consume every
    other member's, drop the rest. True if its subscribe connection needs an offer.
    Costs the number of live producers: used when this member's connection is new."""
    transport = member.recv_transport
    if transport is None or transport.closed:
        return False
    wanted: dict[ProducerId, Producer] = {
        producer.id: producer
        for owner, producer in live
        if owner is not member and producer.id not in member.refused
    }
    for producer_id in [p for p in member.consumers if p not in wanted]:
        member.consumers.pop(producer_id).close()
        member.needs_offer = True
    for producer_id, producer in wanted.items():
        if producer_id not in member.consumers:
            member.consumers[producer_id] = transport.consume(producer)
            member.needs_offer = True
    return member.needs_offer


def add_consumers(owner: Member, producers: Iterable[Producer],
                  members: Iterable[Member]) -> list[Member]:  # fmt: skip
    """New producers reach every other member; returns those now needing an offer."""
    added = list(producers)
    renegotiate = []
    for member in members:
        transport = member.recv_transport
        if member is owner or transport is None or transport.closed:
            continue
        for producer in added:
            if producer.id not in member.consumers and producer.id not in member.refused:
                member.consumers[producer.id] = transport.consume(producer)
                member.needs_offer = True
        if member.needs_offer:
            renegotiate.append(member)
    return renegotiate


def remove_consumers(producer_ids: Iterable[ProducerId],
                     members: Iterable[Member]) -> list[Member]:  # fmt: skip
    """Producers that ended leave every member; returns those now needing an offer."""
    gone = list(producer_ids)
    renegotiate = []
    for member in members:
        for producer_id in gone:
            member.refused.discard(producer_id)
            consumer = member.consumers.pop(producer_id, None)
            if consumer is not None:
                consumer.close()
                member.needs_offer = True
        if member.needs_offer:
            renegotiate.append(member)
    return renegotiate
