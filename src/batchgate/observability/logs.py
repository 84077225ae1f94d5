"""Log output: one JSON object per line for log collectors, readable lines on a terminal.

Fields passed with `extra=` (batch_id, request_id, status, …) become keys of the JSON object,
or `key=value` pairs after the readable message. What is logged at info and above never holds
prompts, completions or keys: only ids, counts, states and timings. Every line, tracebacks
included, has the configuration's keys redacted on its way out (batchgate/redaction.py).

batchgate's loggers (and uvicorn's, which `serve` sets itself) log at the level asked for; the
other libraries' only from warning up, unless at debug: the SDKs' HTTP clients log a line per
upstream call at info, which would bury batchgate's own lines under a batch's requests.
"""

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from batchgate.redaction import NO_SECRETS, Secrets

# Every attribute a LogRecord has on its own; the others came in through `extra=`.
# uvicorn adds `color_message`, its message with terminal colour codes: noise in either output.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES}


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **extra_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class ReadableFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        pairs = " ".join(f"{key}={value}" for key, value in extra_fields(record).items())
        message = super().formatMessage(record)
        return f"{message} {pairs}" if pairs else message


class RedactingHandler(logging.StreamHandler[TextIO]):
    def __init__(self, stream: TextIO, secrets: Secrets) -> None:
        super().__init__(stream)
        self._secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return self._secrets.redact(super().format(record))


def configure_logging(
    level: str, stream: TextIO = sys.stderr, secrets: Secrets = NO_SECRETS
) -> None:
    """Sends every logger (uvicorn's too) to `stream`, as JSON lines unless it is a terminal,
    with `secrets` redacted."""
    handler = RedactingHandler(stream, secrets)
    handler.setFormatter(ReadableFormatter() if stream.isatty() else JsonLinesFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    chosen = logging.getLevelNamesMapping()[level.upper()]
    root.setLevel(chosen if chosen <= logging.DEBUG else max(chosen, logging.WARNING))
    logging.getLogger("batchgate").setLevel(chosen)
