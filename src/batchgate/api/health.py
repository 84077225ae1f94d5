"""Probes for load balancers and orchestrators: liveness, readiness and metrics, without a key.

They answer only a status and, when not ready, the reason: no batches, settings or keys.
"""

import logging

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from batchgate.api.state import AppState
from batchgate.observability import metrics
from batchgate.storage.base import StoreUnavailable

log = logging.getLogger("batchgate.api")


async def healthz(request: Request) -> JSONResponse:
    """The process is alive and its event loop answers."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """The process can do its work: the database answers with the schema this process runs
    with, the engine runs where it should."""
    state: AppState = request.app.state.batchgate
    if state.shutting_down:
        return _not_ready("shutting down")
    try:
        await anyio.to_thread.run_sync(state.store.ping)
        schema_problem = await anyio.to_thread.run_sync(state.store.schema_problem)
    except StoreUnavailable as error:
        log.warning("readiness: %s", error)
        return _not_ready("database unreachable")
    except Exception:
        log.warning("readiness: the database did not answer", exc_info=True)
        return _not_ready("database unreachable")
    if schema_problem is not None:
        log.warning("readiness: %s", schema_problem)
        return _not_ready("schema not current")
    if state.engine is not None and not state.engine.running:
        # A drain that began while the database answered stops the engine too.
        return _not_ready("shutting down" if state.shutting_down else "engine not running")
    return JSONResponse({"status": "ready"})


async def prometheus_metrics(request: Request) -> Response:
    """Prometheus metrics (docs/operations.md): counts and timings, never ids or contents."""
    state: AppState = request.app.state.batchgate
    counts = await anyio.to_thread.run_sync(state.store.count_batches_by_status)
    body = await anyio.to_thread.run_sync(metrics.render, counts)
    return Response(body, media_type=metrics.CONTENT_TYPE_LATEST)


def _not_ready(reason: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", prometheus_metrics, methods=["GET"]),
]
