"""The Message Batches endpoints."""

import logging
import math
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from batchgate.api.errors import ApiError
from batchgate.api.ingest import check_requests, decode_create_body, into_chunks, read_capped_body
from batchgate.api.state import AppState
from batchgate.lifecycle.ids import new_batch_id
from batchgate.observability import metrics
from batchgate.storage.base import BatchRow, StoreUnavailable, WrongState

log = logging.getLogger("batchgate.api")


def _timestamp(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def batch_object(request: Request, batch: BatchRow) -> dict[str, Any]:
    results_url = None
    if batch.status == "ended":
        results_url = f"{str(request.base_url).rstrip('/')}/v1/messages/batches/{batch.id}/results"
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": batch.status,
        "request_counts": {
            "processing": batch.processing,
            "succeeded": batch.succeeded,
            "errored": batch.errored,
            "canceled": batch.canceled,
            "expired": batch.expired,
        },
        "created_at": _timestamp(batch.created_at),
        "expires_at": _timestamp(batch.expires_at),
        "ended_at": _timestamp(batch.ended_at),
        "cancel_initiated_at": _timestamp(batch.cancel_initiated_at),
        "archived_at": _timestamp(batch.archived_at),
        "results_url": results_url,
    }


async def stream_from_thread(blobs: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Streams a blocking iterator (database reads) without blocking the event loop."""
    while (blob := await anyio.to_thread.run_sync(next, blobs, None)) is not None:
        yield blob


async def _counted(blobs: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for blob in blobs:
        metrics.RESULTS_BYTES.inc(len(blob))
        yield blob


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def context(request: Request) -> tuple[AppState, str]:
    """The app's state and the caller's owner tag (their workspace); a 401 without a valid key."""
    state: AppState = request.app.state.batchgate
    return state, await state.keyring.owner_of(request)


def _request_id(request: Request) -> dict[str, str]:
    return {"request_id": request.state.request_id}


def _not_found(batch_id: str) -> ApiError:
    return ApiError(404, f"No message batch with id {batch_id!r}.")


async def existing_batch(state: AppState, owner: str, batch_id: str) -> BatchRow:
    batch = await anyio.to_thread.run_sync(state.store.get_batch, owner, batch_id)
    if batch is None:
        raise _not_found(batch_id)
    return batch


async def announce_work(state: AppState) -> None:
    """Wakes the engines at once. Once the change is committed, a database gone meanwhile must
    not fail the request: the engines find the work on their next poll."""
    try:
        await anyio.to_thread.run_sync(state.store.announce_work)
    except StoreUnavailable as error:
        log.warning("could not announce new work; the engines' next poll finds it: %s", error)


async def create_batch(request: Request) -> Response:
    state, owner = await context(request)
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
    body = await read_capped_body(request, settings.max_body_bytes, settings.body_timeout_seconds)
    requests = decode_create_body(body)
    custom_ids = check_requests(requests, settings.max_requests_per_batch)
    chunks = into_chunks(requests, custom_ids, settings.chunk_size)
    size = len(body)
    del body, requests
    now = state.clock()
    batch = await anyio.to_thread.run_sync(
        state.store.create_batch,
        new_batch_id(),
        owner,
        now,
        now + settings.expiry_seconds,
        len(custom_ids),
        chunks,
    )
    metrics.CREATE_BYTES.inc(size)
    await announce_work(state)
    log.info(
        "batch created",
        extra={"batch_id": batch.id, "requests": batch.total, **_request_id(request)},
    )
    return json_response(batch_object(request, batch))


async def retrieve_batch(request: Request) -> Response:
    state, owner = await context(request)
    batch = await existing_batch(state, owner, request.path_params["batch_id"])
    return json_response(batch_object(request, batch))


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
    page, has_more = await anyio.to_thread.run_sync(
        state.store.list_batches, owner, limit, after_id, before_id
    )
    return json_response(
        {
            "data": [batch_object(request, batch) for batch in page],
            "has_more": has_more,
            "first_id": page[0].id if page else None,
            "last_id": page[-1].id if page else None,
        }
    )


async def cancel_batch(request: Request) -> Response:
    state, owner = await context(request)
    batch_id = request.path_params["batch_id"]
    try:
        batch = await anyio.to_thread.run_sync(
            state.store.cancel_batch, owner, batch_id, state.clock()
        )
    except WrongState as error:
        raise ApiError(400, str(error)) from None
    if batch is None:
        raise _not_found(batch_id)
    await announce_work(state)
    log.info("batch canceling", extra={"batch_id": batch_id, **_request_id(request)})
    return json_response(batch_object(request, batch))


async def delete_batch(request: Request) -> Response:
    state, owner = await context(request)
    batch_id = request.path_params["batch_id"]
    try:
        deleted = await anyio.to_thread.run_sync(state.store.delete_batch, owner, batch_id)
    except WrongState as error:
        raise ApiError(400, str(error)) from None
    if not deleted:
        raise _not_found(batch_id)
    log.info("batch deleted", extra={"batch_id": batch_id, **_request_id(request)})
    return json_response({"id": batch_id, "type": "message_batch_deleted"})


async def batch_results(request: Request) -> Response:
    state, owner = await context(request)
    batch = await existing_batch(state, owner, request.path_params["batch_id"])
    if batch.archived_at is not None:
        raise ApiError(
            404, f"The results of batch {batch.id} were archived after the retention period."
        )
    if batch.status != "ended":
        raise ApiError(
            400, f"Batch {batch.id} is still {batch.status}; results are ready once it has ended."
        )
    return StreamingResponse(
        _counted(stream_from_thread(state.store.iter_results(batch.id))),
        media_type="application/x-jsonl",
        headers={"content-disposition": f"attachment; filename*=utf-8''{batch.id}_results.jsonl"},
    )


routes = [
    Route("/v1/messages/batches", create_batch, methods=["POST"]),
    Route("/v1/messages/batches", list_batches, methods=["GET"]),
    Route("/v1/messages/batches/{batch_id}", retrieve_batch, methods=["GET"]),
    Route("/v1/messages/batches/{batch_id}", delete_batch, methods=["DELETE"]),
    Route("/v1/messages/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
    Route("/v1/messages/batches/{batch_id}/results", batch_results, methods=["GET"]),
]
