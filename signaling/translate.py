"""Wire stage requests -> stage machine commands (one table, no logic)."""

from __future__ import annotations

import uuid
from typing import assert_never

from . import protocol as wire
from .stage import commands as sc
from .stage.model import ParticipantId


def stage_command(message: wire.StageRequest) -> sc.Command:
    def target(value: str) -> ParticipantId:
        return ParticipantId(value)

    match message:
        case wire.JoinStage(mic=mic, camera=camera):
            return sc.JoinStage(mic_on=mic, camera_on=camera)
        case wire.LeaveStage():
            return sc.LeaveStage()
        case wire.RequestStage():
            return sc.RequestStage()
        case wire.CancelRequest():
            return sc.CancelRequest()
        case wire.AcceptInvitation(revision=revision, mic=mic, camera=camera):
            return sc.AcceptInvitation(revision=revision, mic_on=mic, camera_on=camera)
        case wire.DeclineInvitation(revision=revision):
            return sc.DeclineInvitation(revision=revision)
        case wire.SetDevice(device=device, on=on):
            return sc.SetDevice(device=device, on=on)
        case wire.RaiseHand():
            return sc.RaiseHand()
        case wire.LowerHand(target=who):
            return sc.LowerHand(target=None if who is None else target(who))
        case wire.Vote(poll_id=poll_id, option=option):
            return sc.Vote(poll_id=poll_id, option=option)
        case wire.ApproveRequest(target=who, revision=revision):
            return sc.ApproveRequest(target=target(who), revision=revision)
        case wire.DeclineRequest(target=who, revision=revision):
            return sc.DeclineRequest(target=target(who), revision=revision)
        case wire.Invite(target=who, revision=revision):
            return sc.Invite(target=target(who), revision=revision)
        case wire.RevokeInvitation(target=who, revision=revision):
            return sc.RevokeInvitation(target=target(who), revision=revision)
        case wire.RemoveFromStage(target=who, revision=revision):
            return sc.RemoveFromStage(target=target(who), revision=revision)
        case wire.Mute(target=who, device=device, lock=lock):
            return sc.Mute(target=target(who), device=device, lock=lock)
        case wire.Unlock(target=who, device=device):
            return sc.Unlock(target=target(who), device=device)
        case wire.MuteAll(device=device, lock=lock):
            return sc.MuteAll(device=device, lock=lock)
        case wire.LowerAllHands():
            return sc.LowerAllHands()
        case wire.SetStageAccess(access=access):
            return sc.SetStageAccess(access=access)
        case wire.SetRoomMode(mode=mode):
            return sc.SetRoomMode(mode=mode)
        case wire.SetCapacity(capacity=capacity, full_policy=full_policy):
            return sc.SetCapacity(capacity=capacity, full_policy=full_policy)
        case wire.SetRole(target=who, role=role):
            return sc.SetRole(target=target(who), role=role)
        case wire.SetSpeaker(target=who, speaker=speaker):
            return sc.SetSpeaker(target=target(who), speaker=speaker)
        case wire.SetPermission(target=who, permission=permission, granted=granted):
            return sc.SetPermission(target=target(who), permission=permission, granted=granted)
        case wire.Kick(target=who):
            return sc.Kick(target=target(who))
        case wire.CreatePoll(question=question, options=options):
            return sc.CreatePoll(poll_id=uuid.uuid4().hex[:12], question=question,
                                 options=tuple(options))  # fmt: skip
        case wire.ClosePoll(poll_id=poll_id):
            return sc.ClosePoll(poll_id=poll_id)
        case wire.EndRoom():
            return sc.EndRoom()
        case _:
            assert_never(message)
