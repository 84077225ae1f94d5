"""Anthropic's error envelope, for every error the HTTP layer returns; OpenAI's on the OpenAI
Batch API's paths (/v1/files, /v1/batches)."""

import logging
from collections.abc import Mapping

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from batchgate.storage.base import StoreFull, StoreUnavailable

log = logging.getLogger("batchgate.api")

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    507: "api_error",
    529: "overloaded_error",
}


OPENAI_PATHS = ("/v1/files", "/v1/batches")

# What a client told to come back waits: database restarts and failovers take seconds.
RETRY_AFTER_SECONDS = 5


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
        # The parameter at fault, which OpenAI's envelope names (Anthropic's has no place for it).
        self.param = param


def error_response(
    request: Request,
    status: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    param: str | None = None,
) -> Response:
    error_type = ERROR_TYPES.get(status, "api_error")
    body: dict[str, object]
    if request.url.path.startswith(OPENAI_PATHS):
        body = {"error": {"message": message, "type": error_type, "param": param, "code": None}}
    else:
        body = {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": request.state.request_id,
        }
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(request, exc.status, exc.message, exc.headers, exc.param)


async def on_batch_not_found(request: Request, exc: Exception) -> Response:
    return error_response(request, 404, str(exc))


async def on_wrong_state(request: Request, exc: Exception) -> Response:
    """Never 409: the SDK retries a 409, and a wrong state does not pass by retrying."""
    return error_response(request, 400, str(exc))


async def on_idempotency_key_reused(request: Request, exc: Exception) -> Response:
    return error_response(request, 422, str(exc))


async def on_idempotent_create_in_progress(request: Request, exc: Exception) -> Response:
    """409, which the SDK retries: by then the first create has stored its batch."""
    return error_response(request, 409, str(exc), {"retry-after": "1"})


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"Not found: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}"
    else:
        message = str(exc.detail)
    return error_response(request, exc.status_code, message)


async def on_store_unavailable(request: Request, exc: Exception) -> Response:
    """The database is away or its disk full: a server condition the client may retry."""
    assert isinstance(exc, StoreUnavailable)
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    retry = {"retry-after": str(RETRY_AFTER_SECONDS)}
    if isinstance(exc, StoreFull):
        message = "The server is out of disk space: nothing was stored. Try again later."
        return error_response(request, 507, message, retry)
    message = "The database is unavailable just now. Try again shortly."
    return error_response(request, 503, message, retry)


async def on_unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, 500, "Internal server error.")
