"""The optional body of `POST /v1/batches/{id}/retry` (an extension, docs/api.md "Retries"):
which lines of the batch's results its retry takes, in the terms of its lines.

    {"status_codes": [429, "5xx"], "error_types": ["rate_limit_error"],
     "include_cancelled": false, "include_expired": true}

No body (or `{}`) takes every line of its error file (service/retries.py,
OpenAIRetrySelection); a field left out or null keeps its default. A bad value is a 400 naming
it, and the retry makes nothing.
"""

import re

import orjson

from batchgate.api.errors import ApiError
from batchgate.service.retries import OpenAIRetrySelection

FIELDS = ("status_codes", "error_types", "include_cancelled", "include_expired")
STATUS_CODES = (100, 599)
# A status code as a string ("429"), or a class of them ("5xx", "5XX").
STATUS_TEXT = re.compile(r"[1-5]([0-9]{2}|[xX]{2})")


def _status_code(item: object) -> str:
    """A status code (429 or "429") or a class ("5xx") as the selection matches it."""
    low, high = STATUS_CODES
    if isinstance(item, int) and not isinstance(item, bool) and low <= item <= high:
        return str(item)
    if isinstance(item, str) and STATUS_TEXT.fullmatch(item):
        return item.lower()
    raise ApiError(
        400,
        f"status_codes: each must be an HTTP status code ({low} to {high}) or a class such as"
        f" '5xx', not {orjson.dumps(item).decode()[:80]}",
        param="status_codes",
    )


def _list(body: dict[str, object], name: str) -> list[object] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise ApiError(400, f"{name}: must be a list", param=name)
    return value


def _flag(body: dict[str, object], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return True
    if not isinstance(value, bool):
        raise ApiError(400, f"{name}: must be true or false", param=name)
    return value


def retry_selection(raw: bytes | bytearray) -> OpenAIRetrySelection:
    """The selection a retry's body asks for; an empty body asks for the default."""
    if not raw.strip():
        return OpenAIRetrySelection()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, f"The body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object.")
    return selection_of(body)


def selection_of(body: dict[str, object]) -> OpenAIRetrySelection:
    """The selection a body (decoded) asks for; a bad value is a 400 naming it. The dashboard's
    retry form makes its selection here too."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise ApiError(
            400, f"Unrecognized request argument supplied: {unknown[0]}", param=unknown[0]
        )
    status_codes = _list(body, "status_codes")
    error_types = _list(body, "error_types") or []
    if not all(isinstance(item, str) for item in error_types):
        raise ApiError(400, "error_types: must be a list of strings", param="error_types")
    return OpenAIRetrySelection(
        None if status_codes is None else frozenset(map(_status_code, status_codes)),
        frozenset(str(item) for item in error_types),
        _flag(body, "include_cancelled"),
        _flag(body, "include_expired"),
    )
