"""Typed server settings: struct defaults, then a TOML file, then environment, then overrides.

The struct defaults below ARE the defaults, so an installed (non-editable) package needs no
file; ``configs/default.toml`` documents the same values one line each and a test keeps the
two identical. Everything is validated once, at load time, and every error names the setting
(``server.port: expected int, got str``) so an operator can fix it without reading code.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
import typing
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

import msgspec

from signaling.auth import MIN_SECRET_LENGTH
from signaling.ice_urls import is_ip_or_host_name, parse_ice_url
from signaling.stage.model import FullStagePolicy, RoomMode, StageAccess

__all__ = [
    "DEV_SECRET",
    "ENV_PREFIX",
    "AudioLevelSettings",
    "AuthSettings",
    "EventLoop",
    "LogFormat",
    "LogLevel",
    "MediaSettings",
    "RoomSettings",
    "ServerSettings",
    "Settings",
    "SettingsError",
    "TurnSettings",
    "check_deployment",
    "dev_tokens_enabled",
    "env_var_name",
    "load_settings",
    "unknown_env_vars",
]

ENV_PREFIX = "STAGE_SFU_"
WORKER_SETTINGS_ENV = f"{ENV_PREFIX}WORKER_SETTINGS"
"""The settings a front hands its worker processes (JSON): not a setting of its own."""
# Variables with the prefix that are not settings: the above, and the native build's
# AddressSanitizer switch (setup.py).
_NOT_SETTINGS = frozenset({WORKER_SETTINGS_ENV, f"{ENV_PREFIX}NATIVE_SANITIZE"})
DEV_SECRET = "dev-insecure-secret-change-me-before-deploying"
"""Well-known development secret: anyone can mint tokens with it, so it is only accepted for
serving on a loopback host (see ``check_deployment``)."""


class SettingsError(ValueError):
    """Invalid configuration; the message names the setting and the problem."""


class EventLoop(StrEnum):
    UVLOOP = "uvloop"
    ASYNCIO = "asyncio"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"  # one JSON object per line, with room and participant ids as fields


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of the ``[section]`` structs (msgspec config is inherited)."""


Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
UdpPort = Annotated[int, msgspec.Meta(ge=1024, le=65535)]
Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=3600.0)]


class ServerSettings(_Section, frozen=True):
    """``[server]``; each setting is explained in configs/default.toml."""

    host: Annotated[str, msgspec.Meta(min_length=1)] = "127.0.0.1"
    port: Port = 8080
    """0 lets the OS pick a free port (tests)."""
    event_loop: EventLoop = EventLoop.UVLOOP
    max_message_bytes: Annotated[int, msgspec.Meta(ge=1024, le=16 * 1024 * 1024)] = 65536
    log_level: LogLevel = LogLevel.INFO
    log_format: LogFormat = LogFormat.TEXT
    static_dir: str = ""
    workers: Annotated[int, msgspec.Meta(ge=0, le=256)] = 0
    """Media worker processes; 0 = one per core, 1 = everything in one process."""
    drain_timeout: Annotated[float, msgspec.Meta(gt=0.0, le=3600.0)] = 8.0
    """Shutdown budget; below Docker's default 10 s stop timeout, so the drain can finish."""
    # Liveness of media workers (workers > 1): a hung one is killed, then restarted.
    worker_probe_interval: Annotated[float, msgspec.Meta(gt=0.0, le=600.0)] = 2.0
    worker_probe_timeout: Annotated[float, msgspec.Meta(gt=0.0, le=600.0)] = 3.0
    worker_probe_failures: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 3
    gc_freeze: bool = True
    """Freeze what survives each full cycle collection (signaling/web/memory.py)."""


class AuthSettings(_Section, frozen=True):
    """``[auth]``; each setting is explained in configs/default.toml."""

    # RFC 7518 section 3.2: an HS256 key must be at least as long as the hash (32 bytes).
    secret: Annotated[str, msgspec.Meta(min_length=MIN_SECRET_LENGTH)] = DEV_SECRET
    token_ttl: Annotated[float, msgspec.Meta(gt=0.0, le=366 * 86400.0)] = 3600.0
    leeway: Annotated[float, msgspec.Meta(ge=0.0, le=300.0)] = 5.0
    dev_tokens: bool = True
    # Development tokens are minted only while the server listens on loopback, unless
    # this says otherwise: then anyone who reaches the port can mint a host token.
    insecure_dev_tokens_beyond_loopback: bool = False


class MediaSettings(_Section, frozen=True):
    """``[media]``; each setting is explained in configs/default.toml."""

    ice_addresses: Annotated[tuple[str, ...], msgspec.Meta(min_length=1)] = ("127.0.0.1",)
    announced_address: Annotated[str, msgspec.Meta(max_length=253)] = ""
    udp_port_min: UdpPort = 40000
    udp_port_max: UdpPort = 49999
    # Buffers are keyed by 16-bit sequence number: more than half the space would be ambiguous.
    retransmission_buffer: Annotated[int, msgspec.Meta(ge=16, le=32768)] = 1024
    retransmission_max_age: Annotated[float, msgspec.Meta(gt=0.0, le=30.0)] = 2.0
    key_frame_min_interval: Annotated[float, msgspec.Meta(ge=0.0, le=60.0)] = 1.0
    publisher_max_bitrate: Annotated[int, msgspec.Meta(ge=30_000, le=100_000_000)] = 3_000_000
    egress_buffer_limit: Annotated[int, msgspec.Meta(ge=2048, le=64 * 1024 * 1024)] = 262144
    native_fastpath: bool = True
    pipe_address: str = "127.0.0.1"
    max_ingress_delay: Annotated[float, msgspec.Meta(ge=0.0, le=10.0)] = 0.5
    downlink_estimation: bool = False

    def __post_init__(self) -> None:
        # Messages are fully qualified; load_settings passes them through unchanged.
        if self.udp_port_min > self.udp_port_max:
            raise ValueError(
                "media.udp_port_min: must be <= media.udp_port_max "
                f"({self.udp_port_min} > {self.udp_port_max})"
            )
        seen: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
        for text in self.ice_addresses:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise ValueError(f"media.ice_addresses: {text!r} is not an IP address") from None
            if address in seen:
                raise ValueError(f"media.ice_addresses: {text!r} is listed twice")
            seen.add(address)
            # A wildcard is not a candidate a browser can send to; it only works when the
            # reachable address is announced instead.
            if address.is_unspecified and not self.announced_address:
                raise ValueError(
                    f"media.ice_addresses: {text} is a wildcard, not a reachable address; "
                    "list concrete interface addresses or set media.announced_address"
                )
        try:
            ipaddress.ip_address(self.pipe_address)
        except ValueError:
            raise ValueError(
                f"media.pipe_address: {self.pipe_address!r} is not an IP address"
            ) from None
        if self.announced_address and not is_ip_or_host_name(self.announced_address):
            raise ValueError(
                f"media.announced_address: {self.announced_address!r} is neither an IP "
                "address nor a host name"
            )


class AudioLevelSettings(_Section, frozen=True):
    """``[audio_level]``; each setting is explained in configs/default.toml."""

    # RFC 6464 levels are 0..127 -dBov.
    speaking_threshold_dbov: Annotated[float, msgspec.Meta(ge=-127.0, le=0.0)] = -50.0
    speaking_hold: Seconds = 0.5
    speaking_attack: Seconds = 0.15
    update_interval: Annotated[float, msgspec.Meta(ge=0.01, le=10.0)] = 0.1
    decode_fallback: bool = False


class RoomSettings(_Section, frozen=True):
    """Defaults for new rooms; hosts and moderators change mode, access and capacity live."""

    mode: RoomMode = RoomMode.INTERACTIVE
    stage_access: StageAccess = StageAccess.EVERYONE
    stage_capacity: Annotated[int, msgspec.Meta(ge=1, le=100)] = 25
    full_stage_policy: FullStagePolicy = FullStagePolicy.REJECT
    invitation_ttl: Annotated[float, msgspec.Meta(gt=0.0, le=3600.0)] = 60.0
    reconnect_grace: Annotated[float, msgspec.Meta(ge=0.0, le=3600.0)] = 30.0
    # A room left with no host and no moderator ends after this many seconds; 0 = never.
    empty_host_timeout: Annotated[float, msgspec.Meta(ge=0.0, le=86400.0)] = 0.0
    chat_rate: Annotated[float, msgspec.Meta(gt=0.0, le=100.0)] = 2.0  # messages/s sustained
    chat_burst: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 10
    # Every command but join, resume, leave, ping and subscribe_answer, per identity.
    command_rate: Annotated[float, msgspec.Meta(gt=0.0, le=1000.0)] = 20.0
    command_burst: Annotated[int, msgspec.Meta(ge=1, le=10000)] = 40
    spread_after: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 50


TURN_SECRET_MIN_LENGTH = 16


class TurnSettings(_Section, frozen=True):
    """``[turn]``: the STUN/TURN servers clients are given, and coturn's shared secret.

    Each client gets time-limited credentials for them in ``joined.ice_servers``
    (signaling/turn_credentials.py), so the secret itself never leaves the server.
    """

    urls: tuple[str, ...] = ()
    secret: str = ""
    """coturn's ``static-auth-secret`` (with ``use-auth-secret``)."""
    credential_lifetime: Annotated[float, msgspec.Meta(ge=60.0, le=7 * 86400.0)] = 86400.0
    """coturn ends an allocation when its credentials expire, so this bounds how long a
    connection through TURN lasts without a resume (which hands out new ones)."""

    def __post_init__(self) -> None:
        # Messages name the setting and never quote the secret.
        seen: set[str] = set()
        for text in self.urls:
            try:
                parse_ice_url(text)
            except ValueError as exc:
                raise ValueError(f"turn.urls: {text!r} is not a STUN or TURN URL: {exc}") from None
            if text in seen:
                raise ValueError(f"turn.urls: {text!r} is listed twice")
            seen.add(text)
        turn = [text for text in self.urls if parse_ice_url(text).is_turn]
        if turn and not self.secret:
            raise ValueError(
                f"turn.secret: required for the TURN URL {turn[0]!r} (coturn's "
                f"static-auth-secret; set {env_var_name('turn', 'secret')} to keep it out of "
                "the file)"
            )
        if self.secret and len(self.secret) < TURN_SECRET_MIN_LENGTH:
            # Anyone who sees one username and credential can guess the secret offline.
            raise ValueError(f"turn.secret: must be at least {TURN_SECRET_MIN_LENGTH} characters")

    def __repr__(self) -> str:
        # Settings may end up in a log or a traceback; the secret must not.
        secret = "<hidden>" if self.secret else "''"
        return (
            f"TurnSettings(urls={self.urls!r}, secret={secret}, "
            f"credential_lifetime={self.credential_lifetime!r})"
        )


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """All settings; ``Settings()`` is the built-in default configuration."""

    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    media: MediaSettings = msgspec.field(default_factory=MediaSettings)
    audio_level: AudioLevelSettings = msgspec.field(default_factory=AudioLevelSettings)
    rooms: RoomSettings = msgspec.field(default_factory=RoomSettings)
    turn: TurnSettings = msgspec.field(default_factory=TurnSettings)


def _sections() -> dict[str, type[_Section]]:
    """Section name -> struct, derived from ``Settings`` so there is one source of truth."""
    hints = typing.get_type_hints(Settings)
    return {f.name: hints[f.name] for f in msgspec.structs.fields(Settings)}


def _keys(section: type[_Section]) -> dict[str, Any]:
    """Setting name -> type without constraints (for parsing environment strings)."""
    hints = typing.get_type_hints(section)
    return {f.name: hints[f.name] for f in msgspec.structs.fields(section)}


def env_var_name(section: str, key: str) -> str:
    """``("media", "ice_addresses")`` -> ``STAGE_SFU_MEDIA_ICE_ADDRESSES``."""
    return f"{ENV_PREFIX}{section.upper()}_{key.upper()}"


_Layer = dict[str, dict[str, object]]


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Settings:
    """Load and validate settings; later sources win, key by key.

    Order: struct defaults, the TOML file at ``path``, environment variables
    ``STAGE_SFU_<SECTION>_<KEY>`` (``env`` defaults to ``os.environ``; lists are
    comma-separated, booleans are true/false/1/0), then ``overrides`` as dotted keys
    (``{"server.port": 9000}``; ``None`` values are skipped so unset CLI flags can be passed
    straight through). Raises ``SettingsError`` naming the first bad setting.
    """
    sections = _sections()
    merged: _Layer = {}
    if path is not None:
        _merge(merged, _read_file(path, sections))
    env_layer, from_env = _read_env(os.environ if env is None else env, sections)
    _merge(merged, env_layer)
    _merge(merged, _read_overrides(overrides or {}, sections))
    try:
        return msgspec.convert(merged, Settings)
    except msgspec.ValidationError as exc:
        raise SettingsError(_describe(str(exc), sections, from_env)) from None


def _merge(into: _Layer, layer: _Layer) -> None:
    for section, values in layer.items():
        into.setdefault(section, {}).update(values)


def _read_file(path: str | os.PathLike[str], sections: Mapping[str, type[_Section]]) -> _Layer:
    name = os.fspath(path)
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise SettingsError(f"{name}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{name}: invalid TOML: {exc}") from None
    layer: _Layer = {}
    for section, values in data.items():
        if section not in sections:
            raise SettingsError(f"{section}: unknown section")
        if not isinstance(values, dict):
            raise SettingsError(f"{section}: expected a table, got {type(values).__name__}")
        known = _keys(sections[section])
        for key in values:
            if key not in known:
                raise SettingsError(f"{section}.{key}: unknown setting")
        layer[section] = dict(values)
    return layer


def _read_env(
    env: Mapping[str, str], sections: Mapping[str, type[_Section]]
) -> tuple[_Layer, dict[str, str]]:
    layer: _Layer = {}
    origin: dict[str, str] = {}
    for section, struct in sections.items():
        prefix = f"{ENV_PREFIX}{section.upper()}_"
        keys = _keys(struct)
        by_var = {env_var_name(section, key): key for key in keys}
        for var, raw in env.items():
            if not var.startswith(prefix):
                continue
            key = by_var.get(var)
            if key is None:
                # A typo in a variable that claims a known section is almost certainly a
                # mistake; silently ignoring it would leave the default in force.
                guessed = var[len(prefix) :].lower()
                raise SettingsError(f"{section}.{guessed}: unknown setting (from {var})")
            layer.setdefault(section, {})[key] = _parse_env(raw, keys[key], f"{section}.{key}", var)
            origin[f"{section}.{key}"] = var
    return layer, origin


def unknown_env_vars(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``STAGE_SFU_`` variables that name no section (a typo, or a section this server
    does not have): ``load_settings`` cannot tell them from unrelated variables and
    ignores them, so the caller reports them. (One naming a known section but no key
    of it is an error there.)"""
    prefixes = tuple(f"{ENV_PREFIX}{section.upper()}_" for section in _sections())
    return tuple(
        sorted(
            var
            for var in (os.environ if env is None else env)
            if var.startswith(ENV_PREFIX)
            and var not in _NOT_SETTINGS
            and not var.startswith(prefixes)
        )
    )


def _parse_env(raw: str, hint: Any, name: str, var: str) -> object:
    if typing.get_origin(hint) in (tuple, list):
        return [item.strip() for item in raw.split(",") if item.strip()]
    try:
        # strict=False is msgspec's string coercion: "8080" -> 8080, "true"/"0" -> bool.
        return msgspec.convert(raw.strip(), hint, strict=False)
    except msgspec.ValidationError:
        expected = getattr(hint, "__name__", str(hint))
        if isinstance(hint, type) and issubclass(hint, StrEnum):
            expected = "one of " + ", ".join(m.value for m in hint)
        raise SettingsError(f"{name}: expected {expected}, got {raw!r} (from {var})") from None


def _read_overrides(
    overrides: Mapping[str, object], sections: Mapping[str, type[_Section]]
) -> _Layer:
    layer: _Layer = {}
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        if section not in sections or key not in _keys(sections[section]):
            raise SettingsError(f"{dotted}: unknown setting")
        layer.setdefault(section, {})[key] = value
    return layer


_AT = re.compile(r"(?s)(?P<msg>.*) - at `\$\.?(?P<path>[^`]*)`")
_QUALIFIED = re.compile(r"[a-z_]+\.[a-z_]+(\[\d+\])?: ")
_REWRITES = (
    (re.compile(r"Expected `str` of length >= (\d+)"), r"must be at least \1 characters"),
    (re.compile(r"Expected `str` of length <= (\d+)"), r"must be at most \1 characters"),
    (re.compile(r"Expected `array` of length >= 1"), "must not be empty"),
    (re.compile(r"Expected `array` of length >= (\d+)"), r"must have at least \1 entries"),
    (re.compile(r"Expected `(?:int|float)` (>=|<=|>|<) (\S+)"), r"must be \1 \2"),
    (re.compile(r"Expected `(\w+)`, got `(\w+)`"), r"expected \1, got \2"),
)


def _describe(
    message: str, sections: Mapping[str, type[_Section]], from_env: Mapping[str, str]
) -> str:
    """Turn msgspec's ``Expected `int`, got `str` - at `$.server.port``` into operator text."""
    match = _AT.fullmatch(message)
    if match is None:
        return message.replace("`", "")
    problem, path = match["msg"], match["path"]
    qualified = _QUALIFIED.match(problem)
    if qualified:  # a __post_init__ check, which names its setting itself
        source = from_env.get(re.sub(r"(\[\d+\])?: $", "", qualified[0]))
        return f"{problem} (from {source})" if source else problem
    for pattern, replacement in _REWRITES:
        if pattern.fullmatch(problem):
            problem = pattern.sub(replacement, problem)
            break
    else:
        enum = _enum_at(path, sections)
        if problem.startswith("Invalid enum value") and enum is not None:
            got = problem.removeprefix("Invalid enum value ")
            problem = f"must be one of {', '.join(m.value for m in enum)} (got {got})"
        else:
            problem = problem.replace("`", "")
            problem = problem[:1].lower() + problem[1:]
    setting = re.sub(r"\[\d+\]$", "", path)
    source = from_env.get(setting)
    suffix = f" (from {source})" if source else ""
    return f"{path}: {problem}{suffix}"


def _enum_at(path: str, sections: Mapping[str, type[_Section]]) -> type[StrEnum] | None:
    section, _, key = path.partition(".")
    struct = sections.get(section)
    hint = _keys(struct).get(key) if struct is not None else None
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return hint
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def dev_tokens_enabled(settings: Settings) -> bool:
    """Whether `POST /api/dev-token` mints tokens: only on a loopback listener, unless
    ``auth.insecure_dev_tokens_beyond_loopback`` explicitly allows it elsewhere."""
    auth = settings.auth
    return auth.dev_tokens and (
        _is_loopback(settings.server.host) or auth.insecure_dev_tokens_beyond_loopback
    )


def check_deployment(settings: Settings) -> tuple[str, ...]:
    """Checks that matter only once the server is reachable from other machines.

    Raises ``SettingsError`` if the well-known ``DEV_SECRET`` would guard a non-loopback
    listener (anyone could mint a host token). Returns warnings for combinations that are
    legal but probably mistakes. Call it before serving; ``load_settings`` does not, so tools
    and tests may use any host.
    """
    if _is_loopback(settings.server.host):
        return ()
    if settings.auth.secret == DEV_SECRET:
        raise SettingsError(
            "auth.secret: the built-in development secret is only allowed when server.host "
            f"is a loopback address (server.host = {settings.server.host}); set "
            f"{env_var_name('auth', 'secret')}"
        )
    warnings: list[str] = []
    if settings.auth.insecure_dev_tokens_beyond_loopback and settings.auth.dev_tokens:
        warnings.append(
            "auth.insecure_dev_tokens_beyond_loopback is on: anyone who can reach "
            f"{settings.server.host}:{settings.server.port} can mint host tokens"
        )
    elif settings.auth.dev_tokens:
        warnings.append(
            "auth.dev_tokens is ignored: development tokens are minted only while server.host "
            f"is a loopback address (server.host = {settings.server.host})"
        )
    if all(_is_loopback(address) for address in settings.media.ice_addresses):
        warnings.append(
            "media.ice_addresses has only loopback addresses: remote clients can signal but "
            f"not send or receive media; set {env_var_name('media', 'ice_addresses')}"
        )
    return tuple(warnings)
