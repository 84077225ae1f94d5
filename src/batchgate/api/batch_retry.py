"""An extension: `POST /v1/messages/batches/{id}/retry` makes a child batch of an ended batch's
failed requests (docs/api.md, "Beyond the original").

The optional JSON body `{"result_types": [...], "error_types": [...]}` says which: by default
errored and expired, of any error type. The answer is the child's batch object.
"""

import logging

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchgate.api.batches import acting_context, batch_response
from batchgate.api.errors import ApiError
from batchgate.api.result_query import RESULT_TYPES
from batchgate.service.retries import DEFAULT_RESULT_TYPES, RetrySelection

log = logging.getLogger("batchgate.api")
MAX_BODY_BYTES = 64 * 1024


def _names(body: dict[str, object], key: str) -> frozenset[str] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ApiError(400, f"{key}: Input should be a list of strings")
    return frozenset(value)


def _selection(raw: bytes) -> RetrySelection:
    if not raw.strip():
        return RetrySelection()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ApiError(400, f"Request body is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Request body should be a JSON object")
    return selection_of(body)


def selection_of(body: dict[str, object]) -> RetrySelection:
    """The selection a retry body (decoded) asks for; a bad value is a 400 naming it. The
    dashboard's retry form makes its selection here too."""
    unknown = sorted(set(body) - {"result_types", "error_types"})
    if unknown:
        raise ApiError(400, f"{unknown[0]}: Extra inputs are not permitted")
    result_types = _names(body, "result_types")
    if result_types is not None:
        if not result_types:
            raise ApiError(400, "result_types: List should have at least 1 item")
        bad = sorted(result_types - set(RESULT_TYPES))
        if bad:
            raise ApiError(400, f"result_types: {bad[0]!r} is not one of {', '.join(RESULT_TYPES)}")
    return RetrySelection(
        result_types if result_types is not None else DEFAULT_RESULT_TYPES,
        _names(body, "error_types") or frozenset(),
    )


async def retry_batch(request: Request) -> Response:
    state, owner = await acting_context(request)
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, f"Request body is larger than {MAX_BODY_BYTES} bytes")
    selection = _selection(raw)
    parent_id = request.path_params["batch_id"]
    child = await state.batches.retry(owner, parent_id, selection)
    log.info(
        "batch retried",
        extra={"batch_id": child.id, "parent_batch_id": parent_id, "requests": child.total},
    )
    return await batch_response(request, state, owner, child)


routes = [
    Route("/v1/messages/batches/{batch_id}/retry", retry_batch, methods=["POST"]),
]
