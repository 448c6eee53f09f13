"""Builds the media core's options from the server settings."""

from __future__ import annotations

from sfu.observers.speaking import SpeakingOptions
from sfu.options import MediaOptions, NetworkOptions, WorkerOptions

from .room_commands import RoomOptions
from .settings import Settings
from .stage.model import RoomPolicy


def worker_options(settings: Settings) -> WorkerOptions:
    media = settings.media
    levels = settings.audio_level
    return WorkerOptions(
        network=NetworkOptions(
            ice_addresses=tuple(media.ice_addresses),
            announced_address=media.announced_address or None,
            port_min=media.udp_port_min,
            port_max=media.udp_port_max,
            egress_buffer_limit=media.egress_buffer_limit,
        ),
        media=MediaOptions(
            retransmission_buffer=max(16, media.retransmission_buffer),
            retransmission_max_age=media.retransmission_max_age,
            key_frame_min_interval=media.key_frame_min_interval,
            publisher_max_bitrate=media.publisher_max_bitrate,
            speaking=SpeakingOptions(
                threshold_dbov=levels.speaking_threshold_dbov,
                hold=levels.speaking_hold,
                attack=levels.speaking_attack,
                # The smoothing window must hold at least one attack's worth of sound.
                window=max(0.3, levels.speaking_attack),
            ),
            audio_level_interval=levels.update_interval,
            decode_fallback=levels.decode_fallback,
            native_fastpath=media.native_fastpath,
            max_ingress_delay=media.max_ingress_delay,
            downlink_estimation=media.downlink_estimation,
        ),
    )


def room_options(settings: Settings) -> RoomOptions:
    rooms = settings.rooms
    return RoomOptions(
        policy=RoomPolicy(
            mode=rooms.mode,
            stage_access=rooms.stage_access,
            capacity=rooms.stage_capacity,
            full_policy=rooms.full_stage_policy,
            invitation_ttl=rooms.invitation_ttl,
        ),
        reconnect_grace=rooms.reconnect_grace,
        empty_host_timeout=rooms.empty_host_timeout,
        chat_rate=rooms.chat_rate,
        chat_burst=rooms.chat_burst,
        command_rate=rooms.command_rate,
        command_burst=rooms.command_burst,
        spread_after=rooms.spread_after,
        pipe_address=settings.media.pipe_address,
    )
