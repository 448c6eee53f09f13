"""`[turn]`: STUN/TURN URLs checked as browsers read them, and the shared secret."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from signaling.cli import main
from signaling.ice_urls import parse_ice_url
from signaling.settings import Settings, SettingsError, load_settings

SECRET = "north-wind-shared-secret"


def error_of(*, env: dict[str, str] | None = None, **overrides: object) -> str:
    dotted = {f"turn.{key}": value for key, value in overrides.items()}
    with pytest.raises(SettingsError) as info:
        load_settings(env=env or {}, overrides=dotted)
    return str(info.value)


# --- URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scheme", "host", "port", "transport"),
    [
        ("turn:turn.example.com", "turn", "turn.example.com", 3478, "udp"),
        ("turn:turn.example.com:3478?transport=udp", "turn", "turn.example.com", 3478, "udp"),
        ("turn:203.0.113.7:3478?transport=tcp", "turn", "203.0.113.7", 3478, "tcp"),
        ("turns:turn.example.com:443?transport=tcp", "turns", "turn.example.com", 443, "tcp"),
        ("turns:turn.example.com", "turns", "turn.example.com", 5349, "tcp"),
        ("turn:[2001:db8::1]:3478", "turn", "2001:db8::1", 3478, "udp"),
        ("stun:stun.example.com:19302", "stun", "stun.example.com", 19302, None),
        ("stuns:stun.example.com", "stuns", "stun.example.com", 5349, None),
    ],
)
def test_urls_are_parsed_with_the_rfc_default_ports_and_transports(
    text: str, scheme: str, host: str, port: int, transport: str | None
) -> None:
    url = parse_ice_url(text)
    assert (url.scheme, url.host, url.port, url.transport) == (scheme, host, port, transport)
    assert url.text == text
    assert url.is_turn == scheme.startswith("turn")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("turn://turn.example.com", "no // after the scheme"),
        ("http:example.com", "unknown scheme 'http'"),
        ("turn:", "no host"),
        ("turn:turn example.com", "is not a host name"),
        ("turn:-bad-.example.com", "is not a host name"),
        ("turn:[fe80::zz]:3478", "is not an IPv6 address"),
        ("turn:2001:db8::1", "expected scheme:host"),  # an IPv6 host needs brackets
        ("turn:turn.example.com:0", "port 0 is outside 1-65535"),
        ("turn:turn.example.com:70000", "port 70000 is outside 1-65535"),
        ("turn:turn.example.com:34x78", "expected scheme:host"),
        ("stun:stun.example.com?transport=udp", "a STUN URL takes no query"),
        ("turns:turn.example.com:443?transport=udp", "its transport is tcp"),
        ("turn:turn.example.com?transport=sctp", "unsupported query 'transport=sctp'"),
        ("turn:turn.example.com?transport=udp&x=1", "unsupported query"),
        (" turn:turn.example.com", "white space around the URL"),
    ],
)
def test_malformed_urls_are_refused_saying_why(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_ice_url(text)
    assert problem in str(info.value)


def test_a_bad_url_is_reported_naming_the_setting_and_the_url() -> None:
    message = error_of(urls=["stun:stun.example.com", "turn:turn.example.com:99999"])
    assert message == (
        "turn.urls: 'turn:turn.example.com:99999' is not a STUN or TURN URL: "
        "port 99999 is outside 1-65535"
    )


def test_a_url_listed_twice_is_refused() -> None:
    message = error_of(urls=["stun:stun.example.com", "stun:stun.example.com"])
    assert message == "turn.urls: 'stun:stun.example.com' is listed twice"


# --- the secret -------------------------------------------------------------------------


def test_by_default_no_servers_are_configured_and_no_secret_is_needed() -> None:
    turn = Settings().turn
    assert (turn.urls, turn.secret, turn.credential_lifetime) == ((), "", 86400.0)


def test_stun_alone_needs_no_secret() -> None:
    settings = load_settings(env={}, overrides={"turn.urls": ["stun:stun.example.com"]})
    assert settings.turn.urls == ("stun:stun.example.com",)


@pytest.mark.parametrize("url", ["turn:turn.example.com", "turns:turn.example.com:443"])
def test_a_turn_url_without_a_secret_is_refused_naming_the_secret(url: str) -> None:
    message = error_of(urls=["stun:stun.example.com", url])
    assert message.startswith(f"turn.secret: required for the TURN URL {url!r}")
    assert "STAGE_SFU_TURN_SECRET" in message


def test_a_short_secret_is_refused_without_echoing_it() -> None:
    message = error_of(urls=["turn:turn.example.com"], secret="hunter2-hunter2")
    assert message == "turn.secret: must be at least 16 characters"


def test_the_secret_is_not_in_the_settings_repr() -> None:
    settings = load_settings(
        env={}, overrides={"turn.urls": ["turn:t.example"], "turn.secret": SECRET}
    )
    assert SECRET not in repr(settings)
    assert SECRET not in repr(settings.turn)
    assert "secret=<hidden>" in repr(settings.turn)


@pytest.mark.parametrize("lifetime", [59.0, 7 * 86400.0 + 1])
def test_the_credential_lifetime_is_bounded(lifetime: float) -> None:
    assert error_of(credential_lifetime=lifetime).startswith("turn.credential_lifetime: must be")


# --- environment ------------------------------------------------------------------------


def test_urls_secret_and_lifetime_come_from_the_environment() -> None:
    settings = load_settings(
        env={
            "STAGE_SFU_TURN_URLS": "turn:t.example:3478?transport=udp, turns:t.example:443",
            "STAGE_SFU_TURN_SECRET": SECRET,
            "STAGE_SFU_TURN_CREDENTIAL_LIFETIME": "3600",
        }
    )
    assert settings.turn.urls == ("turn:t.example:3478?transport=udp", "turns:t.example:443")
    assert settings.turn.secret == SECRET
    assert settings.turn.credential_lifetime == 3600.0


def test_a_bad_url_from_the_environment_names_the_variable() -> None:
    message = error_of(env={"STAGE_SFU_TURN_URLS": "turn:t.example?transport=sctp"})
    assert message.startswith("turn.urls: 'turn:t.example?transport=sctp' is not")
    assert message.endswith("(from STAGE_SFU_TURN_URLS)")


def test_a_short_secret_from_the_environment_names_the_variable_not_the_value() -> None:
    message = error_of(env={"STAGE_SFU_TURN_SECRET": "tiny-secret"})
    assert message == "turn.secret: must be at least 16 characters (from STAGE_SFU_TURN_SECRET)"


def test_the_secret_from_the_environment_completes_a_file_with_turn_urls(tmp_path: Path) -> None:
    path = tmp_path / "stage.toml"
    path.write_text('[turn]\nurls = ["turn:t.example"]\n', encoding="utf-8")
    settings = load_settings(path, env={"STAGE_SFU_TURN_SECRET": SECRET})
    assert settings.turn.secret == SECRET


# --- stage-sfu config check ---------------------------------------------------------------


def test_config_check_reports_a_bad_url_naming_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "stage.toml"
    path.write_text(
        f'[turn]\nurls = ["turn://t.example:3478"]\nsecret = "{SECRET}"\n', encoding="utf-8"
    )
    assert main(["config", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "stage-sfu: invalid configuration: turn.urls: 'turn://t.example:3478' is not a STUN "
        "or TURN URL: no // after the scheme (turn:host, not turn://host)\n"
    )
    assert SECRET not in captured.out + captured.err


def test_config_check_reports_a_turn_url_without_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "stage.toml"
    path.write_text('[turn]\nurls = ["turn:t.example:3478?transport=tcp"]\n', encoding="utf-8")
    assert main(["config", "check", str(path)]) == 2
    assert capsys.readouterr().err.startswith(
        "stage-sfu: invalid configuration: turn.secret: required for the TURN URL "
        "'turn:t.example:3478?transport=tcp'"
    )


def test_config_check_never_prints_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "stage.toml"
    secret = "short-secret"
    path.write_text(f'[turn]\nurls = ["turn:t.example"]\nsecret = "{secret}"\n', encoding="utf-8")
    with caplog.at_level(logging.DEBUG):
        assert main(["config", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert "turn.secret: must be at least 16 characters" in captured.err
    assert secret not in captured.out + captured.err + caplog.text


def test_config_check_with_env_takes_the_secret_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "stage.toml"
    path.write_text('[turn]\nurls = ["turn:t.example"]\n', encoding="utf-8")
    monkeypatch.setenv("STAGE_SFU_TURN_SECRET", SECRET)
    assert main(["config", "check", str(path)]) == 2  # the file alone lacks it
    assert main(["config", "check", "--env", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"ok: {path}\n"
    assert SECRET not in captured.out + captured.err
