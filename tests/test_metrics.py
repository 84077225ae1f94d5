"""GET /metrics: Prometheus text, no key needed, counts that match the batches, no ids."""

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from batchgate.config.routes import RouteConfig
from batchgate.engine.flow import FlowControl, FlowLimits
from batchgate.engine.retries import call_with_retries
from batchgate.engine.routing import Route
from batchgate.errors import RequestError
from conftest import KEY, Server, simple_request, wait_until_ended

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: Server) -> tuple[str, Samples]:
    response = httpx.get(f"{server.base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(
        value for (found, have), value in samples.items() if found == name and wanted <= have
    )


def run_batch(server: Server, size: int) -> tuple[str, dict[str, int]]:
    client = server.client()
    requests = [simple_request(f"r{index}", f"question {index}") for index in range(size)]
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    ended = wait_until_ended(client, batch.id)
    list(client.messages.batches.results(batch.id))
    return batch.id, ended.request_counts.model_dump()


def test_metrics_count_a_batch_without_a_key_and_without_ids(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(api_keys=KEY, simulator_fault_rate="0.3")
    assert httpx.get(f"{server.base_url}/v1/messages/batches").status_code == 401
    batch_id, counts = run_batch(server, 60)
    assert counts["errored"] > 0 and counts["succeeded"] > 0

    text, samples = scrape(server)
    for result in ("succeeded", "errored", "canceled", "expired"):
        assert total(samples, "batchgate_requests_finished_total", result=result) == counts[result]
    assert total(samples, "batchgate_requests_finished_total", route="*") == 60
    assert total(samples, "batchgate_batches", status="ended") == 1
    assert total(samples, "batchgate_batches", status="in_progress") == 0
    assert total(samples, "batchgate_create_bytes_total") > 0
    assert total(samples, "batchgate_results_bytes_total") > 0
    # The engine times every garbage collection, those of the generations it keeps from
    # collecting included.
    for generation in ("0", "1", "2"):
        assert (
            "batchgate_gc_pause_seconds_count",
            frozenset({("generation", generation)}),
        ) in samples

    by_template = {
        dict(labels)["route_template"]
        for (name, labels) in samples
        if name == "batchgate_http_request_duration_seconds_count"
    }
    assert "/v1/messages/batches/{batch_id}" in by_template
    assert "/v1/messages/batches/{batch_id}/results" in by_template
    assert (
        total(
            samples,
            "batchgate_http_request_duration_seconds_count",
            method="POST",
            route_template="/v1/messages/batches",
            status="200",
        )
        == 1
    )
    assert batch_id not in text and "msgbatch_" not in text


def test_metrics_of_a_route_with_flow_control(tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text(
        '[[routes]]\nmodel = "claude-*"\nbackend = "simulator"\nfault_rate = 0.3\n'
        'fault_types = ["overloaded_error"]\nmax_concurrency = 8\nmax_retries = 1\n'
        "backoff_seconds = 0.01\n"
    )
    server = Server(tmp_path)
    server.arguments = ["--config", str(routes)]
    server.start()
    try:
        _, counts = run_batch(server, 40)
        _, samples = scrape(server)
    finally:
        server.stop()
    # The simulator's faults are not transient: each is one upstream error and no retry.
    errored, succeeded = counts["errored"], counts["succeeded"]
    assert errored > 0 and succeeded + errored == 40
    route = "claude-*"
    assert total(samples, "batchgate_requests_finished_total", route=route) == 40
    assert total(samples, "batchgate_retries_total", route=route) == 0
    assert (
        total(
            samples, "batchgate_upstream_errors_total", route=route, error_type="overloaded_error"
        )
        == errored
    )
    assert total(samples, "batchgate_backend_latency_seconds_count", route=route) == 40
    limit = total(samples, "batchgate_route_concurrency_limit", route=route)
    assert 1 <= limit <= 8
    assert ("batchgate_requests_in_flight", frozenset()) in samples


def test_requests_waiting_on_a_saturated_route_are_counted_as_queued(tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text(
        '[[routes]]\nmodel = "claude-*"\nbackend = "simulator"\nlatency_ms = 300\n'
        "max_concurrency = 2\n"
    )
    route = "claude-*"
    server = Server(tmp_path)
    server.arguments = ["--config", str(routes)]
    server.start()
    try:
        client = server.client()
        requests = [simple_request(f"r{index}", f"question {index}") for index in range(12)]
        batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        # Two run at a time; the ten others wait for their turn on the route.
        deadline = time.monotonic() + 10
        while (queued := total(scrape(server)[1], "batchgate_requests_queued", route=route)) != 10:
            assert time.monotonic() < deadline, f"{queued} queued, not 10"
            time.sleep(0.05)
        wait_until_ended(client, batch.id)
        _, samples = scrape(server)
    finally:
        server.stop()
    assert total(samples, "batchgate_requests_queued", route=route) == 0


def test_finished_requests_are_counted_per_route_when_there_are_several(tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text(
        '[[routes]]\nmodel = "claude-haiku-*"\nbackend = "simulator"\nmax_concurrency = 4\n'
        '[[routes]]\nmodel = "claude-*"\nbackend = "simulator"\n'
    )
    server = Server(tmp_path)
    server.arguments = ["--config", str(routes)]
    server.start()
    try:
        client = server.client()
        requests = [
            *(simple_request(f"haiku-{i}", model="claude-haiku-4-5") for i in range(7)),
            *(simple_request(f"sonnet-{i}") for i in range(5)),
            simple_request("nowhere", model="gpt-4o"),
        ]
        batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        assert wait_until_ended(client, batch.id).request_counts.errored == 1
        _, samples = scrape(server)
    finally:
        server.stop()
    finished = "batchgate_requests_finished_total"
    assert total(samples, finished, result="succeeded", route="claude-haiku-*") == 7
    assert total(samples, finished, result="succeeded", route="claude-*") == 5
    # No route serves the model: the request never reached one.
    assert total(samples, finished, result="errored", route="") == 1


def test_retries_upstream_errors_and_the_concurrency_limit_are_counted() -> None:
    class FailsTwice:
        calls = 0

        async def create_message(self, params: dict[str, object]) -> dict[str, object]:
            self.calls += 1
            if self.calls <= 2:
                raise RequestError("overloaded_error", "busy", transient=True, retry_after=0.0)
            return {"type": "message"}

    name = "metrics-test-*"
    config = RouteConfig(model=name, backend="openai", base_url="http://upstream")
    flow = FlowControl(FlowLimits(max_concurrency=8), name=name)
    target = Route(config, FailsTwice(), flow)  # type: ignore[arg-type]

    def value(metric: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(metric, {"route": name, **labels}) or 0.0

    assert value("batchgate_route_concurrency_limit") == 8
    asyncio.run(
        call_with_retries(
            target,
            flow,
            {"model": "m"},
            workspace="default",
            batch_id="b",
            chunk_no=0,
            expires_at=1e12,
            slots=asyncio.Semaphore(1),
            canceled=lambda: False,
        )
    )
    assert value("batchgate_retries_total") == 2
    assert value("batchgate_upstream_errors_total", error_type="overloaded_error") == 2
    assert value("batchgate_backend_latency_seconds_count") == 3
    # Each overload halved the limit: 8 → 4 → 2.
    assert flow.concurrency == 2
    assert value("batchgate_route_concurrency_limit") == 2


def test_multiprocess_mode_collects_from_the_shared_directory(
    start_server: Callable[..., Server], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    server = start_server(simulator_fault_rate="0.3")
    _, counts = run_batch(server, 30)
    _, samples = scrape(server)
    assert any(directory.iterdir())
    for result in ("succeeded", "errored"):
        assert total(samples, "batchgate_requests_finished_total", result=result) == counts[result]
    assert total(samples, "batchgate_batches", status="ended") == 1
    assert total(samples, "batchgate_http_request_duration_seconds_count", method="POST") == 1
