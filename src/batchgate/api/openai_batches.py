"""The OpenAI Batch endpoints (/v1/batches), as the openai SDK's `batches` calls them.

The Batch object is read from the batch's row (the same counters, timestamps and usage as a
Message Batch) and its OpenAI row: `validating` passes within the create, which checks the input
file line by line; `in_progress`, `cancelling`, then `completed`, `cancelled` or `expired` once
it has ended (`finalizing` takes no time: the output files are made from the stored results as
they are read). A file with bad lines makes a `failed` batch at once.
"""

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchgate.api.batches import acting_context, context, json_response
from batchgate.api.errors import ApiError
from batchgate.api.ingest import read_capped_body
from batchgate.api.openai_files import expires_seconds
from batchgate.lifecycle.openai_status import openai_status
from batchgate.service.openai_batches import InputFileInvalid
from batchgate.storage.base import BatchRow
from batchgate.storage.openai_tables import OpenAIBatchRow

# A create names a file: its body is small (16 labels of 512 characters at most, and the rest).
MAX_CREATE_BYTES = 64 * 1024
MAX_METADATA_PAIRS = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512


def _seconds(value: float | None) -> int | None:
    return None if value is None else int(value)


def batch_object(row: OpenAIBatchRow, batch: BatchRow | None) -> dict[str, Any]:
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
        counts = {
            "total": batch.total,
            "completed": batch.succeeded,
            "failed": batch.errored + batch.canceled + batch.expired,
        }
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
    }


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
    return json_response(
        batch_object(*await state.openai.get_batch(owner, request.path_params["id"]))
    )


async def cancel_batch(request: Request) -> Response:
    state, owner = await acting_context(request)
    return json_response(
        batch_object(*await state.openai.cancel_batch(owner, request.path_params["id"]))
    )


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
            "data": [batch_object(row, batch) for row, batch in page],
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
]
