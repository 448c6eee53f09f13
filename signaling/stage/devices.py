"""Mic and camera states on a person: choosing, turning off, forcing off and locking.

Kept apart from machine.py because the device rules (a lock outlives the stage, a
soft mute never unlocks) are one concern the stage transitions only call into.
"""

from __future__ import annotations

from dataclasses import replace

from . import events as ev
from .draft import Draft, Refusal, require
from .model import Device, DeviceState, Person


def turned_off(state: DeviceState) -> DeviceState:
    return DeviceState.LOCKED if state is DeviceState.LOCKED else DeviceState.OFF


def chosen(current: DeviceState, on: bool) -> DeviceState:
    if current is DeviceState.LOCKED:
        return DeviceState.LOCKED  # a lock outlives leaving and rejoining the stage
    return DeviceState.ON if on else DeviceState.OFF


def device_state(person: Person, device: Device) -> DeviceState:
    return person.mic if device is Device.MIC else person.camera


def with_device(person: Person, device: Device, state: DeviceState) -> Person:
    return replace(person, mic=state) if device is Device.MIC else replace(person, camera=state)


def set_device(d: Draft, person: Person, device: Device, on: bool) -> None:
    require(person.on_stage, Refusal.CONFLICT, "join the stage to use your mic or camera")
    current = device_state(person, device)
    if on:
        require(current is not DeviceState.LOCKED, Refusal.FORBIDDEN,
                f"your {device} is locked by a moderator")  # fmt: skip
        new = DeviceState.ON
    else:
        new = turned_off(current)
    if new is not current:
        d.put(with_device(person, device, new))


def force_off(d: Draft, actor: Person, person: Person, device: Device, lock: bool) -> None:
    current = device_state(person, device)
    if lock:
        new = DeviceState.LOCKED
    elif current is DeviceState.ON:
        new = DeviceState.MUTED
    else:
        new = current  # already off; a soft mute never unlocks
    if new is not current:
        d.put(with_device(person, device, new))
        d.emit(ev.DeviceForced(person.participant_id, device, new, actor.participant_id))
