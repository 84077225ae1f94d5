"""The Message Batches endpoints."""

import dataclasses
import logging
import math
import re
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchgate.api.access import require_write
from batchgate.api.batch_options import batch_options
from batchgate.api.errors import ApiError
from batchgate.api.ingest import check_requests, decode_create_body, into_chunks, read_capped_body
from batchgate.api.result_query import LAST_PART_HEADER, flag, result_query
from batchgate.api.state import AppState
from batchgate.config.prices import PriceTable
from batchgate.lifecycle.events import timestamp
from batchgate.observability import metrics
from batchgate.service.idempotency import MAX_KEY_LENGTH, IdempotentCreate
from batchgate.service.retries import Lineage
from batchgate.service.webhooks import WebhookRefused, check_url
from batchgate.storage.base import BatchFilter, BatchOptions, BatchRow

STATUSES = ("in_progress", "canceling", "ended")
# `metadata[key]=value` in a list's query string.
LABEL_FILTER = re.compile(r"metadata\[(?P<key>[^\]]+)\]")

log = logging.getLogger("batchgate.api")


def cost_object(usd: float | None) -> dict[str, Any] | None:
    return None if usd is None else {"usd": round(usd, 6), "currency": "USD"}


def batch_object(
    request: Request, batch: BatchRow, lineage: Lineage | None = None
) -> dict[str, Any]:
    """Anthropic's batch object with batchgate's extension fields; a batch in a retry chain
    also carries its lineage."""
    results_url = None
    if batch.status == "ended":
        results_url = f"{str(request.base_url).rstrip('/')}/v1/messages/batches/{batch.id}/results"
    prices: PriceTable = request.app.state.batchgate.prices
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": batch.status,
        "request_counts": batch.request_counts,
        "created_at": timestamp(batch.created_at),
        "expires_at": timestamp(batch.expires_at),
        "ended_at": timestamp(batch.ended_at),
        "cancel_initiated_at": timestamp(batch.cancel_initiated_at),
        "archived_at": timestamp(batch.archived_at),
        "results_url": results_url,
        # batchgate extensions (docs/api.md, "Beyond the original").
        "metadata": dict(batch.metadata or {}),
        "priority": batch.priority,
        "abort": batch.abort_policy,
        "cancel_reason": batch.cancel_reason,
        "usage": batch.total_usage.token_counts(),
        "cost": cost_object(prices.cost(batch.usage)),
        **(lineage.fields() if lineage is not None else {}),
    }


async def counted(blobs: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for blob in blobs:
        metrics.RESULTS_BYTES.inc(len(blob))
        yield blob


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def context(request: Request) -> tuple[AppState, str]:
    """The app's state and the caller's owner tag (their workspace); a 401 without a valid key."""
    state: AppState = request.app.state.batchgate
    return state, (await state.keyring.caller(request)).owner


async def acting_context(request: Request) -> tuple[AppState, str]:
    """The same for a call that changes something: a 403 for a read-only key."""
    state: AppState = request.app.state.batchgate
    caller = await state.keyring.caller(request)
    require_write(caller)
    return state, caller.owner


def _request_id(request: Request) -> dict[str, str]:
    return {"request_id": request.state.request_id}


async def create_batch(request: Request) -> Response:
    state, owner = await acting_context(request)
    settings = state.settings
    if state.shutting_down:
        # By then this process is gone: its restart, or another instance behind the balancer,
        # takes the retry.
        retry_after = math.ceil(settings.shutdown_seconds)
        raise ApiError(
            503,
            "This server is shutting down and takes no new batches: retry in a moment.",
            headers={"retry-after": str(max(1, retry_after))},
        )
    key = _idempotency_key(request)
    body = await read_capped_body(request, settings.max_body_bytes, settings.body_timeout_seconds)
    decoded = decode_create_body(body)
    requests = decoded.requests
    custom_ids = check_requests(requests, settings.max_requests_per_batch)
    options = batch_options(decoded, settings.expiry_seconds, bool(state.prices))
    if decoded.webhook_url is not None:
        options = await _with_webhook_url(state, owner, options, decoded.webhook_url)
    chunks = into_chunks(requests, custom_ids, settings.chunk_size)
    # A digest of up to 256 MB takes a while: on a thread, hashlib lets go of the GIL.
    idempotent = (
        None if key is None else await anyio.to_thread.run_sync(IdempotentCreate.of, key, body)
    )
    size = len(body)
    # Only the chunks, built as they are stored, hold the params from here on.
    del body, requests
    decoded.requests = []
    batch, replayed = await state.batches.create(
        owner, len(custom_ids), chunks, options, decoded.completion_window, idempotent
    )
    if replayed:
        log.info(
            "batch create replayed",
            extra={"batch_id": batch.id, "idempotency_key": key, **_request_id(request)},
        )
        response = json_response(batch_object(request, batch))
        response.headers["idempotent-replayed"] = "true"
        return response
    metrics.CREATE_BYTES.inc(size)
    log.info(
        "batch created",
        extra={"batch_id": batch.id, "requests": batch.total, **_request_id(request)},
    )
    return json_response(batch_object(request, batch))


async def _with_webhook_url(
    state: AppState, owner: str, options: BatchOptions, url: str
) -> BatchOptions:
    try:
        await check_url(url, state.settings)
    except WebhookRefused as error:
        raise ApiError(400, f"webhook_{error}") from None
    # Made before the batch, so that its first delivery finds the secret that signs it.
    await state.webhooks.workspace_secret(owner)
    return dataclasses.replace(options, webhook_url=url)


def _idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise ApiError(400, f"Idempotency-Key: 1 to {MAX_KEY_LENGTH} characters")
    return key


async def retrieve_batch(request: Request) -> Response:
    state, owner = await context(request)
    batch = await state.batches.get(owner, request.path_params["batch_id"])
    return await batch_response(request, state, owner, batch)


async def batch_response(
    request: Request, state: AppState, owner: str, batch: BatchRow
) -> Response:
    lineage = await state.batches.lineage(owner, [batch])
    return json_response(batch_object(request, batch, lineage.get(batch.id)))


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "20")
    try:
        limit = int(raw)
    except ValueError:
        raise ApiError(400, f"limit: Input should be a valid integer, got {raw!r}") from None
    if not 1 <= limit <= 1000:
        raise ApiError(400, f"limit: Input should be between 1 and 1000, got {limit}")
    return limit


async def list_batches(request: Request) -> Response:
    state, owner = await context(request)
    limit = _limit(request)
    after_id = request.query_params.get("after_id") or None
    before_id = request.query_params.get("before_id") or None
    if after_id and before_id:
        raise ApiError(400, "Provide at most one of after_id and before_id.")
    page, has_more = await state.batches.list(
        owner, limit, after_id, before_id, _list_filter(request)
    )
    lineages = await state.batches.lineage(owner, page)
    return json_response(
        {
            "data": [batch_object(request, batch, lineages.get(batch.id)) for batch in page],
            "has_more": has_more,
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
        }
    )


def _list_filter(request: Request) -> BatchFilter:
    """`metadata[key]=value` (each must match) and `processing_status=` of a list."""
    labels = []
    for name, value in request.query_params.multi_items():
        found = LABEL_FILTER.fullmatch(name)
        if found is not None:
            labels.append((found["key"], value))
    status = request.query_params.get("processing_status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(
            400, f"processing_status: Input should be one of {', '.join(STATUSES)}, not {status!r}"
        )
    return BatchFilter(tuple(dict.fromkeys(labels)), status)


async def cancel_batch(request: Request) -> Response:
    state, owner = await acting_context(request)
    batch_id = request.path_params["batch_id"]
    batch = await state.batches.cancel(owner, batch_id)
    log.info("batch canceling", extra={"batch_id": batch_id, **_request_id(request)})
    return await batch_response(request, state, owner, batch)


async def delete_batch(request: Request) -> Response:
    state, owner = await acting_context(request)
    batch_id = request.path_params["batch_id"]
    cascade = flag(request, "cascade")
    await state.batches.delete(owner, batch_id, cascade)
    log.info("batch deleted", extra={"batch_id": batch_id, **_request_id(request)})
    return json_response({"id": batch_id, "type": "message_batch_deleted"})


async def batch_results(request: Request) -> Response:
    state, owner = await context(request)
    batch_id = request.path_params["batch_id"]
    view, wanted = result_query(request)
    last_part, results = await state.batches.results(owner, batch_id, view, wanted)
    headers = {"content-disposition": f"attachment; filename*=utf-8''{batch_id}_results.jsonl"}
    if last_part is not None:
        headers[LAST_PART_HEADER] = str(last_part)
    return StreamingResponse(counted(results), media_type="application/x-jsonl", headers=headers)


routes = [
    Route("/v1/messages/batches", create_batch, methods=["POST"]),
    Route("/v1/messages/batches", list_batches, methods=["GET"]),
    Route("/v1/messages/batches/{batch_id}", retrieve_batch, methods=["GET"]),
    Route("/v1/messages/batches/{batch_id}", delete_batch, methods=["DELETE"]),
    Route("/v1/messages/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
    Route("/v1/messages/batches/{batch_id}/results", batch_results, methods=["GET"]),
]
