"""The server-side commands: serve, worker, migrate and config show; `register` adds them.

Each command imports the server, the engine and psycopg itself, when it runs: every launch of
`batchgate` (`--help`, `config show`, the client commands) would otherwise spend a second
loading them.
"""

import ipaddress
import json
import logging
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from batchgate.cli.help import add_command
from batchgate.cli.options import ConfigFile, DatabaseUrl, configure, fail
from batchgate.config.effective import effective_config, mask_url, secrets_of
from batchgate.config.file import Configuration
from batchgate.config.routes import capped_width_warnings
from batchgate.observability.logs import configure_logging
from batchgate.storage.base import StoreUnavailable, migrate_database, schema_status_of
from batchgate.storage.migrations import SchemaNotReady

if TYPE_CHECKING:
    from batchgate.api.state import AppState

log = logging.getLogger("batchgate")
PANEL = "Server"

LogLevel = Annotated[str, typer.Option(help="debug, info, warning or error.")]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def start_up(database_url: str | None, config: Path | None, log_level: str) -> Configuration:
    """Settings and routes, each validated (a bad one stops the start with its name), then the
    logging, which redacts their keys."""
    configuration = configure(database_url, config)
    configure_logging(log_level, secrets=secrets_of(configuration))
    for route in configuration.routes:
        log.info("route %s -> %s", route.model, route.backend)
    for warning in capped_width_warnings(configuration.routes, configuration.settings):
        log.warning("%s", warning)
    return configuration


def exit_cleanly_when_signalled() -> None:
    """Makes SIGTERM and SIGINT end the process with status 0 once uvicorn has shut down.

    uvicorn handles both while it serves and, once shut down, raises again the signals it handled
    (a second one, which cuts the drain short: api/http_server.py) for the handlers that were in
    place before it: with the defaults the process would die of the signal after a clean
    shutdown, which deploy tools report as a crash.
    """

    def exit_zero(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, exit_zero)


def is_postgres(database_url: str) -> bool:
    return database_url.startswith(("postgresql://", "postgres://"))


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
    from batchgate.api import http_server
    from batchgate.server import build_app

    configuration = start_up(database_url, config, log_level)
    settings, routes = configuration.settings, configuration.routes
    if not worker and not is_postgres(settings.database_url):
        raise fail("--no-worker needs a PostgreSQL database: SQLite serves one process.")
    try:
        application = build_app(settings, routes, configuration.prices, with_worker=worker)
        state: AppState = application.state.batchgate
        keys_configured = state.keyring.any_configured()
    except (SchemaNotReady, StoreUnavailable) as error:
        raise fail(f"Cannot start: {error}") from None
    if not keys_configured:
        if not is_loopback(host):
            state.store.close()
            raise fail(
                f"Refusing to listen on {host} without API keys: anyone who can reach it could"
                " read and create batches. Create one with `batchgate keys create --workspace"
                " NAME`, set BATCHGATE_API_KEYS=key1,key2 or use 127.0.0.1."
            )
        log.warning(
            "!!! NO API KEYS CONFIGURED: any key is accepted. Fine on loopback for local work;"
            " create keys (`batchgate keys create`) or set BATCHGATE_API_KEYS before sharing"
            " this server. !!!"
        )
    log.info("batchgate on http://%s:%d, database %s", host, port, mask_url(settings.database_url))
    exit_cleanly_when_signalled()
    http_server.serve(
        application,
        host=host,
        port=port,
        log_level=log_level,
        drain_seconds=settings.shutdown_seconds,
        begin_drain=state.begin_shutdown,
    )


def worker_command(
    database_url: DatabaseUrl = None,
    log_level: LogLevel = "info",
    config: ConfigFile = None,
) -> None:
    """Run only the engine against a shared PostgreSQL database (any number of them)."""
    from batchgate.server import run_worker
    from batchgate.storage.migrations.postgres import describe

    configuration = start_up(database_url, config, log_level)
    settings, routes = configuration.settings, configuration.routes
    if not is_postgres(settings.database_url):
        raise fail("`batchgate worker` needs a PostgreSQL database: SQLite serves one process.")
    log.info("batchgate worker on %s", describe(settings.database_url))
    try:
        run_worker(settings, routes, configuration.prices)
    except (SchemaNotReady, StoreUnavailable) as error:
        raise fail(f"Cannot start: {error}") from None


def migrate_command(
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    status: Annotated[
        bool,
        typer.Option(
            "--status",
            help="Print the version the database is at and what is pending; change nothing.",
        ),
    ] = False,
) -> None:
    """Create or upgrade the schema. PostgreSQL needs it before `serve` and `worker` start, and
    after each upgrade of batchgate; SQLite upgrades itself on start (this does it ahead)."""
    import psycopg

    from batchgate.storage.migrations.postgres import describe

    url = configure(database_url, config).settings.database_url
    where = describe(url) if is_postgres(url) else mask_url(url)
    try:
        if status:
            typer.echo(f"{where}: {schema_status_of(url).describe()}")
            return
        applied = migrate_database(url)
    except (SchemaNotReady, StoreUnavailable, psycopg.OperationalError) as error:
        raise fail(f"Cannot migrate: {error}") from None
    if applied:
        typer.echo(f"Applied migrations {applied} to {where}.")
    else:
        typer.echo(f"{where} is up to date.")


def config_show(database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """Print the effective settings, where each came from, and the routes as JSON, secrets
    masked."""
    configuration = configure(database_url, config)
    typer.echo(json.dumps(effective_config(configuration), indent=2))
    for warning in capped_width_warnings(configuration.routes, configuration.settings):
        typer.echo(f"warning: {warning}", err=True)


def register(app: typer.Typer) -> None:
    add_command(app, serve, "serve", panel=PANEL)
    add_command(app, worker_command, "worker", panel=PANEL)
    add_command(app, migrate_command, "migrate", panel=PANEL)
    config_app = typer.Typer(help="The configuration batchgate runs with.", no_args_is_help=True)
    add_command(config_app, config_show, "show")
    app.add_typer(config_app, name="config", rich_help_panel=PANEL)
