"""Routes: which backend serves which models, with what limits (`[[routes]]` of `--config`).

Each `[[routes]]` entry names a glob on `params.model` and a backend; the first match wins.
The entries are read and checked once, at start: a mistake stops the server with a message
naming the route and the key, rather than failing requests later.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batchgate.config.settings import ConfigError, Settings

BACKENDS = ("simulator", "anthropic", "openai", "local")
DEFAULT_MAX_RETRIES = 8
DEFAULT_BACKOFF_SECONDS = 0.5
DEFAULT_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class RouteConfig:
    """One `[[routes]]` entry. Options a backend does not take stay None."""

    model: str
    backend: str
    base_url: str | None = None
    api_key_env: str | None = None
    # Read from `api_key_env` at start; kept out of repr so that it never reaches a log.
    api_key: str | None = field(default=None, repr=False)
    upstream_model: str | None = None
    max_concurrency: int | None = None
    requests_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None
    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    latency_ms: float | None = None
    fault_rate: float | None = None
    fault_types: tuple[str, ...] | None = None
    model_path: str | None = None
    n_ctx: int = 2048
    n_threads: int | None = None

    @property
    def has_limits(self) -> bool:
        return any(
            limit is not None
            for limit in (
                self.max_concurrency,
                self.requests_per_minute,
                self.input_tokens_per_minute,
                self.output_tokens_per_minute,
            )
        )


# Every model goes to the simulator, with the knobs of Settings.
DEFAULT_ROUTES = (RouteConfig(model="*", backend="simulator"),)


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def _url(value: object) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


def _positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("must be a whole number of at least 1")
    return value


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("must be a whole number of at least 0")
    return value


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError("must be a number greater than 0")
    return float(value)


def _non_negative(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError("must be a number of at least 0")
    return float(value)


def _fraction(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError("must be a number from 0 to 1")
    return float(value)


def _texts(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list of strings")
    return tuple(_text(item) for item in value)


_CHECKS: dict[str, Callable[[object], Any]] = {
    "model": _text,
    "backend": _text,
    "max_concurrency": _positive_int,
    "requests_per_minute": _positive_int,
    "input_tokens_per_minute": _positive_int,
    "output_tokens_per_minute": _positive_int,
    "max_retries": _count,
    "backoff_seconds": _non_negative,
    "base_url": _url,
    "api_key_env": _text,
    "upstream_model": _text,
    "timeout_seconds": _seconds,
    "latency_ms": _non_negative,
    "fault_rate": _fraction,
    "fault_types": _texts,
    "model_path": _text,
    "n_ctx": _positive_int,
    "n_threads": _positive_int,
}
_EVERY_BACKEND = frozenset(
    {
        "model",
        "backend",
        "max_concurrency",
        "requests_per_minute",
        "input_tokens_per_minute",
        "output_tokens_per_minute",
        "max_retries",
        "backoff_seconds",
    }
)
_UPSTREAM = frozenset({"base_url", "api_key_env", "upstream_model", "timeout_seconds"})
_KEYS_BY_BACKEND = {
    "simulator": _EVERY_BACKEND | {"latency_ms", "fault_rate", "fault_types"},
    "anthropic": _EVERY_BACKEND | _UPSTREAM,
    "openai": _EVERY_BACKEND | _UPSTREAM,
    "local": _EVERY_BACKEND | {"model_path", "n_ctx", "n_threads"},
}
_REQUIRED_BY_BACKEND = {
    "simulator": ("model",),
    "anthropic": ("model", "base_url"),
    "openai": ("model", "base_url"),
    "local": ("model", "model_path"),
}


def capped_width_warnings(routes: Sequence[RouteConfig], settings: Settings) -> list[str]:
    """A line for each route whose `max_concurrency` the engine's (BATCHGATE_MAX_CONCURRENCY)
    caps: the route's width is the smaller of the two."""
    engine_width = settings.max_concurrency
    return [
        f"route {route.model}: max_concurrency {route.max_concurrency} is capped at"
        f" {engine_width} by BATCHGATE_MAX_CONCURRENCY; set it to at least"
        f" {route.max_concurrency} for the route's full width"
        for route in routes
        if route.max_concurrency is not None and route.max_concurrency > engine_width
    ]


def read_routes(entries: object, path: Path, environ: Mapping[str, str]) -> tuple[RouteConfig, ...]:
    """Checks the `[[routes]]` of the configuration file at `path`; raises ConfigError naming
    the route and the key that is wrong."""
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: routes must be a non-empty list of tables ([[routes]])")
    return tuple(
        _route(entry, f"{path}: routes[{index}]", path.parent, environ)
        for index, entry in enumerate(entries)
    )


def _route(entry: object, where: str, directory: Path, environ: Mapping[str, str]) -> RouteConfig:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a table ([[routes]])")
    if isinstance(entry.get("model"), str):
        where = f"{where} (model {entry['model']!r})"
    backend = entry.get("backend")
    if backend not in BACKENDS:
        problem = "is required" if backend is None else f"is {backend!r}, not one of"
        raise ConfigError(f"{where}: backend {problem} {', '.join(BACKENDS)}")
    allowed = _KEYS_BY_BACKEND[backend]
    for key in entry:
        if key not in allowed:
            what = "is not an option" if key not in _CHECKS else f"does not apply to {backend}"
            raise ConfigError(f"{where}: {key} {what}")
    for key in _REQUIRED_BY_BACKEND[backend]:
        if key not in entry:
            raise ConfigError(f"{where}: {key} is required for backend {backend}")
    values: dict[str, Any] = {}
    for key, value in entry.items():
        try:
            values[key] = _CHECKS[key](value)
        except ValueError as problem:
            raise ConfigError(f"{where}: {key} {problem}") from None
    if "api_key_env" in values:
        api_key = environ.get(values["api_key_env"])
        if not api_key:
            raise ConfigError(
                f"{where}: api_key_env: the environment variable {values['api_key_env']} is not set"
            )
        values["api_key"] = api_key
    if "model_path" in values:
        model_path = directory / Path(values["model_path"]).expanduser()
        if not model_path.is_file():
            raise ConfigError(f"{where}: model_path: no file at {model_path}")
        values["model_path"] = str(model_path)
    return RouteConfig(**values)
