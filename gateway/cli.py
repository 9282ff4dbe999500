"""``gateway`` command line: serve, migrate, demo, token, export-schema."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from gateway.auth.principal import Role
from gateway.auth.tokens import TokenService, generate_secret
from gateway.db import Database
from gateway.settings import Environment, Settings, SettingsError

if TYPE_CHECKING:
    import uvicorn

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``90``, ``90s``, ``30m``, ``12h``, ``7d``."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 3600, 30m, 12h, 7d)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def parse_role(text: str) -> Role:
    try:
        return Role.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


async def _migrate(settings: Settings) -> str | None:
    from gateway.db.migrate import current_revision, upgrade

    db = Database(settings.database_url)
    try:
        await upgrade(db)
        return await current_revision(db)
    finally:
        await db.dispose()


async def _load_demo(settings: Settings) -> str:
    from gateway.demo import load_demo

    await _migrate(settings)
    db = Database(settings.database_url)
    try:
        summary = await load_demo(db)
    finally:
        await db.dispose()
    users = ", ".join(f"{u.user_id} ({u.role.value})" for u in summary.users)
    return f"demo project {summary.project!r}: tables {', '.join(summary.tables)}; users {users}"


def uvicorn_config(app: Any, **options: Any) -> uvicorn.Config:
    """How the gateway runs under uvicorn, for ``gateway serve`` and the tests alike: without
    a ``server`` header (it tells attackers what to try), with the transport limits of the
    app's settings (request heads, open connections, WebSocket messages: see
    ``gateway/transport.py``), plus the caller's ``options``."""
    from gateway.transport import ConnectionLimits, GatewayConfig

    settings = getattr(app, "settings", None)
    if not isinstance(settings, Settings):  # another ASGI app: the default limits
        settings = Settings.model_construct()
    return GatewayConfig(
        app,
        connection_limits=ConnectionLimits.from_settings(settings),
        server_header=False,
        ws_max_size=settings.ws_max_message_bytes,
        ws_per_message_deflate=settings.ws_compression,
        **options,
    )


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:

    from gateway.app import create_app
    from gateway.drain import DrainingServer
    from gateway.memory import tune_for_serving
    from gateway.observability.logs import logging_config

    updates: dict[str, object] = {}
    if args.host:
        updates["host"] = args.host
    if args.port is not None:
        updates["port"] = args.port
    if args.no_migrate:
        updates["migrate_on_start"] = False
    generated_key = settings.environment is Environment.DEVELOPMENT and not settings.has_jwt_key
    if generated_key:
        updates["jwt_secret"] = generate_secret()
    settings = settings.model_copy(update=updates)
    settings.check_can_serve()
    if args.demo:
        print(asyncio.run(_load_demo(settings)), flush=True)
    app = create_app(settings)
    url = f"http://{settings.host}:{settings.port}/graphql"
    print(f"GraphiQL and GraphQL: {url}", flush=True)
    if generated_key:
        token = TokenService(settings).issue("admin", Role.ADMIN, timedelta(hours=12))
        print(
            "No GATEWAY_JWT_SECRET set: generated a key for this run (tokens die with it).\n"
            f"Admin token (12 h), send as 'Authorization: Bearer <token>':\n{token}",
            flush=True,
        )
    server = DrainingServer(  # SIGTERM drains (see gateway/drain.py)
        uvicorn_config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=args.log_level,
            # JSON lines in production, with request ids; the gateway's own access log.
            log_config=logging_config(settings, args.log_level),
            access_log=False,
        ),
        app.state.drain,
    )
    tune_for_serving()
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it stopped on
        server.run()
    return 0 if server.started else 3  # uvicorn.run's exit code for a failed start-up


def cmd_migrate(_: argparse.Namespace, settings: Settings) -> int:
    print(f"database schema at revision {asyncio.run(_migrate(settings))}")
    return 0


def cmd_demo(_: argparse.Namespace, settings: Settings) -> int:
    print(asyncio.run(_load_demo(settings)))
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.has_jwt_key:
        raise SettingsError(
            "no JWT key: set GATEWAY_JWT_SECRET (or GATEWAY_JWT_PUBLIC_KEY and "
            "GATEWAY_JWT_PRIVATE_KEY). Without one, 'gateway serve' prints a token for the "
            "key it generates for its run."
        )
    print(TokenService(settings).issue(args.user, args.role, args.expires))
    return 0


def cmd_export_schema(_: argparse.Namespace, __: Settings) -> int:
    from gateway.graphql.schema import export_sdl

    sys.stdout.write(export_sdl())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Sync Gateway: one GraphQL endpoint for syncing offline-first devices. "
        "Settings come from GATEWAY_* environment variables (and .env).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    serve = add(
        "serve", cmd_serve, "run the gateway (GraphQL, GraphiQL and WebSockets at /graphql)"
    )
    serve.add_argument("--host", help="address to listen on (default: GATEWAY_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: GATEWAY_PORT or 8000)")
    serve.add_argument("--demo", action="store_true", help="load the demo project first")
    serve.add_argument(
        "--no-migrate", action="store_true", help="do not apply pending migrations on start"
    )
    serve.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    add("migrate", cmd_migrate, "bring the database schema up to date")
    add("demo", cmd_demo, "load a demo project with tables, users, grants and actions")
    token = add("token", cmd_token, "print a signed JWT for local use")
    token.add_argument("--user", required=True, help="user id (the 'sub' claim)")
    token.add_argument(
        "--role", required=True, type=parse_role, help="patient, professional or admin"
    )
    token.add_argument(
        "--expires", type=parse_duration, default=None, help="lifetime, e.g. 30m, 12h, 7d"
    )
    add("export-schema", cmd_export_schema, "print the GraphQL schema (SDL)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args, Settings())
    except (SettingsError, ValidationError) as exc:
        print(f"gateway: error: {exc}", file=sys.stderr)
        return 2
