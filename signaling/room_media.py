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


def enforce(member: Member, person: Person) -> bool:
    """Close what is no longer granted, pause what is off; True if producers closed."""
    allowed = grants(person)
    closed = False
    for producer_id, source in list(member.sources.items()):
        producer = member.producers.get(producer_id)
        if producer is None or producer.closed:
            continue
        if source not in allowed:
            # Forgotten before it closes: the stage change that caused this is
            # announced once, with the tracks already gone.
            del member.producers[producer_id], member.sources[producer_id]
            producer.close()
            closed = True
        elif live(person, source):
            if producer.paused:
                producer.resume()
        elif not producer.paused:
            producer.pause()
    return closed


def sync_subscriptions(members: Iterable[Member]) -> list[Member]:
    """Every connected member consumes every other member's producers; returns
    the members whose subscribe connection needs a new offer."""
    everyone = list(members)
    available: dict[ProducerId, tuple[Member, Producer]] = {
        producer_id: (owner, producer)
        for owner in everyone
        for producer_id, producer in owner.producers.items()
        if not producer.closed
    }
    renegotiate = []
    for member in everyone:
        transport = member.recv_transport
        if transport is None or transport.closed:
            continue
        wanted = {
            producer_id
            for producer_id, (owner, _) in available.items()
            if owner is not member and producer_id not in member.refused
        }
        changed = False
        for producer_id in [p for p in member.consumers if p not in wanted]:
            member.consumers.pop(producer_id).close()
            changed = True
        # In publishing order (not a set's): the offer lists tracks in the order they
        # were added, the same on every run.
        for producer_id in [p for p in available if p in wanted and p not in member.consumers]:
            member.consumers[producer_id] = transport.consume(available[producer_id][1])
            changed = True
        if changed:
            member.needs_offer = True
        if member.needs_offer:
            renegotiate.append(member)
    return renegotiate
