"""Settings: every knob batchgate reads, with its default and its environment variable."""

import os
from dataclasses import dataclass, fields
from typing import Any

DAY = 86_400.0


def _env_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///./batchgate.db"
    # Connections each process may open to PostgreSQL (plus one for LISTEN in a worker).
    database_pool_size: int = 10
    # Comma-separated in BATCHGATE_API_KEYS. Empty: any key is accepted (loopback only).
    api_keys: tuple[str, ...] = ()
    # A batch not finished this long after creation ends with its remaining requests expired.
    expiry_seconds: float = DAY
    # Results are kept this long after creation, then the batch is archived.
    retention_seconds: float = 29 * DAY
    max_body_bytes: int = 256 * 1024 * 1024
    max_requests_per_batch: int = 100_000
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

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        """Reads BATCHGATE_<NAME> for every field; explicit overrides (CLI flags) win."""
        values: dict[str, Any] = {}
        for setting in fields(cls):
            raw = os.environ.get(f"BATCHGATE_{setting.name.upper()}")
            if raw is None:
                continue
            default: Any = setting.default
            try:
                if isinstance(default, tuple):
                    values[setting.name] = _env_list(raw)
                elif isinstance(default, bool):
                    values[setting.name] = raw.lower() in ("1", "true", "yes", "on")
                else:
                    values[setting.name] = type(default)(raw)
            except ValueError as error:
                raise ValueError(
                    f"BATCHGATE_{setting.name.upper()}={raw!r} is not a valid"
                    f" {type(default).__name__}"
                ) from error
        values.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**values)
