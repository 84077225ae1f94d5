"""The OpenAI Batch endpoints (/v1/batches), as the openai SDK's `batches` calls them.

The Batch object is read from the batch's row (the same counters, timestamps and usage as a
Message Batch) and its OpenAI row: `validating` passes within the create, which checks the input
file line by line; `in_progress`, `cancelling`, then `completed`, `cancelled` or `expired` once
it has ended (`finalizing` takes no time: the output files are made from the stored results as
they are read). A file with bad lines makes a `failed` batch at once.

Our extensions: a batch's output and error lines while it runs, or merged down its retry chain
(`/results`, the Message Batches' result views), and the retry of its failed requests
(`/retry`), whose lineage the Batch objects of a chain carry.
"""

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchgate.api.batches import acting_context, context, counted, json_response
from batchgate.api.errors import ApiError
from batchgate.api.ingest import read_capped_body
from batchgate.api.openai_files import expires_seconds
from batchgate.api.openai_retry_body import retry_selection
from batchgate.api.result_query import LAST_PART_HEADER, flag, result_view
from batchgate.api.state import AppState
from batchgate.lifecycle.openai_status import openai_request_counts, openai_status
from batchgate.service.openai_batches import InputFileInvalid
from batchgate.service.result_views import ResultFilter
from batchgate.service.retries import Lineage
from batchgate.storage.base import BatchRow
from batchgate.storage.openai_tables import OpenAIBatchRow

# A create names a file: its body is small (16 labels of 512 characters at most, and the rest).
MAX_CREATE_BYTES = 64 * 1024
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
# `lines` of the results extension: those of the output file, or of the error file.
LINES = ("output", "error")


def _seconds(value: float | None) -> int | None:
    return None if value is None else int(value)


def batch_object(
    row: OpenAIBatchRow, batch: BatchRow | None, lineage: Lineage | None = None
) -> dict[str, Any]:
    """The Batch object; a batch of a retry chain carries its `lineage` too (extension)."""
    status = openai_status(batch)
    ended = None if batch is None else batch.ended_at
    usage = None
    counts = {"total": 0, "completed": 0, "failed": 0}
    if batch is not None:
        tokens = batch.total_usage
        usage = {
            "input_tokens": tokens.input_tokens,
            "input_tokens_details": {"cached_tokens": tokens.cache_read_input_tokens},
            "output_tokens": tokens.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": tokens.input_tokens + tokens.output_tokens,
        }
        counts = openai_request_counts(batch)
    return {
        "id": row.id,
        "object": "batch",
        "endpoint": row.endpoint,
        "model": row.model,
        "errors": None if row.errors is None else {"object": "list", "data": list(row.errors)},
        "input_file_id": row.input_file_id,
        "completion_window": row.completion_window,
        "status": status,
        "output_file_id": row.output_file_id,
        "error_file_id": row.error_file_id,
        "created_at": int(row.created_at),
        "in_progress_at": None if batch is None else int(batch.created_at),
        "expires_at": int(row.created_at + 24 * 3600) if batch is None else int(batch.expires_at),
        "finalizing_at": _seconds(ended) if status == "completed" else None,
        "completed_at": _seconds(ended) if status == "completed" else None,
        "failed_at": _seconds(row.failed_at),
        "expired_at": _seconds(ended) if status == "expired" else None,
        "cancelling_at": None if batch is None else _seconds(batch.cancel_initiated_at),
        "cancelled_at": _seconds(ended) if status == "cancelled" else None,
        "request_counts": counts,
        "metadata": dict(row.metadata) if row.metadata else None,
        "usage": usage,
        **({} if lineage is None else _lineage_fields(lineage)),
    }


def _lineage_fields(lineage: Lineage) -> dict[str, Any]:
    """A Message Batch's lineage, its merged counts as OpenAI counts them."""
    shown = lineage.fields()
    merged = shown.pop("merged_request_counts", None)
    if isinstance(merged, dict):
        shown["merged_request_counts"] = {
            "total": sum(merged.values()),
            "completed": merged["succeeded"],
            "failed": merged["errored"] + merged["canceled"] + merged["expired"],
        }
    return shown


async def _objects(
    state: AppState, owner: str, pairs: list[tuple[OpenAIBatchRow, BatchRow | None]]
) -> list[dict[str, Any]]:
    """The Batch objects of `pairs`, with the lineage of those in a retry chain."""
    lineages = await state.batches.lineage(owner, [batch for _, batch in pairs if batch])
    return [batch_object(row, batch, lineages.get(row.id)) for row, batch in pairs]


def _metadata(value: object) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > MAX_METADATA_PAIRS:
        raise ApiError(
            400, f"metadata: an object of at most {MAX_METADATA_PAIRS} pairs", param="metadata"
        )
    for key, text in value.items():
        if (
            len(key) > MAX_METADATA_KEY
            or not isinstance(text, str)
            or len(text) > MAX_METADATA_VALUE
        ):
            raise ApiError(
                400,
                f"metadata: keys of at most {MAX_METADATA_KEY} characters and string values of"
                f" at most {MAX_METADATA_VALUE} ({key[:80]!r})",
                param="metadata",
            )
    return value


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"{name}: a string is required", param=name)
    return value


def _output_expires(body: dict[str, Any]) -> int | None:
    value = body.get("output_expires_after")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ApiError(
            400,
            'output_expires_after: an object {"anchor": "created_at", "seconds": N} is required',
            param="output_expires_after",
        )
    return expires_seconds(value.get("anchor"), value.get("seconds"), "output_expires_after")


async def create_batch(request: Request) -> Response:
    state, owner = await acting_context(request)
    try:
        body = orjson.loads(
            await read_capped_body(request, MAX_CREATE_BYTES, state.settings.body_timeout_seconds)
        )
    except orjson.JSONDecodeError as error:
        raise ApiError(400, f"The body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The body must be a JSON object.")
    try:
        row, batch = await state.openai.create_batch(
            owner,
            _text(body, "input_file_id"),
            _text(body, "endpoint"),
            _text(body, "completion_window"),
            _metadata(body.get("metadata")),
            _output_expires(body),
        )
    except InputFileInvalid as invalid:
        raise ApiError(400, str(invalid), param=invalid.param) from None
    return json_response(batch_object(row, batch))


async def retrieve_batch(request: Request) -> Response:
    state, owner = await context(request)
    found = await state.openai.get_batch(owner, request.path_params["id"])
    return json_response((await _objects(state, owner, [found]))[0])


async def cancel_batch(request: Request) -> Response:
    state, owner = await acting_context(request)
    cancelled = await state.openai.cancel_batch(owner, request.path_params["id"])
    return json_response((await _objects(state, owner, [cancelled]))[0])


async def retry_batch(request: Request) -> Response:
    """(extension) A new batch of the ended batch's failed requests, recorded as its retry; the
    optional body says which (api/openai_retry_body.py)."""
    state, owner = await acting_context(request)
    selection = retry_selection(
        await read_capped_body(request, MAX_CREATE_BYTES, state.settings.body_timeout_seconds)
    )
    retry = await state.openai.retry_batch(owner, request.path_params["id"], selection)
    return json_response((await _objects(state, owner, [retry]))[0])


async def batch_results(request: Request) -> Response:
    """(extension) The batch's output and error lines, while it runs too: the Message Batches'
    `partial`, `follow`, `after_part`, `skip_lines` and `merged` (api/result_query.py), and
    `lines` to keep one file's."""
    state, owner = await context(request)
    batch_id = request.path_params["id"]
    lines = request.query_params.get("lines")
    if lines not in (None, *LINES):
        raise ApiError(400, f"lines: must be 'output' or 'error', not {lines!r}", param="lines")
    wanted = ResultFilter(openai_output=None if lines is None else lines == "output")
    view = result_view(request, flag(request, "merged"))
    last_part, results = await state.openai.results(owner, batch_id, view, wanted)
    headers = {"content-disposition": f"attachment; filename*=utf-8''{batch_id}_results.jsonl"}
    if last_part is not None:
        headers[LAST_PART_HEADER] = str(last_part)
    return StreamingResponse(counted(results), media_type="application/x-jsonl", headers=headers)


async def list_batches(request: Request) -> Response:
    state, owner = await context(request)
    raw = request.query_params.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise ApiError(400, f"limit: must be an integer from 1 to 100, not {raw!r}", param="limit")
    page, has_more = await state.openai.list_batches(
        owner, request.query_params.get("after") or None, int(raw)
    )
    return json_response(
        {
            "object": "list",
            "data": await _objects(state, owner, page),
            "first_id": page[0][0].id if page else None,
            "last_id": page[-1][0].id if page else None,
            "has_more": has_more,
        }
    )


routes = [
    Route("/v1/batches", create_batch, methods=["POST"]),
    Route("/v1/batches", list_batches, methods=["GET"]),
    Route("/v1/batches/{id}", retrieve_batch, methods=["GET"]),
    Route("/v1/batches/{id}/cancel", cancel_batch, methods=["POST"]),
    Route("/v1/batches/{id}/results", batch_results, methods=["GET"]),
    Route("/v1/batches/{id}/retry", retry_batch, methods=["POST"]),
]
