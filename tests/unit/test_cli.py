"""The stage-sfu command, run in-process. No real server is ever started."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import jwt
import pytest

from signaling import __version__
from signaling.auth import verify_token
from signaling.cli import LOG_FORMAT, main
from signaling.logs import JsonFormatter
from signaling.roles import Role
from signaling.settings import DEV_SECRET, Settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TOML = ROOT / "configs" / "default.toml"
SECRET = "a-test-secret-that-is-long-enough-for-hs256"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own STAGE_SFU_* variables must not leak into these tests."""
    for name in [name for name in os.environ if name.startswith("STAGE_SFU_")]:
        monkeypatch.delenv(name)


class FakeServer:
    """Stands in for signaling.web.server; records what serve() was given."""

    def __init__(self) -> None:
        self.calls: list[Settings] = []

    def serve(self, settings: Settings) -> None:
        self.calls.append(settings)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    fake = FakeServer()
    module = types.ModuleType("signaling.web.server")
    module.serve = fake.serve  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "signaling.web.server", module)
    return fake


@pytest.fixture
def logging_config(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Records basicConfig calls instead of installing handlers in the test process."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: calls.append(kwargs))
    return calls


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stage.toml"
    path.write_text(text, encoding="utf-8")
    return path


def unverified(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


# --- version and usage ------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"stage-sfu {__version__}\n"


def test_no_command_prints_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: stage-sfu" in capsys.readouterr().err


def test_python_dash_m_signaling_runs_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "signaling", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, f"stage-sfu {__version__}\n")


# --- token ------------------------------------------------------------------------------


def test_token_prints_one_verifiable_jwt(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--room", "town-hall", "--identity", "alice", "--name", "Alice", "--role", "moderator"]
    code = main(["token", *args])
    out = capsys.readouterr().out
    assert code == 0
    assert out.endswith("\n") and out.count("\n") == 1
    token = out.strip()
    issued_at = unverified(token)["iat"]
    grants = verify_token(DEV_SECRET, token, room="town-hall", now=issued_at)
    assert (grants.identity, grants.name, grants.role) == ("alice", "Alice", Role.MODERATOR)
    assert grants.expires_at - issued_at == Settings().auth.token_ttl


def test_token_ttl_flag_sets_the_lifetime(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--room", "r", "--identity", "i", "--role", "host", "--ttl", "60"]) == 0
    claims = unverified(capsys.readouterr().out.strip())
    assert claims["exp"] - claims["iat"] == 60


def test_token_name_defaults_to_the_identity(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--room", "r", "--identity", "bob", "--role", "participant"]) == 0
    assert unverified(capsys.readouterr().out.strip())["name"] == "bob"


def test_token_secret_comes_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAGE_SFU_AUTH_SECRET", SECRET)
    assert main(["token", "--room", "r", "--identity", "i", "--role", "host"]) == 0
    token = capsys.readouterr().out.strip()
    verify_token(SECRET, token, room="r", now=unverified(token)["iat"])
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, DEV_SECRET, algorithms=["HS256"])


def test_token_secret_comes_from_the_config_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, f'[auth]\nsecret = "{SECRET}"\ntoken_ttl = 120\n')
    code = main(
        ["token", "--config", str(path), "--room", "r", "--identity", "i", "--role", "host"]
    )
    token = capsys.readouterr().out.strip()
    assert code == 0
    grants = verify_token(SECRET, token, room="r", now=unverified(token)["iat"])
    assert grants.expires_at - unverified(token)["iat"] == 120


def test_token_rejects_an_unknown_role(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--room", "r", "--identity", "i", "--role", "admin"]) == 2
    assert "invalid choice: 'admin'" in capsys.readouterr().err


def test_token_rejects_bad_claims_without_printing_a_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["token", "--room", "r" * 129, "--identity", "i", "--role", "host"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "room must be at most 128 characters" in captured.err


def test_token_with_invalid_configuration(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAGE_SFU_AUTH_SECRET", "short")
    assert main(["token", "--room", "r", "--identity", "i", "--role", "host"]) == 2
    assert capsys.readouterr().err == (
        "stage-sfu: invalid configuration: auth.secret: must be at least 32 characters "
        "(from STAGE_SFU_AUTH_SECRET)\n"
    )


# --- config check -----------------------------------------------------------------------


def test_config_check_accepts_the_default_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(DEFAULT_TOML)]) == 0
    assert capsys.readouterr().out == f"ok: {DEFAULT_TOML}\n"


def test_config_check_reports_the_bad_setting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, "[media]\nudp_port_min = 50000\nudp_port_max = 40000\n")
    assert main(["config", "check", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "stage-sfu: invalid configuration: "
        "media.udp_port_min: must be <= media.udp_port_max (50000 > 40000)\n"
    )


def test_config_check_reports_a_missing_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["config", "check", str(tmp_path / "absent.toml")]) == 2
    assert "absent.toml: cannot read" in capsys.readouterr().err


def test_config_check_judges_the_file_alone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAGE_SFU_SERVER_PORT", "not-a-port")
    assert main(["config", "check", str(DEFAULT_TOML)]) == 0


def test_config_check_names_a_variable_that_names_no_setting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A section misspelt (TRUN for TURN): load_settings cannot tell it from unrelated
    # variables, so it would be ignored without a word.
    monkeypatch.setenv("STAGE_SFU_TRUN_SECRET", "x")
    monkeypatch.setenv("STAGE_SFU_WORKER_SETTINGS", "{}")  # the front's, not a setting
    assert main(["config", "check", str(DEFAULT_TOML)]) == 0  # the file alone is fine
    captured = capsys.readouterr()
    assert captured.out == f"ok: {DEFAULT_TOML}\n"
    assert captured.err == (
        "stage-sfu: warning: STAGE_SFU_TRUN_SECRET names no setting (no such section): "
        "it is ignored\n"
    )
    assert main(["config", "check", "--env", str(DEFAULT_TOML)]) == 2  # with it: a mistake
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "invalid configuration: STAGE_SFU_TRUN_SECRET names no setting" in captured.err


def test_config_without_subcommand_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == 2
    assert "usage: stage-sfu config" in capsys.readouterr().err


# --- serve ------------------------------------------------------------------------------


def test_serve_with_invalid_config_exits_2_naming_the_setting(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    server: FakeServer,
    logging_config: list[dict[str, Any]],
) -> None:
    path = write(tmp_path, '[server]\nport = "http"\n')
    assert main(["serve", "--config", str(path)]) == 2
    assert capsys.readouterr().err == (
        "stage-sfu: invalid configuration: server.port: expected int, got str\n"
    )
    assert server.calls == []
    assert logging_config == []


def test_serve_with_an_invalid_flag_value_exits_2(
    capsys: pytest.CaptureFixture[str], server: FakeServer
) -> None:
    assert main(["serve", "--port", "70000"]) == 2
    assert "server.port: must be <= 65535" in capsys.readouterr().err
    assert server.calls == []


def test_serve_refuses_the_development_secret_on_a_public_host(
    capsys: pytest.CaptureFixture[str], server: FakeServer
) -> None:
    assert main(["serve", "--host", "0.0.0.0"]) == 2
    assert "invalid configuration: auth.secret:" in capsys.readouterr().err
    assert server.calls == []


def test_serve_passes_flags_over_file_and_configures_logging(
    tmp_path: Path, server: FakeServer, logging_config: list[dict[str, Any]]
) -> None:
    path = write(tmp_path, '[server]\nport = 9001\nlog_level = "debug"\n')
    assert main(["serve", "--config", str(path), "--host", "::1", "--port", "9002"]) == 0
    [settings] = server.calls
    assert (settings.server.host, settings.server.port) == ("::1", 9002)
    assert logging_config == [{"level": "DEBUG", "format": LOG_FORMAT}]


def test_serve_warns_of_a_variable_that_names_no_setting(
    monkeypatch: pytest.MonkeyPatch,
    server: FakeServer,
    logging_config: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("STAGE_SFU_SEVER_PORT", "9000")  # SERVER misspelt
    assert main(["serve"]) == 0
    [settings] = server.calls
    assert settings.server.port != 9000
    assert "STAGE_SFU_SEVER_PORT names no setting (no such section): it is ignored" in [
        r.getMessage() for r in caplog.records if r.levelname == "WARNING"
    ]


def test_serve_with_json_log_format_installs_the_json_formatter(
    tmp_path: Path, server: FakeServer, logging_config: list[dict[str, Any]]
) -> None:
    path = write(tmp_path, '[server]\nlog_format = "json"\n')
    assert main(["serve", "--config", str(path)]) == 0
    [config] = logging_config
    assert config["level"] == "INFO"
    [handler] = config["handlers"]
    assert isinstance(handler.formatter, JsonFormatter)


def test_serve_reports_a_missing_web_server(
    monkeypatch: pytest.MonkeyPatch,
    logging_config: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setitem(sys.modules, "signaling.web.server", None)  # makes the import fail
    assert main(["serve"]) == 1
    assert "the web server cannot be loaded" in caplog.text
