"""The Dockerfile stays consistent with the code, the settings and the repository."""

from __future__ import annotations

import fnmatch
import json
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from signaling.cli import main
from signaling.settings import SettingsError, check_deployment, load_settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
BASE_IMAGE = "python:3.11-slim-bookworm"


@dataclass(frozen=True, slots=True, kw_only=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuations joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    stage = -1
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(stage=stage, keyword=keyword.upper(), args=args.strip()))
    assert pending == "", "dangling line continuation"
    return instructions


INSTRUCTIONS = parse(DOCKERFILE.read_text(encoding="utf-8"))
FINAL_STAGE = max(i.stage for i in INSTRUCTIONS)
DEFAULTS = tomllib.loads((ROOT / "configs" / "default.toml").read_text(encoding="utf-8"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def args_of(keyword: str, *, stage: int | None = None) -> list[str]:
    return [
        i.args for i in INSTRUCTIONS if i.keyword == keyword and (stage is None or i.stage == stage)
    ]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in args_of("ENV", stage=FINAL_STAGE):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def test_two_stages_on_the_same_slim_python_base() -> None:
    stages = [shlex.split(args) for args in args_of("FROM")]
    assert [s[0] for s in stages] == [BASE_IMAGE, BASE_IMAGE]
    assert [s[2].lower() for s in stages] == ["builder", "runtime"]


def test_builder_compiles_wheels_and_runtime_installs_only_wheels() -> None:
    builder_runs = " ".join(args_of("RUN", stage=0))
    assert "build-essential" in builder_runs
    assert "pip wheel --no-deps --wheel-dir /wheels ." in builder_runs
    runtime_runs = " ".join(args_of("RUN", stage=FINAL_STAGE))
    assert "--no-index" in runtime_runs
    assert "build-essential" not in runtime_runs


def test_runtime_runs_as_a_dedicated_non_root_user() -> None:
    users = args_of("USER", stage=FINAL_STAGE)
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert any(f" {user}" in run and "useradd" in run for run in args_of("RUN", stage=FINAL_STAGE))


def test_exposes_signaling_port_and_the_configured_udp_range() -> None:
    exposed = {port for args in args_of("EXPOSE") for port in args.split()}
    server, media = DEFAULTS["server"], DEFAULTS["media"]
    assert f"{server['port']}/tcp" in exposed
    assert f"{media['udp_port_min']}-{media['udp_port_max']}/udp" in exposed


def test_healthcheck_probes_healthz_on_the_default_port() -> None:
    [healthcheck] = args_of("HEALTHCHECK")
    assert " CMD " in f" {healthcheck} "
    assert f"http://127.0.0.1:{DEFAULTS['server']['port']}/healthz" in healthcheck


def _ignored(path: str) -> bool:
    """Last matching .dockerignore pattern wins; a pattern also matches a path's parents."""
    ignored = False
    parts = Path(path).parts
    for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").removeprefix("**/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))] + list(parts)
        if any(fnmatch.fnmatch(candidate, pattern) for candidate in candidates):
            ignored = not negated
    return ignored


def test_every_copied_source_exists_and_reaches_the_build_context() -> None:
    for args in args_of("COPY"):
        words = shlex.split(args)
        if any(word.startswith("--from") for word in words):
            continue
        sources = [word for word in words[:-1] if not word.startswith("--")]
        assert sources, args
        for source in sources:
            assert (ROOT / source).exists(), f"COPY source {source!r} is not in the repository"
    for needed in ["pyproject.toml", "signaling/cli.py", "signaling/settings.py"]:
        assert not _ignored(needed), f"{needed} is excluded by .dockerignore"
    for package in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert not _ignored(package.rstrip("*")), f"package {package} is excluded"


def test_build_context_leaves_out_tests_caches_and_local_files() -> None:
    for path in [
        "tests/unit/test_cli.py",
        ".git/config",
        ".env",
        ".venv/bin/python",
        "signaling/__pycache__/cli.cpython-311.pyc",
    ]:
        assert _ignored(path), path


def test_entrypoint_is_the_declared_console_script_and_cmd_is_a_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    [entrypoint] = args_of("ENTRYPOINT")
    [cmd] = args_of("CMD", stage=FINAL_STAGE)
    assert json.loads(entrypoint) == ["stage-sfu"]
    assert PYPROJECT["project"]["scripts"]["stage-sfu"] == "signaling.cli:main"
    assert main([*json.loads(cmd), "--help"]) == 0
    assert "usage: stage-sfu serve" in capsys.readouterr().out


def test_image_environment_names_real_settings_and_fails_closed_without_a_secret() -> None:
    env = image_env()
    settings_env = {k: v for k, v in env.items() if k.startswith("STAGE_SFU_")}
    assert settings_env["STAGE_SFU_SERVER_HOST"] == "0.0.0.0"
    assert "STAGE_SFU_MEDIA_ANNOUNCED_ADDRESS" in settings_env
    assert "STAGE_SFU_AUTH_SECRET" not in settings_env
    settings = load_settings(env=settings_env)  # unknown or malformed names would raise
    assert settings.auth.dev_tokens is False
    with pytest.raises(SettingsError, match=r"^auth\.secret"):
        check_deployment(settings)
    secret = "an-operator-provided-secret-of-enough-length"
    check_deployment(load_settings(env={**settings_env, "STAGE_SFU_AUTH_SECRET": secret}))


def _readme_docker_runs() -> list[str]:
    """Each `docker run` command in the README, continuation lines joined."""
    text = (ROOT / "README.md").read_text(encoding="utf-8").replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip().startswith("docker run")]


def test_readme_docker_runs_are_valid_deployments_with_a_consistent_udp_range() -> None:
    runs = _readme_docker_runs()
    assert len(runs) >= 2, "the README shows host networking and published ports"
    for run in runs:
        words = shlex.split(run.replace('"$(openssl rand -hex 32)"', "x" * 64))
        env = {w.split("=", 1)[0]: w.split("=", 1)[1] for w in words if w.startswith("STAGE_SFU_")}
        settings = load_settings(env={**image_env(), **env})  # real settings, valid values
        check_deployment(settings)
        media = settings.media
        if "--network" in words:
            continue
        # Published ports: the same UDP range the server binds, and an announced address.
        udp = [w for w in words if w.endswith("/udp")]
        assert udp == [f"{media.udp_port_min}-{media.udp_port_max}:"
                       f"{media.udp_port_min}-{media.udp_port_max}/udp"], run  # fmt: skip
        assert media.announced_address, run
        assert f"{DEFAULTS['server']['port']}:{DEFAULTS['server']['port']}" in words, run
