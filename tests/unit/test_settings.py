"""Settings: defaults, layering (file < env < overrides) and operator-readable errors."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import msgspec
import pytest

from signaling.settings import (
    DEV_SECRET,
    EventLoop,
    LogFormat,
    LogLevel,
    Settings,
    SettingsError,
    check_deployment,
    dev_tokens_enabled,
    env_var_name,
    load_settings,
)

DEFAULT_TOML = Path(__file__).resolve().parents[2] / "configs" / "default.toml"
SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stage.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(
    path: Path | None = None,
    *,
    env: dict[str, str] | None = None,
    overrides: dict[str, object] | None = None,
) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(path, env=env or {}, overrides=overrides)
    return str(info.value)


# --- defaults ---------------------------------------------------------------------------


def test_default_toml_parses_to_exactly_the_struct_defaults() -> None:
    assert load_settings(DEFAULT_TOML, env={}) == Settings()


def test_default_toml_spells_out_every_default() -> None:
    raw = tomllib.loads(DEFAULT_TOML.read_text(encoding="utf-8"))
    expected = msgspec.json.decode(msgspec.json.encode(Settings()))
    assert raw.keys() == expected.keys()
    for section, values in expected.items():
        assert raw[section].keys() == values.keys(), section
        for key, value in values.items():
            assert raw[section][key] == value, f"{section}.{key}"


def test_default_toml_documents_every_setting_on_its_line() -> None:
    assignments = [
        line
        for line in DEFAULT_TOML.read_text(encoding="utf-8").splitlines()
        if re.match(r"[a-z_]+ = ", line)
    ]
    assert len(assignments) == sum(len(v) for v in msgspec.to_builtins(Settings()).values())
    undocumented = [line for line in assignments if "  # " not in line and " # " not in line]
    assert undocumented == []


def test_no_sources_gives_the_defaults() -> None:
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.server.host == "127.0.0.1"
    assert settings.server.port == 8080
    assert settings.server.event_loop is EventLoop.UVLOOP
    assert settings.server.log_level is LogLevel.INFO
    assert settings.media.ice_addresses == ("127.0.0.1",)
    assert (settings.media.udp_port_min, settings.media.udp_port_max) == (40000, 49999)
    assert settings.audio_level.decode_fallback is False


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.server.port = 1  # type: ignore[misc]


# --- layering ---------------------------------------------------------------------------


def test_file_values_replace_defaults_key_by_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = 9001\n[media]\nice_addresses = ["10.0.0.5"]\n')
    settings = load_settings(path, env={})
    assert settings.server.port == 9001
    assert settings.server.host == "127.0.0.1"
    assert settings.media.ice_addresses == ("10.0.0.5",)


def test_environment_beats_file_and_overrides_beat_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = 9001\nhost = '127.0.0.2'\n")
    env = {"STAGE_SFU_SERVER_PORT": "9002", "STAGE_SFU_SERVER_HOST": "127.0.0.3"}
    settings = load_settings(path, env=env, overrides={"server.port": 9003})
    assert settings.server.port == 9003
    assert settings.server.host == "127.0.0.3"


def test_os_environ_is_read_when_no_env_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGE_SFU_AUTH_SECRET", SECRET)
    assert load_settings().auth.secret == SECRET


def test_none_overrides_are_skipped_so_unset_flags_pass_through() -> None:
    settings = load_settings(env={}, overrides={"server.port": None, "server.host": "::1"})
    assert settings.server.port == 8080
    assert settings.server.host == "::1"


def test_env_var_names_follow_section_and_key() -> None:
    assert env_var_name("media", "ice_addresses") == "STAGE_SFU_MEDIA_ICE_ADDRESSES"
    assert env_var_name("audio_level", "decode_fallback") == "STAGE_SFU_AUDIO_LEVEL_DECODE_FALLBACK"


def test_environment_strings_are_parsed_to_each_type() -> None:
    settings = load_settings(
        env={
            "STAGE_SFU_MEDIA_ICE_ADDRESSES": " 10.0.0.5, ::1 ,",
            "STAGE_SFU_MEDIA_RETRANSMISSION_MAX_AGE": "3.5",
            "STAGE_SFU_SERVER_EVENT_LOOP": "asyncio",
            "STAGE_SFU_AUDIO_LEVEL_SPEAKING_THRESHOLD_DBOV": "-40",
            "STAGE_SFU_MEDIA_ANNOUNCED_ADDRESS": "sfu.example.org",
        }
    )
    assert settings.media.ice_addresses == ("10.0.0.5", "::1")
    assert settings.media.retransmission_max_age == 3.5
    assert settings.server.event_loop is EventLoop.ASYNCIO
    assert settings.audio_level.speaking_threshold_dbov == -40.0
    assert settings.media.announced_address == "sfu.example.org"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("false", False), ("1", True), ("0", False), ("TRUE", True)],
)
def test_environment_booleans(raw: str, expected: bool) -> None:
    env = {"STAGE_SFU_AUDIO_LEVEL_DECODE_FALLBACK": raw}
    assert load_settings(env=env).audio_level.decode_fallback is expected


def test_unrelated_prefixed_variables_are_ignored() -> None:
    assert load_settings(env={"STAGE_SFU_E2E_HEADLESS": "1"}) == Settings()


# --- errors -----------------------------------------------------------------------------


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_port_range_must_be_ordered() -> None:
    message = error_of(overrides={"media.udp_port_min": 50000, "media.udp_port_max": 40000})
    assert message == "media.udp_port_min: must be <= media.udp_port_max (50000 > 40000)"


def test_short_secret_is_refused() -> None:
    assert error_of(overrides={"auth.secret": "short"}) == (
        "auth.secret: must be at least 32 characters"
    )


def test_wrong_type_in_file_names_setting_and_types(tmp_path: Path) -> None:
    path = write(tmp_path, '[server]\nport = "8080"\n')
    assert error_of(path=path) == "server.port: expected int, got str"


def test_boolean_is_not_accepted_as_a_number(tmp_path: Path) -> None:
    path = write(tmp_path, "[server]\nport = true\n")
    assert error_of(path=path) == "server.port: expected int, got bool"


def test_unknown_key_in_file(tmp_path: Path) -> None:
    assert error_of(path=write(tmp_path, "[server]\nprot = 1\n")) == "server.prot: unknown setting"


def test_unknown_section_in_file(tmp_path: Path) -> None:
    assert error_of(path=write(tmp_path, "[sever]\nport = 1\n")) == "sever: unknown section"


def test_section_must_be_a_table(tmp_path: Path) -> None:
    assert error_of(path=write(tmp_path, "server = 1\n")) == "server: expected a table, got int"


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[server\n")
    assert error_of(path=path).startswith(f"{path}: invalid TOML")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    assert error_of(path=path).startswith(f"{path}: cannot read")


def test_unknown_override_key() -> None:
    assert error_of(overrides={"server.prot": 1}) == "server.prot: unknown setting"
    assert error_of(overrides={"port": 1}) == "port: unknown setting"


def test_out_of_range_number() -> None:
    assert error_of(overrides={"server.port": 70000}) == "server.port: must be <= 65535"
    assert error_of(overrides={"audio_level.speaking_threshold_dbov": 1.0}) == (
        "audio_level.speaking_threshold_dbov: must be <= 0.0"
    )


def test_enum_error_lists_the_choices() -> None:
    assert error_of(overrides={"server.event_loop": "trio"}) == (
        "server.event_loop: must be one of uvloop, asyncio (got 'trio')"
    )


def test_shutdown_and_log_format_settings_are_validated_and_read_from_the_environment() -> None:
    env = {"STAGE_SFU_SERVER_LOG_FORMAT": "json", "STAGE_SFU_SERVER_DRAIN_TIMEOUT": "2.5"}
    server = load_settings(env=env).server
    assert (server.log_format, server.drain_timeout) == (LogFormat.JSON, 2.5)
    assert error_of(env={"STAGE_SFU_SERVER_LOG_FORMAT": "yaml"}) == (
        "server.log_format: expected one of text, json, got 'yaml' "
        "(from STAGE_SFU_SERVER_LOG_FORMAT)"
    )
    assert error_of(overrides={"server.drain_timeout": 0}) == "server.drain_timeout: must be > 0.0"


def test_bad_environment_value_names_the_variable() -> None:
    assert error_of(env={"STAGE_SFU_SERVER_PORT": "eighty"}) == (
        "server.port: expected int, got 'eighty' (from STAGE_SFU_SERVER_PORT)"
    )
    assert error_of(env={"STAGE_SFU_SERVER_PORT": "0x"}).endswith("(from STAGE_SFU_SERVER_PORT)")


def test_constraint_failure_from_environment_names_the_variable() -> None:
    assert error_of(env={"STAGE_SFU_SERVER_PORT": "70000"}) == (
        "server.port: must be <= 65535 (from STAGE_SFU_SERVER_PORT)"
    )


def test_misspelled_variable_in_a_known_section_is_an_error() -> None:
    assert error_of(env={"STAGE_SFU_SERVER_PROT": "1"}) == (
        "server.prot: unknown setting (from STAGE_SFU_SERVER_PROT)"
    )


@pytest.mark.parametrize("address", ["1.2.3", "localhost", "10.0.0.256"])
def test_ice_addresses_must_be_ip_addresses(address: str) -> None:
    assert error_of(overrides={"media.ice_addresses": [address]}) == (
        f"media.ice_addresses: {address!r} is not an IP address"
    )


def test_ice_addresses_must_not_be_empty() -> None:
    message = error_of(overrides={"media.ice_addresses": []})
    assert message == "media.ice_addresses: must not be empty"


def test_ice_addresses_must_not_repeat() -> None:
    message = error_of(overrides={"media.ice_addresses": ["10.0.0.1", "10.0.0.1"]})
    assert message == "media.ice_addresses: '10.0.0.1' is listed twice"


def test_wildcard_ice_address_needs_an_announced_address() -> None:
    message = error_of(overrides={"media.ice_addresses": ["0.0.0.0"]})
    assert message.startswith("media.ice_addresses: 0.0.0.0 is a wildcard")
    settings = load_settings(
        env={},
        overrides={"media.ice_addresses": ["0.0.0.0"], "media.announced_address": "203.0.113.7"},
    )
    assert settings.media.announced_address == "203.0.113.7"


def test_announced_address_must_be_an_ip_or_host_name() -> None:
    message = error_of(overrides={"media.announced_address": "not a host"})
    assert message.startswith("media.announced_address: 'not a host' is neither")


# --- deployment checks ------------------------------------------------------------------


def test_loopback_server_may_use_the_development_secret() -> None:
    assert check_deployment(Settings()) == ()


def test_public_server_refuses_the_development_secret() -> None:
    settings = load_settings(env={}, overrides={"server.host": "0.0.0.0"})
    assert settings.auth.secret == DEV_SECRET
    with pytest.raises(SettingsError, match=r"^auth\.secret: .*STAGE_SFU_AUTH_SECRET"):
        check_deployment(settings)


def test_public_server_warns_about_dev_tokens_and_loopback_media() -> None:
    settings = load_settings(env={}, overrides={"server.host": "0.0.0.0", "auth.secret": SECRET})
    warnings = check_deployment(settings)
    assert [w.split(" ", 1)[0] for w in warnings] == ["auth.dev_tokens", "media.ice_addresses"]
    assert "ignored" in warnings[0]
    assert not dev_tokens_enabled(settings)  # the defaults are safe on a public address


def test_dev_tokens_beyond_loopback_need_the_loud_setting_and_are_warned_about() -> None:
    public = {"server.host": "0.0.0.0", "auth.secret": SECRET, "media.ice_addresses": ["10.0.0.5"]}
    allowed = load_settings(
        env={}, overrides={**public, "auth.insecure_dev_tokens_beyond_loopback": True}
    )
    assert dev_tokens_enabled(allowed)
    (warning,) = check_deployment(allowed)
    assert warning.startswith("auth.insecure_dev_tokens_beyond_loopback is on")
    assert dev_tokens_enabled(load_settings(env={}))  # loopback: the development default


def test_properly_configured_public_server_has_no_warnings() -> None:
    settings = load_settings(
        env={
            "STAGE_SFU_SERVER_HOST": "0.0.0.0",
            "STAGE_SFU_AUTH_SECRET": SECRET,
            "STAGE_SFU_AUTH_DEV_TOKENS": "false",
            "STAGE_SFU_MEDIA_ICE_ADDRESSES": "10.0.0.5",
        }
    )
    assert check_deployment(settings) == ()
