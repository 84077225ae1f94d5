"""Retries as child batches: which requests of an ended batch a retry takes, the child's chunks,
and the lineage and merged counts a chain's batch objects carry.

A batch is retried at most once: a chain runs from an original to its last retry, each batch
holding a subset of its parent's custom_ids (the failed ones), with the same params.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from batchgate.lifecycle import openai_results
from batchgate.storage.base import BatchRow, NewChunk, ResultCounts, RetryRow, Store

DEFAULT_RESULT_TYPES = frozenset({"errored", "expired"})


class Selection(Protocol):
    def takes(self, line: Mapping[str, Any]) -> bool:
        """Whether a retry takes the request of this result line (parsed)."""
        ...


@dataclass(frozen=True, slots=True)
class RetrySelection:
    """The results a retry takes: of these types and, for errored ones, of these error types
    (any, when empty)."""

    result_types: frozenset[str] = DEFAULT_RESULT_TYPES
    error_types: frozenset[str] = frozenset()

    def takes(self, line: Mapping[str, Any]) -> bool:
        """Whether the selection takes a result line (parsed), of either format."""
        kind = result_type(line)
        if kind not in self.result_types:
            return False
        if kind == "errored" and self.error_types:
            return _error_type(line) in self.error_types
        return True


@dataclass(frozen=True, slots=True)
class OpenAIRetrySelection:
    """The lines an OpenAI batch's retry takes, in its lines' own terms. Of the answered requests,
    those whose `response.status_code` is one of `status_codes` ("429", or a class: "5xx"; by
    default every status but 2xx), the failed ones narrowed to `error_types`
    (`response.body.error.type`) when given; of those that never ran, the cancelled and the
    expired ones unless left out. By default: every line of its error file."""

    status_codes: frozenset[str] | None = None
    error_types: frozenset[str] = frozenset()
    include_cancelled: bool = True
    include_expired: bool = True

    def takes(self, line: Mapping[str, Any]) -> bool:
        response = line["response"]
        if response is None:
            if line["error"]["code"] == openai_results.CANCELLED_CODE:
                return self.include_cancelled
            return self.include_expired
        status = response["status_code"]
        succeeded = 200 <= status < 300
        if self.status_codes is None:
            if succeeded:
                return False
        elif not {str(status), f"{status // 100}xx"} & self.status_codes:
            return False
        if self.error_types and not succeeded:
            return _error_type(line) in self.error_types
        return True


def result_type(line: Mapping[str, Any]) -> str:
    """A result line's type: a Message Batch's `result.type`, or what an OpenAI batch's line
    (lifecycle/openai_results.py) stands for."""
    if "result" in line:
        return str(line["result"]["type"])
    response = line["response"]
    if response is not None:
        return "succeeded" if 200 <= response["status_code"] < 300 else "errored"
    return "canceled" if line["error"]["code"] == openai_results.CANCELLED_CODE else "expired"


def _error_type(line: Mapping[str, Any]) -> object:
    """The error's type: `result.error.error.type`, or an OpenAI line's `response.body.error`."""
    if "result" in line:
        error = line["result"].get("error")
        inner = error.get("error") if isinstance(error, dict) else None
    else:
        body = line["response"].get("body")
        inner = body.get("error") if isinstance(body, dict) else None
    return inner.get("type") if isinstance(inner, dict) else None


def taken_requests(
    store: Store, batch_id: str, selection: Selection
) -> Iterator[tuple[str, object]]:
    """(custom_id, params) of the requests the selection takes, in the batch's order."""
    for chunk in store.iter_request_chunks(batch_id):
        taken = {}
        for line in chunk.result_lines.splitlines():
            parsed = orjson.loads(line)
            if selection.takes(parsed):
                taken[parsed["custom_id"]] = result_type(parsed)
        if not taken:
            continue
        for custom_id, params in zip(
            orjson.loads(chunk.custom_ids), orjson.loads(chunk.params), strict=True
        ):
            if custom_id in taken:
                yield custom_id, params


def count_taken(store: Store, batch_id: str, selection: Selection) -> ResultCounts:
    """The parent's results a retry would replace, by type: a first pass, so that the child's
    total is known before its chunks are built, one at a time, as they are stored."""
    counts = ResultCounts()
    for chunk in store.iter_request_chunks(batch_id):
        for line in chunk.result_lines.splitlines():
            parsed = orjson.loads(line)
            if selection.takes(parsed):
                kind = result_type(parsed)
                setattr(counts, kind, getattr(counts, kind) + 1)
    return counts


def child_chunks(
    store: Store, batch_id: str, selection: Selection, chunk_size: int
) -> Iterator[NewChunk]:
    """The child's chunks, built one at a time as the store writes them."""
    custom_ids: list[str] = []
    params: list[object] = []
    for custom_id, request_params in taken_requests(store, batch_id, selection):
        custom_ids.append(custom_id)
        params.append(request_params)
        if len(custom_ids) == chunk_size:
            yield NewChunk(len(custom_ids), orjson.dumps(custom_ids), orjson.dumps(params))
            custom_ids, params = [], []
    if custom_ids:
        yield NewChunk(len(custom_ids), orjson.dumps(custom_ids), orjson.dumps(params))


@dataclass(slots=True)
class Lineage:
    """What a batch object of a retry chain carries beyond Anthropic's fields."""

    parent_batch_id: str | None = None
    retry_batch_ids: list[str] = field(default_factory=list)
    merged_request_counts: dict[str, int] | None = None

    def fields(self) -> dict[str, object]:
        shown: dict[str, object] = {
            "parent_batch_id": self.parent_batch_id,
            "retry_batch_ids": self.retry_batch_ids,
        }
        if self.merged_request_counts is not None:
            shown["merged_request_counts"] = self.merged_request_counts
        return shown


def merged_counts(chain: list[BatchRow], retries: list[RetryRow]) -> dict[str, int]:
    """The counts of the merged results of `chain` (a batch, then each retry in turn), whose
    `retries` say which results each retry replaces: each batch's counts less those, plus its
    retry's, from the last retry back."""
    counts = chain[-1].request_counts
    for batch, retry in zip(reversed(chain[:-1]), reversed(retries), strict=True):
        own = batch.request_counts
        replaced = retry.retried
        for kind in ("succeeded", "errored", "canceled", "expired"):
            counts[kind] += own[kind] - getattr(replaced, kind)
        counts["processing"] += own["processing"]
    return counts
