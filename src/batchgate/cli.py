"""The `batchgate` command."""

import ipaddress
import logging
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from batchgate.config import Settings
from batchgate.route_config import DEFAULT_ROUTES, RouteConfigError, load_routes
from batchgate.server import build_app

app = typer.Typer(help="batchgate: a self-hosted Message Batches API.", no_args_is_help=True)
log = logging.getLogger("batchgate")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.callback()
def main() -> None:
    """batchgate: a self-hosted Message Batches API."""


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="BATCHGATE_DATABASE_URL",
            help="Where batches are stored. [default: sqlite:///./batchgate.db]",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    config: Annotated[
        Path | None,
        typer.Option(
            envvar="BATCHGATE_CONFIG",
            help="TOML file of [[routes]]: which backend serves which models (docs/backends.md)."
            " [default: the simulator serves every model]",
        ),
    ] = None,
) -> None:
    """Serve the Message Batches API, with the engine that runs the requests."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env(database_url=database_url)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    try:
        routes = DEFAULT_ROUTES if config is None else load_routes(config)
    except RouteConfigError as error:
        typer.echo(f"Cannot start: {error}", err=True)
        raise typer.Exit(2) from None
    if not settings.api_keys:
        if not is_loopback(host):
            typer.echo(
                f"Refusing to listen on {host} without API keys: anyone who can reach it could"
                " read and create batches. Set BATCHGATE_API_KEYS=key1,key2 or use 127.0.0.1.",
                err=True,
            )
            raise typer.Exit(2)
        log.warning(
            "!!! NO API KEYS CONFIGURED: any key is accepted. Fine on loopback for local work;"
            " set BATCHGATE_API_KEYS before sharing this server. !!!"
        )
    log.info("batchgate on http://%s:%d, database %s", host, port, settings.database_url)
    for route in routes:
        log.info("route %s -> %s", route.model, route.backend)
    uvicorn.run(
        build_app(settings, routes),
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
