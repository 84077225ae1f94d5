"""What the batch page reads from a batch's results: its errors grouped, and a page of results
with each request's params beside them.

Both read the batch's chunks one at a time on a worker thread (StoredChunk: requests and the
results committed so far), so a running batch shows what it has and memory stays flat.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from batchgate.storage.base import Store, StoredChunk

EXAMPLES_PER_GROUP = 3
RESULTS_PER_PAGE = 25


@dataclass(slots=True)
class ErrorGroup:
    """Errored results of one error type and message."""

    type: str
    message: str
    count: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ShownResult:
    custom_id: str
    type: str
    text: str  # the message's text, or the error's message
    params: str  # the request's params, indented JSON
    result: str  # the whole result, indented JSON


@dataclass(frozen=True, slots=True)
class ResultsPage:
    results: list[ShownResult]
    has_more: bool


def _lines(chunk: StoredChunk) -> Iterator[dict[str, Any]]:
    for line in chunk.result_lines.splitlines():
        yield orjson.loads(line)


def _error_of(result: dict[str, Any]) -> tuple[str, str]:
    """An errored or expired result's (type, message)."""
    if result["type"] != "errored":
        return result["type"], ""
    error = result.get("error", {}).get("error", {})
    return str(error.get("type", "error")), str(error.get("message", ""))


def error_groups(store: Store, batch_id: str) -> list[ErrorGroup]:
    """The batch's errored and expired results grouped by type and message, biggest first."""
    groups: dict[tuple[str, str], ErrorGroup] = {}
    for chunk in store.iter_request_chunks(batch_id):
        for line in _lines(chunk):
            result = line["result"]
            if result["type"] not in ("errored", "expired"):
                continue
            kind, message = _error_of(result)
            group = groups.setdefault((kind, message), ErrorGroup(kind, message))
            group.count += 1
            if len(group.examples) < EXAMPLES_PER_GROUP:
                group.examples.append(line["custom_id"])
    return sorted(groups.values(), key=lambda group: (-group.count, group.type, group.message))


def _text(result: dict[str, Any]) -> str:
    if result["type"] == "succeeded":
        content = result["message"].get("content", [])
        return "\n\n".join(
            block.get("text", "") for block in content if block.get("type") == "text"
        )
    return _error_of(result)[1] or result["type"]


def results_page(
    store: Store, batch_id: str, result_type: str | None, custom_id: str | None, page: int
) -> ResultsPage:
    """Page `page` (from 0) of the batch's results of `result_type` and `custom_id` (None:
    any), in the order of its requests."""
    skip, shown = page * RESULTS_PER_PAGE, list[ShownResult]()
    for chunk in store.iter_request_chunks(batch_id):
        params: dict[str, Any] | None = None
        for line in _lines(chunk):
            result = line["result"]
            if result_type is not None and result["type"] != result_type:
                continue
            if custom_id is not None and line["custom_id"] != custom_id:
                continue
            if skip:
                skip -= 1
                continue
            if len(shown) == RESULTS_PER_PAGE:
                return ResultsPage(shown, True)
            if params is None:
                params = dict(
                    zip(orjson.loads(chunk.custom_ids), orjson.loads(chunk.params), strict=True)
                )
            shown.append(
                ShownResult(
                    line["custom_id"],
                    result["type"],
                    _text(result),
                    orjson.dumps(params[line["custom_id"]], option=orjson.OPT_INDENT_2).decode(),
                    orjson.dumps(result, option=orjson.OPT_INDENT_2).decode(),
                )
            )
    return ResultsPage(shown, False)
