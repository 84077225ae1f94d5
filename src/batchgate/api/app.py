"""Assembles the ASGI application: routes, error envelope, request ids, the embedded engine."""

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware

from batchgate.api import (
    batch_requests,
    batch_retry,
    batches,
    events,
    health,
    openai_batches,
    openai_files,
    openapi,
    usage,
    webhooks,
)
from batchgate.api.access_log import AccessLogMiddleware
from batchgate.api.errors import (
    ApiError,
    on_api_error,
    on_batch_not_found,
    on_http_exception,
    on_idempotency_key_reused,
    on_idempotent_create_in_progress,
    on_store_unavailable,
    on_unexpected_error,
    on_wrong_state,
)
from batchgate.api.request_ids import RequestIdMiddleware
from batchgate.api.state import AppState
from batchgate.engine.thread import EngineThread
from batchgate.observability import metrics
from batchgate.service.batches import (
    BatchNotFound,
    IdempotencyKeyReused,
    IdempotentCreateInProgress,
)
from batchgate.storage.base import StoreUnavailable, WrongState
from batchgate.web import routes as web_routes


def create_app(state: AppState) -> Starlette:
    engine = state.engine

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            if engine is None:
                yield
                return
            engine_thread = EngineThread(engine)
            engine_thread.start()
            try:
                yield
            finally:
                # uvicorn gets here once it has stopped listening and answered the requests in
                # flight; the engine then finishes, commits and releases its work
                # (engine/worker.py). Under `serve` the engine stopped leasing already, at the
                # signal (api/http_server.py, AppState.begin_shutdown).
                await engine_thread.stop()
        finally:
            metrics.process_exiting()

    app = Starlette(
        routes=(
            health.routes
            + openapi.routes
            + batches.routes
            + batch_requests.routes
            + batch_retry.routes
            + usage.routes
            + events.routes
            + webhooks.routes
            + openai_files.routes
            + openai_batches.routes
            + web_routes
        ),
        middleware=[Middleware(RequestIdMiddleware), Middleware(AccessLogMiddleware)],
        exception_handlers={
            ApiError: on_api_error,
            BatchNotFound: on_batch_not_found,
            WrongState: on_wrong_state,
            IdempotencyKeyReused: on_idempotency_key_reused,
            IdempotentCreateInProgress: on_idempotent_create_in_progress,
            HTTPException: on_http_exception,
            StoreUnavailable: on_store_unavailable,
            Exception: on_unexpected_error,
        },
        lifespan=lifespan,
    )
    app.state.batchgate = state
    return app
