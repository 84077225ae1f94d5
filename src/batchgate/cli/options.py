"""What the server-side commands of `batchgate` share: the database and configuration options,
reading the configuration they name, and how they fail."""

from pathlib import Path
from typing import Annotated

import typer

from batchgate.config.file import Configuration, load_configuration
from batchgate.config.settings import ConfigError

# Not read from BATCHGATE_DATABASE_URL by typer: the settings' layers do that, below the flag.
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        help="Where batches are stored: sqlite:///PATH or postgresql://USER@HOST/DATABASE."
        " Wins over BATCHGATE_DATABASE_URL and the configuration file.",
        show_default="sqlite:///./batchgate.db",
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        envvar="BATCHGATE_CONFIG",
        help="TOML configuration file: settings (under the environment and flags) and routes"
        " (which backend serves which models), see docs/configuration.md.",
        show_default="none: the simulator serves every model",
    ),
]


def fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(2)


def configure(database_url: str | None, config: Path | None) -> Configuration:
    flags = {} if database_url is None else {"database_url": (database_url, "--database-url")}
    try:
        return load_configuration(config, flags)
    except ConfigError as error:
        raise fail(f"Cannot start: {error}") from None
