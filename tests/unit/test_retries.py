"""call_with_retries: what is retried, how long it waits, and when it gives up."""

import asyncio
import time
from typing import Any

import pytest

from batchgate.config.routes import RouteConfig
from batchgate.engine.flow import FlowControl, FlowLimits, Withdrawn
from batchgate.engine.retries import call_with_retries
from batchgate.engine.routing import Route
from batchgate.errors import RequestError

FAR = 1e12
MESSAGE = {"type": "message", "usage": {"input_tokens": 3, "output_tokens": 2}}


def overloaded(retry_after: float | None = None) -> RequestError:
    return RequestError("overloaded_error", "busy", transient=True, retry_after=retry_after)


class ScriptedBackend:
    """Fails with the given errors in turn, then answers."""

    def __init__(self, *failures: RequestError) -> None:
        self._failures = list(failures)
        self.calls = 0

    async def create_message(self, params: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self._failures:
            raise self._failures.pop(0)
        return MESSAGE


def route(backend: ScriptedBackend, **options: Any) -> Route:
    config = RouteConfig(
        model="*",
        backend="openai",
        base_url="http://upstream",
        **{"backoff_seconds": 0.01, **options},
    )
    return Route(config, backend, FlowControl(FlowLimits(max_concurrency=8)))


def call(target: Route, expires_at: float = FAR, canceled: bool = False) -> dict[str, Any]:
    assert target.flow is not None
    return asyncio.run(
        call_with_retries(
            target,
            target.flow,
            {"model": "m"},
            workspace="w",
            batch_id="b",
            chunk_no=0,
            expires_at=expires_at,
            slots=asyncio.Semaphore(1),
            canceled=lambda: canceled,
        )
    )


def test_transient_failures_are_retried_until_one_succeeds() -> None:
    backend = ScriptedBackend(overloaded(), RequestError("api_error", "reset", transient=True))
    assert call(route(backend)) == MESSAGE
    assert backend.calls == 3


def test_a_permanent_failure_ends_the_request_at_once() -> None:
    backend = ScriptedBackend(RequestError("invalid_request_error", "no"))
    with pytest.raises(RequestError) as raised:
        call(route(backend))
    assert raised.value.error_type == "invalid_request_error"
    assert backend.calls == 1


def test_after_max_retries_the_upstreams_last_error_is_the_result() -> None:
    backend = ScriptedBackend(
        *[overloaded()] * 3, RequestError("api_error", "last", transient=True)
    )
    with pytest.raises(RequestError) as raised:
        call(route(backend, max_retries=3))
    assert (raised.value.error_type, raised.value.message) == ("api_error", "last")
    assert backend.calls == 4


def test_the_upstreams_retry_after_is_honoured() -> None:
    backend = ScriptedBackend(overloaded(retry_after=0.2))
    started = time.monotonic()
    call(route(backend, backoff_seconds=0))
    assert time.monotonic() - started >= 0.2


def test_no_retry_would_end_past_the_batch_expiry() -> None:
    backend = ScriptedBackend(overloaded(retry_after=5))
    started = time.monotonic()
    with pytest.raises(RequestError):
        call(route(backend), expires_at=time.time() + 1)
    assert time.monotonic() - started < 1
    assert backend.calls == 1


def test_an_overload_halves_the_routes_concurrency() -> None:
    target = route(ScriptedBackend(overloaded()))
    call(target)
    assert target.flow is not None
    assert target.flow.concurrency == 4


def test_a_batch_canceled_during_the_backoff_is_not_retried() -> None:
    backend = ScriptedBackend(overloaded())
    with pytest.raises(Withdrawn):
        call(route(backend), canceled=True)
    assert backend.calls == 1
