"""The `batchgate` command: the server side (serve, worker, migrate) and the client commands."""

import ipaddress
import json
import logging
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import psycopg
import typer
import uvicorn

from batchgate.client_cli import register as register_client_commands
from batchgate.config import Settings
from batchgate.effective_config import effective_config, mask_url
from batchgate.logs import configure_logging
from batchgate.route_config import DEFAULT_ROUTES, RouteConfig, RouteConfigError, load_routes
from batchgate.server import build_app, run_worker
from batchgate.storage.base import StoreUnavailable
from batchgate.storage.migrations import SchemaNotReady, describe, migrate

app = typer.Typer(help="batchgate: a self-hosted Message Batches API.", no_args_is_help=True)
register_client_commands(app)
config_app = typer.Typer(help="The configuration batchgate runs with.", no_args_is_help=True)
app.add_typer(config_app, name="config", rich_help_panel="Server")
log = logging.getLogger("batchgate")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        envvar="BATCHGATE_DATABASE_URL",
        help="Where batches are stored: sqlite:///PATH or postgresql://USER@HOST/DATABASE."
        " [default: sqlite:///./batchgate.db]",
    ),
]
LogLevel = Annotated[str, typer.Option(help="debug, info, warning or error.")]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        envvar="BATCHGATE_CONFIG",
        help="TOML file of [[routes]]: which backend serves which models (docs/backends.md)."
        " [default: the simulator serves every model]",
    ),
]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(2)


def start_up(
    database_url: str | None, config: Path | None, log_level: str
) -> tuple[Settings, tuple[RouteConfig, ...]]:
    """Logging, settings and routes, each validated: a bad one stops the start with its name."""
    configure_logging(log_level)
    settings, routes = load_configuration(database_url, config)
    for route in routes:
        log.info("route %s -> %s", route.model, route.backend)
    return settings, routes


def load_configuration(
    database_url: str | None, config: Path | None
) -> tuple[Settings, tuple[RouteConfig, ...]]:
    try:
        settings = Settings.from_env(database_url=database_url)
    except ValueError as error:
        raise fail(f"Cannot start: {error}") from None
    try:
        routes = DEFAULT_ROUTES if config is None else load_routes(config)
    except RouteConfigError as error:
        raise fail(f"Cannot start: {error}") from None
    return settings, tuple(routes)


def exit_cleanly_when_signalled() -> None:
    """Makes SIGTERM and SIGINT end the process with status 0 once uvicorn has shut down.

    uvicorn handles both while it serves, shuts down gracefully, then raises the signal again
    for the handlers that were in place before it: with the defaults the process would die of
    the signal after a clean shutdown, which deploy tools report as a crash.
    """

    def exit_zero(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, exit_zero)


def is_postgres(database_url: str) -> bool:
    return database_url.startswith(("postgresql://", "postgres://"))


@app.callback()
def main() -> None:
    """batchgate: a self-hosted Message Batches API."""


@app.command(rich_help_panel="Server")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    database_url: DatabaseUrl = None,
    log_level: LogLevel = "info",
    config: ConfigFile = None,
    worker: Annotated[
        bool,
        typer.Option(
            help="Run the engine in this process too. --no-worker serves only the HTTP API"
            " (PostgreSQL: run `batchgate worker` processes beside it)."
        ),
    ] = True,
) -> None:
    """Serve the Message Batches API, with the engine that runs the requests."""
    settings, routes = start_up(database_url, config, log_level)
    if not worker and not is_postgres(settings.database_url):
        raise fail("--no-worker needs a PostgreSQL database: SQLite serves one process.")
    if not settings.api_keys:
        if not is_loopback(host):
            raise fail(
                f"Refusing to listen on {host} without API keys: anyone who can reach it could"
                " read and create batches. Set BATCHGATE_API_KEYS=key1,key2 or use 127.0.0.1."
            )
        log.warning(
            "!!! NO API KEYS CONFIGURED: any key is accepted. Fine on loopback for local work;"
            " set BATCHGATE_API_KEYS before sharing this server. !!!"
        )
    try:
        application = build_app(settings, routes, with_worker=worker)
    except (SchemaNotReady, StoreUnavailable) as error:
        raise fail(f"Cannot start: {error}") from None
    log.info("batchgate on http://%s:%d, database %s", host, port, mask_url(settings.database_url))
    exit_cleanly_when_signalled()
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        log_config=None,  # uvicorn's own lines go through configure_logging's handler
        timeout_graceful_shutdown=max(1, round(settings.shutdown_seconds)),
    )


@app.command(name="worker", rich_help_panel="Server")
def worker_command(
    database_url: DatabaseUrl = None,
    log_level: LogLevel = "info",
    config: ConfigFile = None,
) -> None:
    """Run only the engine against a shared PostgreSQL database (any number of them)."""
    settings, routes = start_up(database_url, config, log_level)
    if not is_postgres(settings.database_url):
        raise fail("`batchgate worker` needs a PostgreSQL database: SQLite serves one process.")
    log.info("batchgate worker on %s", describe(settings.database_url))
    try:
        run_worker(settings, routes)
    except (SchemaNotReady, StoreUnavailable) as error:
        raise fail(f"Cannot start: {error}") from None


@app.command(name="migrate", rich_help_panel="Server")
def migrate_command(database_url: DatabaseUrl = None) -> None:
    """Create or upgrade the PostgreSQL schema (SQLite needs nothing: it is created on start)."""
    settings = Settings.from_env(database_url=database_url)
    if not is_postgres(settings.database_url):
        typer.echo("SQLite creates its schema on start: nothing to migrate.")
        return
    try:
        applied = migrate(settings.database_url)
    except (SchemaNotReady, psycopg.OperationalError) as error:
        raise fail(f"Cannot migrate: {error}") from None
    where = describe(settings.database_url)
    if applied:
        typer.echo(f"Applied migrations {applied} to {where}.")
    else:
        typer.echo(f"{where} is up to date.")


@config_app.command(name="show")
def config_show(database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """Print the effective settings (environment and flags) and routes as JSON, secrets masked."""
    settings, routes = load_configuration(database_url, config)
    typer.echo(json.dumps(effective_config(settings, routes), indent=2))
