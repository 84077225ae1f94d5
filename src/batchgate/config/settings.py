"""Settings: every knob batchgate reads, its default, and the layers that may set it.

Each setting takes the value of the last layer that sets it: its default, then the `[settings]`
table of the configuration file (`--config`), then its environment variable BATCHGATE_<NAME>,
then a command-line flag. Every value is checked as it is read: a bad one stops the start with a
message naming the setting and where it was set.
"""

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

DAY = 86_400.0
DEFAULT = "default"
# Settings whose values can hold secrets (keys, a database password): never quoted in an error.
SECRET_SETTINGS = frozenset({"api_keys", "database_url"})


class ConfigError(Exception):
    """A setting or the configuration file cannot be used; the message says which and where."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///./batchgate.db"
    # Connections each process may open to PostgreSQL (plus one for LISTEN in a worker, and in
    # an API process with followers of results).
    database_pool_size: int = 10
    # Comma-separated in BATCHGATE_API_KEYS. Empty: any key is accepted (loopback only).
    api_keys: tuple[str, ...] = ()
    # A batch not finished this long after creation ends with its remaining requests expired.
    expiry_seconds: float = DAY
    # Results are kept this long after creation, then the batch is archived.
    retention_seconds: float = 29 * DAY
    max_body_bytes: int = 256 * 1024 * 1024
    max_requests_per_batch: int = 100_000
    # The largest file POST /v1/files takes (the OpenAI Batch API), and the most lines a batch's
    # input file may have.
    openai_max_file_bytes: int = 200 * 1024 * 1024
    openai_max_batch_lines: int = 50_000
    # An uploaded file of purpose `batch` without `expires_after` expires this long after its
    # upload, as OpenAI's do; 0 keeps such files until deleted.
    openai_batch_file_expiry_seconds: float = 30 * DAY
    # Requests stored, leased and written back together.
    chunk_size: int = 1000
    # Backend calls one worker keeps in flight at once.
    max_concurrency: int = 256
    # How long a worker's claim on a chunk lasts without renewal before another may take it.
    lease_seconds: float = 30.0
    # How often results of a chunk still running are committed (live counts, crash progress).
    flush_seconds: float = 0.5
    # On SIGTERM/SIGINT, how long requests already started may take to finish and be committed.
    shutdown_seconds: float = 10.0
    simulator_latency_ms: float = 0.0
    simulator_fault_rate: float = 0.0
    simulator_fault_types: tuple[str, ...] = ("api_error", "overloaded_error")
    # A create body not received in full within this long is refused (408): a client that
    # trickles its bytes (slowloris) cannot hold a connection and its buffer for ever.
    body_timeout_seconds: float = 300.0
    # How long an Idempotency-Key of a create is remembered (service/idempotency.py).
    idempotency_seconds: float = DAY
    # A route's waiting requests are started in turns across workspaces: "name=weight" entries
    # give a workspace that many requests a turn (default 1), e.g. ("research=3",).
    workspace_weights: tuple[str, ...] = ()
    # Webhook URLs may resolve to loopback, link-local or private addresses (refused by default:
    # a webhook must not reach the server's own network). Tests and local setups set it.
    webhook_allow_private_addresses: bool = False
    # The webhook retry schedule's delays are multiplied by this (5 s, 5 min, 30 min, ... about
    # 3 days at 1.0); tests compress it.
    webhook_retry_scale: float = 1.0
    # batch.progress events are kept this long (the other events as long as results,
    # retention_seconds): a running batch writes one a second.
    progress_event_seconds: float = DAY


# A layer of settings: the value of each setting it sets, and where it was set.
Layer = Mapping[str, tuple[Any, str]]


def load_settings(*layers: Layer) -> tuple[Settings, dict[str, str]]:
    """The settings, each from the last layer that sets it, and where each came from:
    "default" when no layer sets it."""
    values: dict[str, Any] = {}
    sources = {setting.name: DEFAULT for setting in fields(Settings)}
    for layer in layers:
        for name, (value, source) in layer.items():
            values[name], sources[name] = value, source
    settings = Settings(**values)
    workspace_weights(settings.workspace_weights, sources["workspace_weights"])
    return settings, sources


def workspace_weights(entries: tuple[str, ...], source: str = DEFAULT) -> dict[str, int]:
    """Workspace name → weight, from "name=weight" entries; `source` names where they were set."""
    weights = {}
    for entry in entries:
        name, _, weight = entry.partition("=")
        if not name.strip() or not weight.strip().isdigit() or int(weight) < 1:
            raise ConfigError(
                f"{source}: workspace_weights entry {entry!r} must be name=weight,"
                " the weight a whole number of at least 1"
            )
        weights[name.strip()] = int(weight)
    return weights


def file_layer(table: object, path: Path) -> Layer:
    """The settings of a configuration file's `[settings]` table, each checked."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: settings must be a table ([settings])")
    defaults = {setting.name: setting.default for setting in fields(Settings)}
    layer = {}
    for name, value in table.items():
        if name not in defaults:
            close = difflib.get_close_matches(name, defaults, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ConfigError(f"{path}: [settings] {name} is not a setting{hint}")
        checked = _from_toml(
            defaults[name], value, f"{path}: [settings] {name}", name not in SECRET_SETTINGS
        )
        layer[name] = (checked, str(path))
    return layer


def environment_layer(environ: Mapping[str, str] = os.environ) -> Layer:
    """The settings set by BATCHGATE_<NAME> variables, each checked."""
    layer = {}
    for setting in fields(Settings):
        variable = f"BATCHGATE_{setting.name.upper()}"
        raw = environ.get(variable)
        if raw is not None:
            layer[setting.name] = (
                _from_text(setting.default, raw, f"{variable}={raw!r}"),
                variable,
            )
    return layer


def _from_text(default: Any, raw: str, what: str) -> Any:
    """An environment variable's text as the type of the setting's default."""
    try:
        if isinstance(default, tuple):
            return tuple(item.strip() for item in raw.split(",") if item.strip())
        if isinstance(default, bool):
            return raw.lower() in ("1", "true", "yes", "on")
        return type(default)(raw)
    except ValueError:
        raise ConfigError(f"{what} is not a valid {type(default).__name__}") from None


def _from_toml(default: Any, value: object, what: str, quoted: bool) -> Any:
    """A TOML value, if it has the type of the setting's default (a whole number is a number);
    the error quotes the value only when `quoted`."""
    if isinstance(default, tuple):
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return tuple(value)
        expected = "a list of strings"
    elif isinstance(default, bool):
        if isinstance(value, bool):
            return value
        expected = "true or false"
    elif isinstance(default, float):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        expected = "a number"
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        expected = "a whole number"
    else:
        if isinstance(value, str):
            return value
        expected = "a string"
    given = (
        repr(value) if quoted else f"a {type(value).__name__} (value not shown: it may be secret)"
    )
    raise ConfigError(f"{what} must be {expected}, not {given}")
