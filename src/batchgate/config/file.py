"""The configuration file (`--config FILE` or BATCHGATE_CONFIG) and the configuration it makes.

The file is TOML with three optional parts: a `[settings]` table, which sets any setting by its
name (settings.py), `[[routes]]`, which send models to backends (routes.py), and `[[prices]]`,
what tokens cost (prices.py). Without routes, the simulator serves every model. The file is
read and checked once, at start.
"""

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from batchgate.config.prices import NO_PRICES, PriceTable, read_prices
from batchgate.config.routes import DEFAULT_ROUTES, RouteConfig, read_routes
from batchgate.config.settings import (
    ConfigError,
    Layer,
    Settings,
    environment_layer,
    file_layer,
    load_settings,
)

PARTS = ("settings", "routes", "prices")


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    settings: Layer
    routes: tuple[RouteConfig, ...]
    prices: PriceTable = NO_PRICES


@dataclass(frozen=True)
class Configuration:
    """What a process runs with, and where each setting came from (config.load_settings)."""

    settings: Settings
    sources: Mapping[str, str]
    routes: tuple[RouteConfig, ...]
    prices: PriceTable = NO_PRICES


def read_config_file(path: str | Path, environ: Mapping[str, str] = os.environ) -> ConfigFile:
    """Reads and checks the file; raises ConfigError naming the file, the key and the problem."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: is not valid TOML: {error}") from None
    unknown = sorted(set(document) - set(PARTS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown key {unknown[0]!r};"
            " the file holds [settings], [[routes]] and [[prices]]"
        )
    settings = file_layer(document.get("settings", {}), path)
    prices = read_prices(document["prices"], path) if "prices" in document else NO_PRICES
    if "routes" not in document:
        return ConfigFile(path, settings, DEFAULT_ROUTES, prices)
    return ConfigFile(path, settings, read_routes(document["routes"], path, environ), prices)


def load_configuration(
    path: Path | None, flags: Layer, environ: Mapping[str, str] = os.environ
) -> Configuration:
    """The settings of the file (if any), under the environment's, under `flags`; the routes of
    the file. Raises ConfigError naming the setting and where it was set."""
    file = None if path is None else read_config_file(path, environ)
    settings, sources = load_settings(
        file.settings if file is not None else {}, environment_layer(environ), flags
    )
    if file is None:
        return Configuration(settings, sources, DEFAULT_ROUTES)
    return Configuration(settings, sources, file.routes, file.prices)
