"""What a test asks of its batchgate server: marker options turned into BATCHGATE_* variables."""

from collections.abc import Mapping
from dataclasses import dataclass, fields

from batchgate.config.settings import Settings

# Short names for the knobs a pipeline's tests turn most.
ALIASES = {
    "latency_ms": "simulator_latency_ms",
    "fault_rate": "simulator_fault_rate",
    "fault_types": "simulator_fault_types",
}
# The durations `time_scale` shortens: their defaults (a day, 29 days) divided by it.
SCALED_DURATIONS = ("expiry_seconds", "retention_seconds")
# The plugin gives every server a database of its own.
RESERVED = frozenset({"database_url"})
# Any key works on a server without BATCHGATE_API_KEYS; the clients send this one.
DEFAULT_API_KEY = "batchgate-test-key"


def _as_variable(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(item) for item in value)
    return str(value)


def _time_scaled(time_scale: object) -> dict[str, object]:
    if isinstance(time_scale, bool) or not isinstance(time_scale, int | float) or time_scale <= 0:
        raise ValueError(f"time_scale must be a positive number, not {time_scale!r}")
    return {name: getattr(Settings, name) / time_scale for name in SCALED_DURATIONS}


@dataclass(frozen=True)
class ServerSettings:
    """The environment of one server; tests asking for equal settings share the server."""

    environment: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_options(cls, options: Mapping[str, object]) -> "ServerSettings":
        """From the `batchgate` marker's keywords.

        `latency_ms`, `fault_rate`, `fault_types` set the simulator; `time_scale` divides the
        24 h expiry and 29-day retention; any other field of Settings is taken by its name, and
        wins over what `time_scale` made of it.
        """
        known = {setting.name for setting in fields(Settings)} - RESERVED
        values = _time_scaled(options["time_scale"]) if "time_scale" in options else {}
        for option, value in options.items():
            if option == "time_scale":
                continue
            name = ALIASES.get(option, option)
            if name not in known:
                choices = ", ".join([*ALIASES, "time_scale", *sorted(known)])
                raise ValueError(f"unknown batchgate setting {option!r}; known: {choices}")
            values[name] = value
        return cls(
            tuple(
                sorted(
                    (f"BATCHGATE_{name.upper()}", _as_variable(value))
                    for name, value in values.items()
                )
            )
        )

    @property
    def api_key(self) -> str:
        """A key the server accepts: the first configured one, or any."""
        configured = dict(self.environment).get("BATCHGATE_API_KEYS", "")
        keys = [key.strip() for key in configured.split(",") if key.strip()]
        return keys[0] if keys else DEFAULT_API_KEY
