"""compose.yaml (stage-sfu with coturn) is valid YAML whose two services agree: the SFU's
settings load and pass the deployment checks, and coturn checks the credentials the SFU
mints, on the port the SFU names, relaying from ports the SFU does not use."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from signaling.ice_urls import parse_ice_url
from signaling.settings import ENV_PREFIX, check_deployment, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
# ${NAME}, ${NAME:?message}, ${NAME:-default}: Compose's interpolation.
VARIABLE = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")
ENV_FILE = {
    "STAGE_SFU_AUTH_SECRET": "a-join-token-secret-that-is-long-enough-for-hs256",
    "TURN_SECRET": "a-turn-secret-shared-with-coturn",
    "HOST_IP": "10.0.0.5",
    "PUBLIC_IP": "203.0.113.10",
    "TURN_HOST": "turn.example.com",
}


def interpolate(text: str) -> str:
    return VARIABLE.sub(lambda match: ENV_FILE[match[1]], text)


def sfu_environment() -> dict[str, str]:
    environment: dict[str, Any] = COMPOSE["services"]["sfu"]["environment"]
    return {name: interpolate(str(value)) for name, value in environment.items()}


def coturn_options() -> dict[str, list[str]]:
    """coturn's `--name=value` options (a flag has the value "")."""
    options: dict[str, list[str]] = {}
    for word in COMPOSE["services"]["coturn"]["command"]:
        name, _, value = interpolate(str(word)).partition("=")
        options.setdefault(name, []).append(value)
    return options


def test_both_services_use_the_host_network_and_every_variable_is_documented() -> None:
    assert set(COMPOSE["services"]) == {"sfu", "coturn"}
    for service in COMPOSE["services"].values():
        assert service["network_mode"] == "host"
    text = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    header = text.split("\nname:", 1)[0]
    for name in set(VARIABLE.findall(text)):
        assert f"#   {name}=" in header, f"{name} is not explained at the top of compose.yaml"
    assert COMPOSE["services"]["sfu"]["build"] == "."
    assert (ROOT / "Dockerfile").is_file()


def test_the_sfu_settings_load_and_pass_the_deployment_checks() -> None:
    environment = sfu_environment()
    assert all(name.startswith(ENV_PREFIX) for name in environment)
    # The image's own ENV lines (Dockerfile) come first; compose adds these.
    settings = load_settings(
        env={
            "STAGE_SFU_SERVER_HOST": "0.0.0.0",
            "STAGE_SFU_AUTH_DEV_TOKENS": "false",
            **environment,
        }
    )
    assert check_deployment(settings) == ()
    assert settings.turn.secret == ENV_FILE["TURN_SECRET"]
    assert [parse_ice_url(url).transport for url in settings.turn.urls] == ["udp", "tcp"]


def test_coturn_checks_the_credentials_the_sfu_mints_where_the_sfu_says() -> None:
    settings = load_settings(env=sfu_environment())
    options = coturn_options()
    assert "--use-auth-secret" in options
    assert options["--static-auth-secret"] == [settings.turn.secret]
    assert options["--listening-ip"] == [ENV_FILE["HOST_IP"]]
    for url in map(parse_ice_url, settings.turn.urls):
        assert url.host == ENV_FILE["TURN_HOST"]
        assert options["--listening-port"] == [str(url.port)]


def test_coturn_relays_to_the_sfu_only_from_ports_the_sfu_does_not_bind() -> None:
    settings = load_settings(env=sfu_environment())
    options = coturn_options()
    relay = range(int(options["--min-port"][0]), int(options["--max-port"][0]) + 1)
    media = range(settings.media.udp_port_min, settings.media.udp_port_max + 1)
    assert not set(relay) & set(media)
    assert options["--denied-peer-ip"] == [
        "0.0.0.0-255.255.255.255",
        "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ]
    assert set(options["--allowed-peer-ip"]) == {
        *settings.media.ice_addresses,
        settings.media.announced_address,
    }
