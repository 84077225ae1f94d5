"""One request on a route with flow control: wait for its turn, call, retry what is transient.

A transient failure (429, 5xx, 529, a timeout, a reset connection) is tried again after the
upstream's `retry-after`, or else a jittered exponential backoff, up to the route's
`max_retries` and never past the batch's `expires_at`; then the request ends with the
upstream's error. An overload (429, 529, 503) also halves the route's concurrency and pauses
it. Any other failure ends the request at once. The route's troubles reach the log a few lines
at a time (engine/upstream_trouble.py), never a line per call.
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from batchgate.backends.base import Backend
from batchgate.engine.flow import FlowControl, Withdrawn
from batchgate.engine.routing import Route
from batchgate.errors import RequestError
from batchgate.observability import metrics

# What one request calls on its route's backend: by default, Messages with its params.
Invoke = Callable[[Backend], Awaitable[dict[str, Any]]]
OVERLOAD_ERROR_TYPES = frozenset({"rate_limit_error", "overloaded_error"})
MAX_BACKOFF_SECONDS = 60.0


async def call_with_retries(
    route: Route,
    flow: FlowControl,
    params: dict[str, Any],
    *,
    workspace: str,
    batch_id: str,
    chunk_no: int,
    expires_at: float,
    slots: asyncio.Semaphore,
    canceled: Callable[[], bool],
    invoke: Invoke | None = None,
) -> dict[str, Any]:
    """The Message (or what `invoke` answers, for an OpenAI batch's request); raises
    RequestError, or flow.Withdrawn / flow.Overdue when it never ran."""
    # An estimate (four bytes a token), known before the call, as the bucket needs.
    input_tokens = len(orjson.dumps(params)) // 4 if flow.counts_input_tokens else 0
    name = route.config.model
    latency = metrics.BACKEND_LATENCY.labels(name)
    retries = 0
    while True:
        ticket = await flow.admit(workspace, batch_id, chunk_no, input_tokens, expires_at)
        try:
            async with slots:
                started = time.perf_counter()
                try:
                    if invoke is None:
                        message = await route.backend.create_message(params)
                    else:
                        message = await invoke(route.backend)
                finally:
                    latency.observe(time.perf_counter() - started)
        except RequestError as error:
            metrics.UPSTREAM_ERRORS.labels(name, error.error_type).inc()
            delay = _delay(error, retries, route.config.backoff_seconds)
            overloaded = error.transient and error.error_type in OVERLOAD_ERROR_TYPES
            if overloaded:
                flow.overloaded(ticket, delay)
            flow.finish(ticket)
            retrying = (
                error.transient
                and retries < route.config.max_retries
                and time.time() + delay < expires_at
            )
            if error.transient:
                flow.trouble.failed(
                    error,
                    retried=retrying,
                    concurrency=flow.concurrency,
                    paused=delay if overloaded else None,
                )
            if not retrying:
                raise
        except BaseException:
            flow.finish(ticket)
            raise
        else:
            flow.finish(ticket, output_tokens=_output_tokens(message, flow), succeeded=True)
            flow.trouble.succeeded(flow.concurrency)
            return message
        await asyncio.sleep(delay)
        if canceled():
            raise Withdrawn
        retries += 1
        metrics.RETRIES.labels(name).inc()


def _delay(error: RequestError, retries: int, backoff_seconds: float) -> float:
    if error.retry_after is not None:
        return error.retry_after
    ceiling = min(MAX_BACKOFF_SECONDS, backoff_seconds * 2**retries)
    return random.uniform(ceiling / 2, ceiling)


def _output_tokens(message: dict[str, Any], flow: FlowControl) -> int:
    if not flow.counts_output_tokens:
        return 0
    usage = message.get("usage")
    if not isinstance(usage, dict):
        return 0
    # Messages count output_tokens, chat completions completion_tokens.
    tokens = usage.get("output_tokens", usage.get("completion_tokens"))
    return tokens if isinstance(tokens, int) else 0
