"""The ``stage-sfu`` command: serve, mint join tokens, check configuration files.

Exit codes: 0 success, 1 runtime failure, 2 bad usage or invalid configuration.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable

from sfu.clock import SYSTEM_CLOCK
from signaling import __version__
from signaling.auth import issue_token
from signaling.logs import json_handler
from signaling.roles import Role
from signaling.settings import (
    LogFormat,
    Settings,
    SettingsError,
    check_deployment,
    load_settings,
    unknown_env_vars,
)

__all__ = ["LOG_FORMAT", "main"]

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
PROG = "stage-sfu"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors; keep main() callable
        return _exit_code(exc.code)
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        return _usage(parser)
    return handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Selective forwarding unit for stage-and-audience rooms."
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server until interrupted")
    _add_config(serve)
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", type=int, help="listen port (overrides server.port)")
    serve.set_defaults(handler=_serve)

    token = commands.add_parser(
        "token", help="print a signed join token", description="Print a signed join token."
    )
    _add_config(token)
    token.add_argument("--room", required=True, help="room the token admits to")
    token.add_argument("--identity", required=True, help="stable participant identity (sub)")
    token.add_argument("--name", help="display name (default: the identity)")
    token.add_argument("--role", required=True, choices=[role.value for role in Role])
    token.add_argument(
        "--ttl", type=float, metavar="SECONDS", help="lifetime (default: auth.token_ttl)"
    )
    token.set_defaults(handler=_token)

    config = commands.add_parser("config", help="work with configuration files")
    config.set_defaults(handler=lambda _: _usage(config))
    config_commands = config.add_subparsers(title="commands", metavar="COMMAND")
    check = config_commands.add_parser(
        "check",
        help="validate a configuration file",
        description="Validate FILE on its own: environment variables are not applied "
        "unless --env is given.",
    )
    check.add_argument("file", metavar="FILE")
    check.add_argument(
        "--env",
        action="store_true",
        help="apply STAGE_SFU_* variables over the file, as serve does (for secrets kept "
        "out of the file, such as STAGE_SFU_TURN_SECRET)",
    )
    check.set_defaults(handler=_config_check)
    return parser


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML settings file (see configs/default.toml); STAGE_SFU_* variables override it",
    )


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(
            args.config, overrides={"server.host": args.host, "server.port": args.port}
        )
        warnings = (*check_deployment(settings), *map(_unknown_variable, unknown_env_vars()))
    except SettingsError as exc:
        return _invalid(exc)
    level = settings.server.log_level.upper()
    if settings.server.log_format is LogFormat.JSON:
        logging.basicConfig(level=level, handlers=[json_handler()])
    else:
        logging.basicConfig(level=level, format=LOG_FORMAT)
    for warning in warnings:
        logger.warning("%s", warning)
    try:
        serve = _load_server()
    except ImportError as exc:
        logger.error("the web server cannot be loaded: %s", exc)
        return EXIT_FAILURE
    try:
        serve(settings)
    except KeyboardInterrupt:  # a second Ctrl+C during shutdown; nothing left to report
        return 130
    return EXIT_OK


def _load_server() -> Callable[[Settings], object]:
    # Imported lazily so the other commands never load aiohttp or the media stack; by name so
    # the CLI type-checks on its own.
    module = importlib.import_module("signaling.web.server")
    serve: Callable[[Settings], object] = module.serve
    return serve


def _token(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        return _invalid(exc)
    try:
        token = issue_token(
            settings.auth.secret,
            room=args.room,
            identity=args.identity,
            name=args.identity if args.name is None else args.name,
            role=Role(args.role),
            ttl=settings.auth.token_ttl if args.ttl is None else args.ttl,
            now=SYSTEM_CLOCK.wall(),
        )
    except ValueError as exc:
        return _fail(f"{PROG}: {exc}", EXIT_USAGE)
    sys.stdout.write(token + "\n")
    return EXIT_OK


def _config_check(args: argparse.Namespace) -> int:
    try:
        load_settings(args.file, env=None if args.env else {})
    except SettingsError as exc:
        return _invalid(exc)
    unknown = [_unknown_variable(var) for var in unknown_env_vars()]
    if unknown and args.env:  # the configuration checked includes them: a mistake in it
        return _fail("\n".join(f"{PROG}: invalid configuration: {u}" for u in unknown), EXIT_USAGE)
    for problem in unknown:  # the file alone is fine; say so, and what the server will say
        sys.stderr.write(f"{PROG}: warning: {problem}\n")
    sys.stdout.write(f"ok: {args.file}\n")
    return EXIT_OK


def _unknown_variable(var: str) -> str:
    return f"{var} names no setting (no such section): it is ignored"


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    return EXIT_USAGE


def _invalid(exc: SettingsError) -> int:
    return _fail(f"{PROG}: invalid configuration: {exc}", EXIT_USAGE)


def _fail(message: str, code: int) -> int:
    sys.stderr.write(message + "\n")
    return code


def _exit_code(code: str | int | None) -> int:
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return EXIT_FAILURE
